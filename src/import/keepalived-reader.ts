/**
 * keepalived.conf as keepalived's lib/parser.c reads it, pure (files come through ImportFs):
 *
 * - comments: `#` or `!` outside double quotes, to the end of the line (`\#`, `\!` escape them);
 * - `include FILE` (and includer/includem/includew/includeb/includea): a glob with `*`, `?`,
 *   `[...]` and `{a,b}`, relative to the directory of the including file, matches read in
 *   sorted order;
 * - `@ID line` / `@^ID line`: the line counts only when the config id is (is not) ID;
 * - `$NAME=value` definitions (a trailing `\` continues a multi-line definition), replaced at
 *   `$NAME` (followed by a blank, `,`, `)` or the line end) and `${NAME}`, recursively;
 *   `${_PWD}`, `${_INSTANCE}`, `${_ENV VAR}`, `${_HASH}`, `${_BANG}` are predefined;
 * - `~SEQ(var, start, step, end) rest`, `~SEQx(...)` and `~LST(var, v1, v2, ...) rest` repeat
 *   the rest of the line;
 * - `{` and `}` outside quotes split a line, as keepalived does, so `track_script { a }` is
 *   `track_script`, `{`, `a`, `}`;
 * - words are separated by blanks; a word starting with `"` runs to the next `"` (no escapes).
 *
 * The result is the statement tree (KNode) with the file:line of every statement, plus a message
 * for every construct the reader had to drop or could not honour.
 */
import { posix } from 'node:path';
import type { ImportFs, ImportMessage, KNode, Loc } from './types.js';

export interface KeepalivedReadOptions {
  /** keepalived's config id (-i), for `@ID` lines; keepalived's default is the host name up to the first dot. */
  configId: string;
  /** True when configId was given by the user (otherwise the first `@` line is reported). */
  configIdGiven: boolean;
  /** For ${_ENV VAR}. */
  env: Readonly<Record<string, string | undefined>>;
}

export interface KeepalivedReadResult {
  nodes: KNode[];
  messages: ImportMessage[];
  /** Every file read, main file first (display names). */
  files: string[];
}

interface Segment {
  words: string[];
  raw: string;
  /** The segment is a lone `{` or `}`. */
  brace?: '{' | '}';
  loc: Loc;
}

const MAX_INCLUDE_DEPTH = 32;
/** Nested definition expansions / sequences one line may go through. */
const MAX_NESTING = 64;
/** Lines ~SEQ / ~LST may produce in all. */
const MAX_EXPANSIONS = 100_000;
const INCLUDE_KEYWORDS = new Set(['include', 'includer', 'includem', 'includew', 'includeb', 'includea']);

/** Strips a comment and reports a trailing continuation `\` (keepalived decomment()). */
export function decomment(line: string): { text: string; continued: boolean } {
  let out = '';
  let quote = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"') {
      quote = !quote;
      out += c;
      continue;
    }
    if (c === '\\') {
      if (i + 1 >= line.length) return { text: out.trim(), continued: true };
      const n = line[i + 1]!;
      if (!quote && (n === '#' || n === '!')) {
        out += n;
        i++;
        continue;
      }
      out += c + n;
      i++;
      continue;
    }
    if (!quote && (c === '#' || c === '!')) break;
    out += c;
  }
  return { text: out.trim(), continued: false };
}

/** Words and braces of one line, keepalived style (a quoted word keeps inner blanks, loses its quotes). */
export function splitWords(text: string): ({ word: string } | { brace: '{' | '}' })[] {
  const out: ({ word: string } | { brace: '{' | '}' })[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '{' || c === '}') {
      out.push({ brace: c });
      i++;
      continue;
    }
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) {
        out.push({ word: text.slice(i + 1) });
        break;
      }
      out.push({ word: text.slice(i + 1, end) });
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < text.length && !' \t"{}'.includes(text[j]!)) j++;
    out.push({ word: text.slice(i, j) });
    i = j;
  }
  return out;
}

/**
 * keepalived's alloc_strvec_quoted_escaped: blank-separated words, "..." and '...' group (the
 * quotes are removed), and backslash escapes \a \b \E \f \n \r \t \v \NNN (octal) \xXX \cC;
 * any other escaped character stands for itself. Undefined when a quote is not closed.
 */
export function splitQuotedEscaped(text: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  const simple: Record<string, string> = { a: '\x07', b: '\b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
  while (i < text.length) {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= text.length) break;
    let word = '';
    let quote: string | null = null;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '\\') {
        const n = text[i + 1];
        if (n === undefined) return undefined;
        if (n === 'x' && /[0-9a-fA-F]/.test(text[i + 2] ?? '')) {
          const hex = /^[0-9a-fA-F]{1,2}/.exec(text.slice(i + 2))![0];
          word += String.fromCharCode(parseInt(hex, 16));
          i += 2 + hex.length;
        } else if (n === 'c' && text[i + 2] !== undefined) {
          word += String.fromCharCode(text.charCodeAt(i + 2) & 0x1f);
          i += 3;
        } else if (/[0-7]/.test(n)) {
          const oct = /^[0-7]{1,3}/.exec(text.slice(i + 1))![0];
          word += String.fromCharCode(parseInt(oct, 8) & 0xff);
          i += 1 + oct.length;
        } else {
          word += simple[n] ?? n;
          i += 2;
        }
        continue;
      }
      if (quote) {
        if (c === quote) quote = null;
        else word += c;
        i++;
        continue;
      }
      if (c === '"' || c === "'") {
        quote = c;
        i++;
        continue;
      }
      if (c === ' ' || c === '\t') break;
      word += c;
      i++;
    }
    if (quote) return undefined;
    out.push(word);
  }
  return out;
}

/** `{a,b}c` -> ["ac", "bc"], nested braces included (csh style, as glob(GLOB_BRACE)). */
export function expandBraces(pattern: string): string[] {
  let depth = 0;
  let start = -1;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === '}' && depth > 0) {
      depth--;
      if (depth === 0) {
        const inner = pattern.slice(start + 1, i);
        const parts: string[] = [];
        let d = 0;
        let from = 0;
        for (let k = 0; k < inner.length; k++) {
          if (inner[k] === '{') d++;
          else if (inner[k] === '}') d--;
          else if (inner[k] === ',' && d === 0) {
            parts.push(inner.slice(from, k));
            from = k + 1;
          }
        }
        parts.push(inner.slice(from));
        const head = pattern.slice(0, start);
        const tail = pattern.slice(i + 1);
        return parts.flatMap((p) => expandBraces(`${head}${p}${tail}`));
      }
    }
  }
  return [pattern];
}

function globSegmentRegex(seg: string): RegExp {
  let re = '^';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = seg.slice(i + 1, end);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

/** Absolute files matching an absolute glob pattern (sorted, as glob(3)). */
export function globFiles(pattern: string, fs: ImportFs): string[] {
  const out = new Set<string>();
  for (const p of expandBraces(pattern)) {
    const segs = p.split('/').filter((s) => s !== '');
    let paths = ['/'];
    for (const seg of segs) {
      const next: string[] = [];
      const wild = /[*?[]/.test(seg);
      for (const base of paths) {
        if (!wild) {
          next.push(posix.join(base, seg));
          continue;
        }
        const re = globSegmentRegex(seg);
        for (const name of (fs.list(base) ?? []).sort()) {
          if (name.startsWith('.') && !seg.startsWith('.')) continue;
          if (re.test(name)) next.push(posix.join(base, name));
        }
      }
      paths = next;
    }
    for (const f of paths) if (fs.read(f) !== undefined) out.add(f);
  }
  return [...out].sort();
}

interface Definition {
  /** Lines joined by "\n" for a multi-line definition. */
  value: string;
  multiline: boolean;
}

class Reader {
  readonly messages: ImportMessage[] = [];
  readonly files: string[] = [];
  readonly segments: Segment[] = [];
  private readonly defs = new Map<string, Definition>();
  /** A multi-line definition being read. */
  private pendingDef: { name: string; lines: string[] } | undefined;
  private conditionalReported = false;
  private expansions = 0;

  constructor(
    private readonly fs: ImportFs,
    private readonly opts: KeepalivedReadOptions,
  ) {}

  private msg(loc: Loc, kind: ImportMessage['kind'], text: string): void {
    this.messages.push({ loc, kind, text });
  }

  readFile(path: string, depth: number, stack: string[], from?: Loc): void {
    const text = this.fs.read(path);
    const name = this.fs.display(path);
    if (text === undefined) {
      this.msg(from ?? { file: name, line: 1 }, 'error', `cannot read ${name}`);
      return;
    }
    if (stack.includes(path)) {
      this.msg(from!, 'error', `include of ${name} loops back to itself; not read again`);
      return;
    }
    this.files.push(name);
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const loc = { file: name, line: i + 1 };
      const { text: line, continued } = decomment(lines[i]!);
      if (this.pendingDef) {
        if (line !== '' || !continued) this.pendingDef.lines.push(line);
        if (!continued) this.finishDef();
        continue;
      }
      if (line === '') continue;
      this.logical(line, continued, loc, path, depth, stack);
    }
    if (this.pendingDef) this.finishDef();
  }

  private finishDef(): void {
    const d = this.pendingDef!;
    this.pendingDef = undefined;
    const lines = d.lines.filter((l) => l !== '');
    this.defs.set(d.name, { value: lines.join('\n'), multiline: lines.length > 1 });
  }

  /** One line after comment removal: conditionals, definitions, sequences, substitution, include. */
  private logical(line: string, continued: boolean, loc: Loc, path: string, depth: number, stack: string[], nest = 0): void {
    if (nest > MAX_NESTING) {
      this.msg(loc, 'error', `definitions nested deeper than ${MAX_NESTING} (one probably refers to itself); line not imported`);
      return;
    }
    let text = line;
    if (text.startsWith('@')) {
      const m = /^@(\^?)(\S+)\s+(.*)$/.exec(text);
      if (!m) return;
      const matches = m[2] === this.opts.configId;
      if (!this.conditionalReported && !this.opts.configIdGiven) {
        this.conditionalReported = true;
        this.msg(loc, 'changed', `conditional lines (@ID) resolved for config id "${this.opts.configId}" (keepalived's default, this host's name); use --config-id to import for another director`);
      }
      if (matches === (m[1] === '^')) return;
      text = m[3]!;
    }
    const def = /^\$([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(text);
    if (def) {
      const value = def[2]!;
      if (continued) this.pendingDef = { name: def[1]!, lines: value === '' ? [] : [value] };
      else this.defs.set(def[1]!, { value, multiline: false });
      return;
    }
    const seq = /^~(SEQx?|LST)\((.*?)\)\s*(.*)$/.exec(text);
    if (seq) {
      this.sequence(seq[1]!, seq[2]!, seq[3]!, loc, path, depth, stack, nest);
      return;
    }
    if (text.includes('$')) {
      const replaced = this.substitute(text, loc, path);
      if (replaced !== text) {
        // A multi-line definition becomes several lines, each read in turn (a line may define
        // what a later one uses, as keepalived reads them).
        for (const l of replaced.split('\n')) {
          const d = decomment(l);
          if (d.text !== '') this.logical(d.text, false, loc, path, depth, stack, nest + 1);
        }
        return;
      }
    }
    const inc = /^(\S+)\s*(.*)$/.exec(text);
    if (inc && INCLUDE_KEYWORDS.has(inc[1]!)) {
      // The rest of the line is the pattern, braces and all (quotes removed).
      this.include(inc[2]!.replace(/^"(.*)"$/, '$1'), loc, path, depth, stack);
      return;
    }
    this.addSegments(splitWords(text), loc, text);
  }

  private addSegments(words: ReturnType<typeof splitWords>, loc: Loc, raw: string): void {
    let current: string[] = [];
    for (const w of words) {
      if ('brace' in w) {
        if (current.length > 0) this.segments.push({ words: current, loc, raw });
        current = [];
        this.segments.push({ words: [w.brace], brace: w.brace, loc, raw });
      } else current.push(w.word);
    }
    if (current.length > 0) this.segments.push({ words: current, loc, raw });
  }

  private include(pattern: string, loc: Loc, path: string, depth: number, stack: string[]): void {
    if (pattern === '') {
      this.msg(loc, 'error', 'include without a file name');
      return;
    }
    if (depth >= MAX_INCLUDE_DEPTH) {
      this.msg(loc, 'error', `includes nested deeper than ${MAX_INCLUDE_DEPTH}; ${pattern} not read`);
      return;
    }
    const abs = pattern.startsWith('/') ? pattern : posix.join(posix.dirname(path), pattern);
    const matches = globFiles(abs, this.fs);
    if (matches.length === 0) {
      this.msg(loc, 'error', `include ${pattern}: no file matches (keepalived skips it silently)`);
      return;
    }
    for (const f of matches) this.readFile(f, depth + 1, [...stack, path], loc);
  }

  /** ~SEQ(var, [start,] [step,] end) / ~SEQx(...) / ~LST(var, v1, v2, ...). */
  private sequence(kind: string, spec: string, rest: string, loc: Loc, path: string, depth: number, stack: string[], nest: number): void {
    const parts = spec.split(',').map((p) => p.trim());
    const name = parts[0] ?? '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      this.msg(loc, 'unsupported', `~${kind}(${spec}): only a single variable name is supported here; line not imported`);
      return;
    }
    let values: string[];
    if (kind === 'LST') {
      values = parts.slice(1);
    } else {
      const nums = parts.slice(1).map((p) => Number(p));
      if (nums.length < 1 || nums.length > 3 || nums.some((n) => !Number.isInteger(n))) {
        this.msg(loc, 'error', `~${kind}(${spec}): expected (var, [start,] [step,] end) with integers; line not imported`);
        return;
      }
      const end = nums[nums.length - 1]!;
      const start = nums.length >= 2 ? nums[0]! : end > 0 ? 1 : -1;
      const step = nums.length === 3 ? nums[1]! : end >= start ? 1 : -1;
      if (step === 0 || Math.abs((end - start) / step) > MAX_EXPANSIONS) {
        this.msg(loc, 'error', `~${kind}(${spec}): step 0 or too many values; line not imported`);
        return;
      }
      values = [];
      for (let v = start; step > 0 ? v <= end : v >= end; v += step) values.push(kind === 'SEQx' ? v.toString(16) : String(v));
    }
    if ((this.expansions += values.length) > MAX_EXPANSIONS) {
      this.msg(loc, 'error', `~${kind} sequences expand to more than ${MAX_EXPANSIONS} lines; line not imported`);
      return;
    }
    for (const v of values) {
      this.defs.set(name, { value: v, multiline: false });
      this.logical(rest, false, loc, path, depth, stack, nest + 1);
    }
  }

  /**
   * Replaces the $NAME / ${NAME} occurrences of one pass (the caller reads the result again, so
   * a value holding more references is expanded then, with the definitions of that moment).
   */
  substitute(text: string, loc: Loc, path: string): string {
    return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)((?:[ \t]+[A-Za-z0-9_]+)*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=[ \t,)]|$)/g, (whole, braced: string | undefined, params: string | undefined, bare: string | undefined) => {
      const name = braced ?? bare!;
      const args = (params ?? '').trim().split(/[ \t]+/).filter((s) => s !== '');
      return this.lookup(name, args, loc, path) ?? whole;
    });
  }

  private lookup(name: string, args: string[], loc: Loc, path: string): string | undefined {
    const d = this.defs.get(name);
    if (d) return d.value;
    switch (name) {
      case '_PWD': return posix.dirname(path);
      case '_INSTANCE': return this.opts.configId;
      case '_HASH': return '#';
      case '_BANG': return '!';
      case '_ENV': {
        const v = args[0] === undefined ? undefined : this.opts.env[args[0]];
        if (v === undefined) this.msg(loc, 'changed', `\${_ENV ${args[0] ?? ''}}: not set in this environment; replaced by ""`);
        return v ?? '';
      }
      case '_RANDOM':
        this.msg(loc, 'unsupported', '${_RANDOM}: a random value differs on every keepalived start; not substituted');
        return undefined;
      default:
        return undefined;
    }
  }
}

/** Segments -> statement tree. */
function buildTree(segments: readonly Segment[], messages: ImportMessage[]): KNode[] {
  let i = 0;
  const block = (opener: Loc | undefined): KNode[] => {
    const nodes: KNode[] = [];
    while (i < segments.length) {
      const seg = segments[i++]!;
      if (seg.brace === '}') {
        if (opener) return nodes;
        messages.push({ loc: seg.loc, kind: 'error', text: "extra '}' ignored" });
        continue;
      }
      if (seg.brace === '{') {
        messages.push({ loc: seg.loc, kind: 'error', text: "'{' without a keyword before it; its block is skipped" });
        block(seg.loc);
        continue;
      }
      const node: KNode = { keyword: seg.words[0]!, args: seg.words.slice(1), loc: seg.loc, raw: seg.raw };
      if (segments[i]?.brace === '{') {
        const open = segments[i]!.loc;
        i++;
        node.block = block(open);
      }
      nodes.push(node);
    }
    if (opener) messages.push({ loc: opener, kind: 'error', text: "'{' opened here is never closed" });
    return nodes;
  };
  return block(undefined);
}

export function readKeepalived(mainPath: string, fs: ImportFs, opts: KeepalivedReadOptions): KeepalivedReadResult {
  const reader = new Reader(fs, opts);
  reader.readFile(mainPath, 0, []);
  const messages = [...reader.messages];
  const nodes = buildTree(reader.segments, messages);
  return { nodes, messages, files: reader.files };
}
