/**
 * Writes the imported config as TOML text, pure. Every table carries a comment naming the
 * statement it came from (`# from keepalived.conf:12 (vrrp_instance VI_1)`), and the writer
 * remembers which source statement each output line came from, so `check` problems found in the
 * output can be reported against the original file.
 */
import type { Loc } from './types.js';

export type TomlValue = string | number | boolean | TomlValue[] | { [key: string]: TomlValue };

export interface TomlEntry {
  key: string;
  value: TomlValue;
  loc?: Loc;
}

export interface TomlTable {
  /** Dotted table name, e.g. "virtual_server.real_server"; undefined = the root (no header). */
  name?: string;
  /** `[[name]]` rather than `[name]`. */
  array?: boolean;
  /** Comment lines written under the header (without the leading "# "). */
  comments?: string[];
  loc?: Loc;
  entries: TomlEntry[];
}

export interface TomlText {
  text: string;
  /** Output line (1-based) -> the source statement behind it. */
  origins: Map<number, Loc>;
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

export function tomlKey(key: string): string {
  return BARE_KEY.test(key) ? key : tomlString(key);
}

export function tomlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

export function tomlValue(v: TomlValue): string {
  if (typeof v === 'string') return tomlString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new RangeError(`not a TOML number: ${v}`);
    if (Number.isInteger(v)) return String(v);
    const s = String(v);
    return /e/i.test(s) ? v.toFixed(6).replace(/0+$/, '') : s;
  }
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  return `{ ${Object.entries(v).map(([k, x]) => `${tomlKey(k)} = ${tomlValue(x)}`).join(', ')} }`;
}

export function writeToml(header: string[], tables: readonly TomlTable[]): TomlText {
  const lines: string[] = header.map((h) => (h === '' ? '' : `# ${h}`));
  const origins = new Map<number, Loc>();
  const push = (line: string, loc?: Loc): void => {
    lines.push(line);
    if (loc) origins.set(lines.length, loc);
  };
  for (const t of tables) {
    if (t.name === undefined && t.entries.length === 0 && !t.comments?.length) continue;
    if (lines.length > 0) push('');
    if (t.name !== undefined) push(t.array ? `[[${t.name}]]` : `[${t.name}]`, t.loc);
    for (const c of t.comments ?? []) push(c === '' ? '#' : `# ${c}`, t.loc);
    for (const e of t.entries) push(`${tomlKey(e.key)} = ${tomlValue(e.value)}`, e.loc ?? t.loc);
  }
  return { text: `${lines.join('\n')}\n`, origins };
}
