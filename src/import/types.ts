/**
 * Shared vocabulary of `keepalive-ts import`: source locations, messages, the file access the
 * pure readers are given, and the keepalived AST.
 */

/** Where something came from: `file` is the display name (see ImportFs.display), `line` 1-based. */
export interface Loc {
  file: string;
  line: number;
}

export type MessageKind =
  /** No equivalent in keepalive-ts: the construct is left out. */
  | 'unsupported'
  /** Imported, but it behaves differently (or a default was filled in that matters). */
  | 'changed'
  /** A keepalived runtime knob that means nothing here (process tuning, logging, SNMP, ...). */
  | 'ignored'
  /** The input itself is broken (syntax, unknown keyword, bad value). */
  | 'error';

export interface ImportMessage {
  loc: Loc;
  kind: MessageKind;
  text: string;
}

export function formatMessage(m: ImportMessage): string {
  return `${m.loc.file}:${m.loc.line}: ${m.kind}: ${m.text}`;
}

/**
 * File access for the readers, injected so they stay pure (tests give an in-memory tree). Paths
 * are absolute; `display` names a file in messages and origin comments.
 */
export interface ImportFs {
  read(path: string): string | undefined;
  /** Entries of a directory (names only), or undefined if it is not one. */
  list(dir: string): string[] | undefined;
  /** How to name `path` in messages (e.g. relative to the main file's directory). */
  display(path: string): string;
}

/** One keepalived statement: a keyword, its arguments, and its { } block if it has one. */
export interface KNode {
  keyword: string;
  args: string[];
  /** Present when the statement opened a { } block (possibly empty). */
  block?: KNode[];
  loc: Loc;
  /**
   * The whole line the statement was on, after comments, conditionals and substitutions: keepalived
   * re-reads it with quotes and escapes for scripts and regexes (alloc_strvec_quoted_escaped).
   */
  raw: string;
}
