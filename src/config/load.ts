import { readFile } from 'node:fs/promises';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { ConfigError, type KeyPath } from './issues.js';
import { CONFIG_FIELDS } from './schema.js';
import { checkSemantics } from './semantic.js';
import { parseToml } from './toml-source.js';
import type { Config } from './types.js';
import { IssueSink, validateDocument } from './validate.js';

/**
 * Parses and validates a config text. Throws ConfigError (E_CONFIG_INVALID) listing every issue;
 * `fileName` only labels the issues.
 */
export function parseConfig(text: string, fileName: string): Config {
  return parseConfigWithLines(text, fileName).config;
}

/** A loaded config plus the line of any key path in its file (for problems found later, e.g. by `check`). */
export interface LocatedConfig {
  config: Config;
  lineOf(path: KeyPath): number | undefined;
}

export function parseConfigWithLines(text: string, fileName: string): LocatedConfig {
  const source = parseToml(text, fileName);
  const sink = new IssueSink(fileName, source.lineOf);
  const tree = validateDocument(CONFIG_FIELDS, source.data, sink);
  const config = checkSemantics(tree, fileName, sink);
  if (sink.issues.length > 0) throw new ConfigError(sortIssues(sink.issues));
  return { config, lineOf: (path) => source.lineOf(path) };
}

/** Reads and parses a config file; unreadable files throw E_CONFIG_READ. */
export async function loadConfigFile(path: string): Promise<Config> {
  return (await loadConfigFileWithLines(path)).config;
}

export async function loadConfigFileWithLines(path: string): Promise<LocatedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new KeepaliveError('E_CONFIG_READ', `cannot read config ${path}: ${errorMessage(err)}`, { cause: err });
  }
  return parseConfigWithLines(text, path);
}

/** File order reads best; issues without a line (file-level) go last. Stable for equal lines. */
function sortIssues<T extends { line?: number }>(issues: readonly T[]): T[] {
  return [...issues].sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
}
