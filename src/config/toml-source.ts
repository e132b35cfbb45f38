import { ConfigError, type KeyPath } from './issues.js';
import { TomlSyntaxError, parseTomlDocument } from './toml.js';

export interface TomlSource {
  data: Record<string, unknown>;
  /** Line of the key path, or of its closest ancestor that has one (tables named by a header). */
  lineOf(path: KeyPath): number | undefined;
}

/** Parses TOML text (./toml.ts); a syntax error is a ConfigError naming `file` and the line. */
export function parseToml(text: string, file: string): TomlSource {
  try {
    return parseTomlDocument(text);
  } catch (err) {
    if (err instanceof TomlSyntaxError) throw new ConfigError([{ file, line: err.line, path: '', message: `syntax error: ${err.message}` }]);
    throw err;
  }
}
