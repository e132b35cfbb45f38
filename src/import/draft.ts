/**
 * The importer's working model: one Draft per output table (its keys, each with the source
 * statement it came from), the message sink, and the small converters the rule tables use.
 */
import type { Fields } from '../config/schema-types.js';
import { didYouMean } from '../config/suggest.js';
import { canonicalAddress } from '../util/endpoint.js';
import { splitQuotedEscaped } from './keepalived-reader.js';
import type { TomlEntry, TomlValue } from './toml-writer.js';
import type { ImportMessage, KNode, Loc, MessageKind } from './types.js';

export class Draft {
  readonly entries = new Map<string, TomlEntry>();
  readonly comments: string[] = [];

  constructor(
    /** The schema fields of the table this becomes (which keys it has, what values they take). */
    public fields: Fields,
    readonly loc: Loc,
    /** "vrrp_instance VI_1": how messages name it. */
    readonly what: string,
  ) {}

  set(key: string, value: TomlValue, loc: Loc): void {
    this.entries.set(key, { key, value, loc });
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get(key: string): TomlValue | undefined {
    return this.entries.get(key)?.value;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clone(what = this.what, loc = this.loc): Draft {
    const d = new Draft(this.fields, loc, what);
    for (const [k, e] of this.entries) d.entries.set(k, { ...e, value: structuredClone(e.value) });
    d.comments.push(...this.comments);
    return d;
  }
}

export class Messages {
  readonly list: ImportMessage[] = [];

  add(loc: Loc, kind: MessageKind, text: string): void {
    this.list.push({ loc, kind, text });
  }
}

/**
 * A keyword handler of a rule table. `unsupported` / `ignored` describe the entry for
 * docs/import.md (a test checks every unsupported keyword is listed there).
 */
export type Rule<D> = ((node: KNode, draft: D, m: Messages) => void) & { unsupported?: string; ignored?: string };

/**
 * Applies `rules` to every statement of a block; an unknown keyword is an error naming the block
 * and the closest known keyword.
 */
export function applyRules<D>(nodes: readonly KNode[] | undefined, rules: Readonly<Record<string, Rule<D>>>, draft: D, m: Messages, blockName: string): void {
  for (const n of nodes ?? []) {
    const rule = Object.hasOwn(rules, n.keyword) ? rules[n.keyword] : undefined;
    if (rule) {
      rule(n, draft, m);
      continue;
    }
    const guess = didYouMean(n.keyword, Object.keys(rules));
    m.add(n.loc, 'error', `unknown keyword "${n.keyword}" in ${blockName}${guess ? `; did you mean "${guess}"?` : ''} (keepalived ignores it too)`);
  }
}

// ---- value converters: return undefined (after a message) when the value is unusable ----

export type Conv = (n: KNode, m: Messages) => TomlValue | undefined;

function need(n: KNode, m: Messages, count = 1): boolean {
  if (n.args.length >= count) return true;
  m.add(n.loc, 'error', `${n.keyword}: value missing; not imported`);
  return false;
}

export const word: Conv = (n, m) => (need(n, m) ? n.args[0]! : undefined);

/** All arguments joined by one space (a script line, a command). */
export const text: Conv = (n, m) => (need(n, m) ? n.args.join(' ') : undefined);

export function int(min = -Infinity, max = Infinity): Conv {
  return (n, m) => {
    if (!need(n, m)) return undefined;
    const s = n.args[0]!;
    if (!/^[+-]?\d+$/.test(s) || Number(s) < min || Number(s) > max) {
      m.add(n.loc, 'error', `${n.keyword}: "${s}" is not a whole number${min > -Infinity ? ` ${min}..${max === Infinity ? '' : max}` : ''}; not imported`);
      return undefined;
    }
    return Number(s);
  };
}

/** A decimal number of seconds (keepalived <TIMER>). */
export function seconds(min = 0): Conv {
  return (n, m) => {
    if (!need(n, m)) return undefined;
    const s = n.args[0]!;
    if (!/^\d+(\.\d+)?$|^\.\d+$/.test(s) || Number(s) < min) {
      m.add(n.loc, 'error', `${n.keyword}: "${s}" is not a number of seconds${min > 0 ? ` >= ${min}` : ''}; not imported`);
      return undefined;
    }
    return Number(s);
  };
}

/** keepalived <BOOL>: absent = true; on|true|yes / off|false|no. */
export const bool: Conv = (n, m) => {
  if (n.args.length === 0) return true;
  const s = n.args[0]!.toLowerCase();
  if (['on', 'true', 'yes'].includes(s)) return true;
  if (['off', 'false', 'no'].includes(s)) return false;
  m.add(n.loc, 'error', `${n.keyword}: "${n.args[0]}" is not on|off|true|false|yes|no; not imported`);
  return undefined;
};

export const ip: Conv = (n, m) => {
  if (!need(n, m)) return undefined;
  const [addr, prefix] = n.args[0]!.split('/') as [string, string | undefined];
  const a = canonicalAddress(prefix === undefined ? n.args[0]! : addr);
  if (a && prefix !== undefined) m.add(n.loc, 'changed', `${n.keyword} ${n.args[0]}: an address is expected; the prefix /${prefix} is dropped`);
  if (!a) {
    m.add(n.loc, 'error', `${n.keyword}: "${n.args[0]}" is not an IP address; not imported`);
    return undefined;
  }
  return a.address;
};

export function oneOf(values: readonly string[], map: (s: string) => string = (s) => s): Conv {
  return (n, m) => {
    if (!need(n, m)) return undefined;
    const s = n.args[0]!;
    if (!values.includes(s)) {
      m.add(n.loc, 'error', `${n.keyword}: "${s}" is not one of ${values.join(' ')}; not imported`);
      return undefined;
    }
    return map(s);
  };
}

// ---- rule builders ----

/** keyword -> draft key through a converter. */
export function to<D extends Draft>(key: string, conv: Conv): Rule<D> {
  return (n, d, m) => {
    const v = conv(n, m);
    if (v !== undefined) d.set(key, v, n.loc);
  };
}

export function unsupported<D>(why: string): Rule<D> {
  const rule: Rule<D> = (n, _d, m) => m.add(n.loc, 'unsupported', `${n.keyword}: ${why}`);
  rule.unsupported = why;
  return rule;
}

export function ignored<D>(why: string): Rule<D> {
  const rule: Rule<D> = (n, _d, m) => m.add(n.loc, 'ignored', `${n.keyword}: ${why}`);
  rule.ignored = why;
  return rule;
}

/** Keywords that are keepalived's defaults anyway: accepted without a message. */
export function noop<D>(): Rule<D> {
  return () => undefined;
}

/** The same rule for several keywords. */
export function many<D>(keywords: readonly string[], rule: Rule<D>): Record<string, Rule<D>> {
  return Object.fromEntries(keywords.map((k) => [k, rule]));
}

/** Shell syntax outside single quotes: keepalived runs such a line with system() (/bin/sh -c). */
export function needsShell(line: string): boolean {
  let quote: string | null = null;
  for (const c of line) {
    if (quote) {
      if (c === quote) quote = null;
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if ('<>|;&$`()*?~'.includes(c)) return true;
  }
  return false;
}

/**
 * A command line as keepalive-ts runs it (split into argv, no shell). keepalived falls back to
 * /bin/sh -c when the line is not a program it can exec, which shell syntax never is: such a line
 * is wrapped in `/bin/sh -c '...'` so it behaves the same.
 */
export function commandLine(line: string, n: KNode, m: Messages): string {
  if (!needsShell(line)) return line;
  const wrapped = `/bin/sh -c '${line.replace(/'/g, "'\\''")}'`;
  m.add(n.loc, 'changed', `${n.keyword}: shell syntax; keepalive-ts runs commands without a shell, so it is wrapped as ${wrapped} (keepalived runs it with /bin/sh -c too)`);
  return wrapped;
}

/**
 * The arguments as keepalived reads them for scripts and regexes: the statement's line again,
 * with "..." and '...' quoting and backslash escapes (alloc_strvec_quoted_escaped).
 */
export function escapedArgs(n: KNode): string[] {
  const w = splitQuotedEscaped(n.raw);
  return w !== undefined && w[0] === n.keyword ? w.slice(1) : n.args;
}

/** A word for splitCommand: single-quoted when it holds blanks, quotes or backslashes. */
function quoteWord(w: string): string {
  return /[\s'"\\]/.test(w) || w === '' ? `'${w.replace(/'/g, "'\\''")}'` : w;
}

/** A command keyword (script, misc_path): every argument is part of the command; shell syntax wrapped. */
export const command: Conv = (n, m) => {
  if (!need(n, m)) return undefined;
  const words = escapedArgs(n);
  // One quoted argument is the whole command line; several are its words.
  const line = words.length === 1 ? words[0]! : words.map(quoteWord).join(' ');
  return commandLine(line, n, m);
};

/** A script keyword (`notify_master SCRIPT [user [group]]`): the script; a user is reported. */
export function script<D extends Draft>(key: string): Rule<D> {
  return (n, d, m) => {
    if (!need(n, m)) return;
    const words = escapedArgs(n);
    d.set(key, commandLine(words[0]!, n, m), n.loc);
    if (words.length > 1) {
      m.add(n.loc, 'changed', `${n.keyword}: runs as the daemon's script user, not as ${words.slice(1).join(' ')} (keepalive-ts has no per-notify user; quote a script that takes arguments)`);
    }
  };
}

/** keepalived `user USER [[:]GROUP]` -> "USER[:GROUP]". */
export function userSpec(n: KNode, m: Messages): string | undefined {
  if (!need(n, m)) return undefined;
  const group = n.args[1];
  if (group?.startsWith(':')) m.add(n.loc, 'changed', `${n.keyword}: ":${group.slice(1)}" (set supplementary groups) is not supported; the primary group is set`);
  const g = group?.replace(/^:/, '');
  return g ? `${n.args[0]}:${g}` : n.args[0];
}
