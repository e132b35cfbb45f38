import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { ConfigError, type KeyPath } from './issues.js';
import { CONFIG_FIELDS } from './schema.js';
import { checkSemantics } from './semantic.js';
import { parseToml } from './toml-source.js';
import type { Config } from './types.js';
import { IssueSink, validateDocument } from './validate.js';

/** A loaded config and where its keys are in the file (for issues found after loading). */
export interface ConfigSource {
  config: Config;
  /** Line of a key path, or of its closest ancestor that has one. */
  lineOf(path: KeyPath): number | undefined;
}

/**
 * Parses and validates a config text. Throws ConfigError (E_CONFIG_INVALID) listing every issue;
 * `fileName` only labels the issues.
 */
export function parseConfig(text: string, fileName: string): Config {
  return parseConfigSource(text, fileName).config;
}

/** parseConfig, keeping the key-path to line lookup (`check` reports host problems with it). */
export function parseConfigSource(text: string, fileName: string): ConfigSource {
  const source = parseToml(text, fileName);
  const sink = new IssueSink(fileName, source.lineOf);
  const tree = validateDocument(CONFIG_FIELDS, source.data, sink);
  const config = checkSemantics(tree, fileName, sink);
  if (sink.issues.length > 0) throw new ConfigError(sortIssues(sink.issues));
  return { config, lineOf: source.lineOf };
}

/** Reads and parses a config file; unreadable files throw E_CONFIG_READ. */
export async function loadConfigFile(path: string): Promise<Config> {
  return (await loadConfigSource(path)).config;
}

/** loadConfigFile, keeping the key-path to line lookup. */
export async function loadConfigSource(path: string): Promise<ConfigSource> {
  return parseConfigSource(await readConfigText(path), path);
}

/** The text of a config file; unreadable files throw E_CONFIG_READ. */
export async function readConfigText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new KeepaliveError('E_CONFIG_READ', `cannot read config ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * What a config depends on besides its text: the hostname (the default router_id). Two loads
 * with the same text and the same inputs give equal configs.
 */
export function configInputs(): string {
  return hostname();
}

/** File order reads best; issues without a line (file-level) go last. Stable for equal lines. */
export function sortIssues<T extends { line?: number }>(issues: readonly T[]): T[] {
  return [...issues].sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
}
