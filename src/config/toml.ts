/**
 * A TOML 1.0 parser (with the TOML 1.1 relaxations the previous parser accepted: newlines and a
 * trailing comma in inline tables, `\e` and `\xHH` escapes, times without seconds) that records, in
 * the same single pass, the line of every key path, so that configuration issues can name their
 * line.
 *
 * Why a parser of our own: the PEG-generated one took ~250 ms of CPU (and most of the garbage) to
 * parse a 1,000-virtual-server file, which is what a reload costs; this one is a hand-written
 * scanner over the string (~20x faster).
 *
 * Values: strings, booleans, numbers (integers must be exact as a JavaScript number; beyond
 * Number.MAX_SAFE_INTEGER they are refused, like the previous parser without its bigint option),
 * arrays, tables (objects without a prototype), offset date-times as Date, local date-times / dates
 * / times as their text. Table and key redefinition follow TOML 1.0: a header table is defined
 * once, a dotted-key table only from the table it was made in, an inline table is closed, an array
 * of tables is only appended to by [[headers]].
 *
 * Lines: `lineOf(path)` gives the first line that mentions the key path, or its closest ancestor
 * that has one. A single value where a list is accepted (`check = { ... }`) also answers for the
 * path of its first element (`check[0]...`), as the config normaliser turns it into a list.
 */

export type TomlPath = readonly (string | number)[];

export class TomlSyntaxError extends Error {
  constructor(message: string, readonly line: number) {
    super(message);
    this.name = 'TomlSyntaxError';
  }
}

export interface TomlDocument {
  data: Record<string, unknown>;
  lineOf(path: TomlPath): number | undefined;
}

/** Line of a key path, with the lines of the keys under it. */
interface LineNode {
  line: number | undefined;
  kids: Map<string | number, LineNode> | undefined;
}

const enum Kind {
  Header = 1,
  Implicit,
  Dotted,
  Inline,
  TableArray,
}

type Table = Record<string, unknown>;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

function newLine(line: number | undefined): LineNode {
  return { line, kids: undefined };
}

function kid(node: LineNode, key: string | number): LineNode {
  let k = node.kids?.get(key);
  if (!k) {
    k = newLine(undefined);
    (node.kids ??= new Map()).set(key, k);
  }
  return k;
}

function mark(node: LineNode, line: number): void {
  if (node.line === undefined) node.line = line;
}

function isBare(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 45;
}

function pathText(path: readonly string[]): string {
  return path.map((k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k))).join('.');
}

export function parseTomlDocument(text: string): TomlDocument {
  return new Parser(text).parse();
}

class Parser {
  readonly #s: string;
  #i = 0;
  #line = 1;
  readonly #kinds = new WeakMap<object, Kind>();
  readonly #root: Table;
  readonly #lines = newLine(undefined);

  constructor(text: string) {
    this.#s = text;
    this.#root = this.#table(Kind.Header);
    if (text.charCodeAt(0) === 0xfeff) this.#i = 1;
  }

  parse(): TomlDocument {
    let table = this.#root;
    let tableLines = this.#lines;
    let tablePath: string[] = [];
    const s = this.#s;
    for (;;) {
      this.#skipBlank();
      if (this.#i >= s.length) break;
      const c = s.charCodeAt(this.#i);
      if (c === 91 /* [ */) {
        const line = this.#line;
        const array = s.charCodeAt(this.#i + 1) === 91;
        this.#i += array ? 2 : 1;
        this.#skipWs();
        const keys = this.#keys();
        this.#skipWs();
        if (s.charCodeAt(this.#i) !== 93 || (array && s.charCodeAt(this.#i + 1) !== 93)) {
          this.#fail(`expected ${array ? ']]' : ']'} to close the table header`);
        }
        this.#i += array ? 2 : 1;
        this.#endOfLine();
        const found = array ? this.#arrayTable(keys, line) : this.#headerTable(keys, line);
        table = found.table;
        tableLines = found.lines;
        tablePath = keys;
      } else {
        this.#keyValue(table, tableLines, tablePath);
        this.#endOfLine();
      }
    }
    const root = this.#lines;
    return {
      data: this.#root,
      lineOf(path) {
        let node = root;
        let best = root.line;
        for (const seg of path) {
          const next = node.kids?.get(seg);
          if (next) {
            node = next;
            if (next.line !== undefined) best = next.line;
          } else if (seg !== 0) {
            break;
          }
          // A missing [0] under a single value: the value itself answers for it (see the header).
        }
        return best;
      },
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Tables

  #table(kind: Kind): Table {
    const t = Object.create(null) as Table;
    this.#kinds.set(t, kind);
    return t;
  }

  /** The table a header's last key goes in: implicit tables made on the way, arrays of tables entered at their last element. */
  #parentOf(keys: readonly string[], line: number): { table: Table; lines: LineNode } {
    let table = this.#root;
    let lines = this.#lines;
    for (let n = 0; n < keys.length - 1; n++) {
      const key = keys[n]!;
      let next = table[key];
      if (next === undefined) {
        next = this.#table(Kind.Implicit);
        table[key] = next;
      }
      const kind = typeof next === 'object' && next !== null ? this.#kinds.get(next) : undefined;
      lines = kid(lines, key);
      if (kind === Kind.TableArray) {
        const arr = next as Table[];
        lines = kid(lines, arr.length - 1);
        next = arr[arr.length - 1];
      } else if (kind === undefined || kind === Kind.Inline) {
        throw new TomlSyntaxError(`Cannot redefine existing key '${pathText(keys.slice(0, n + 1))}'.`, line);
      }
      table = next as Table;
    }
    return { table, lines };
  }

  #headerTable(keys: string[], line: number): { table: Table; lines: LineNode } {
    const parent = this.#parentOf(keys, line);
    const name = keys[keys.length - 1]!;
    let table = parent.table[name];
    if (table === undefined) {
      table = this.#table(Kind.Header);
      parent.table[name] = table;
    } else if (typeof table === 'object' && table !== null && this.#kinds.get(table) === Kind.Implicit) {
      this.#kinds.set(table, Kind.Header);
    } else {
      throw new TomlSyntaxError(`Cannot redefine existing key '${pathText(keys)}'.`, line);
    }
    const lines = kid(parent.lines, name);
    mark(lines, line);
    return { table: table as Table, lines };
  }

  #arrayTable(keys: string[], line: number): { table: Table; lines: LineNode } {
    const parent = this.#parentOf(keys, line);
    const name = keys[keys.length - 1]!;
    let arr = parent.table[name];
    if (arr === undefined) {
      arr = [];
      this.#kinds.set(arr as object, Kind.TableArray);
      parent.table[name] = arr;
    } else if (typeof arr !== 'object' || arr === null || this.#kinds.get(arr) !== Kind.TableArray) {
      if (Array.isArray(arr)) throw new TomlSyntaxError(`Cannot append to statically defined array '${pathText(keys)}'.`, line);
      throw new TomlSyntaxError(`Cannot redefine existing key '${pathText(keys)}'.`, line);
    }
    const list = arr as Table[];
    const table = this.#table(Kind.Header);
    list.push(table);
    const arrayLines = kid(parent.lines, name);
    mark(arrayLines, line);
    const lines = kid(arrayLines, list.length - 1);
    mark(lines, line);
    return { table, lines };
  }

  /** `a.b.c = value` into `table`. */
  #keyValue(table: Table, tableLines: LineNode, tablePath: readonly string[]): void {
    const keys = this.#keys();
    this.#skipWs();
    if (this.#s.charCodeAt(this.#i) !== 61 /* = */) this.#fail('expected = after the key');
    this.#i++;
    this.#skipWs();
    const line = this.#line;
    let lines = tableLines;
    for (let n = 0; n < keys.length - 1; n++) {
      const key = keys[n]!;
      let next = table[key];
      if (next === undefined) {
        next = this.#table(Kind.Dotted);
        table[key] = next;
      } else {
        const kind = typeof next === 'object' && next !== null ? this.#kinds.get(next) : undefined;
        if (kind !== Kind.Dotted && kind !== Kind.Implicit) {
          const where = pathText([...tablePath, ...keys.slice(0, n + 1)]);
          if (kind === Kind.Header) throw new TomlSyntaxError(`Cannot use dotted keys to extend table '${where}' defined elsewhere.`, line);
          if (kind === Kind.Inline) throw new TomlSyntaxError(`Cannot extend inline table '${where}'.`, line);
          throw new TomlSyntaxError(`Cannot redefine existing key '${where}'.`, line);
        }
      }
      table = next as Table;
      lines = kid(lines, key);
      mark(lines, line);
    }
    const last = keys[keys.length - 1]!;
    if (table[last] !== undefined) throw new TomlSyntaxError(`Cannot redefine existing key '${pathText([...tablePath, ...keys])}'.`, line);
    const valueLines = kid(lines, last);
    table[last] = this.#value(valueLines);
  }

  // ---------------------------------------------------------------------------------------------
  // Keys

  #keys(): string[] {
    const keys = [this.#key()];
    for (;;) {
      const save = this.#i;
      this.#skipWs();
      if (this.#s.charCodeAt(this.#i) !== 46 /* . */) {
        this.#i = save;
        return keys;
      }
      this.#i++;
      this.#skipWs();
      keys.push(this.#key());
    }
  }

  #key(): string {
    const s = this.#s;
    const c = s.charCodeAt(this.#i);
    if (c === 34 /* " */) {
      if (s.startsWith('"""', this.#i)) this.#fail('a key cannot be a multi-line string');
      return this.#basicString();
    }
    if (c === 39 /* ' */) {
      if (s.startsWith("'''", this.#i)) this.#fail('a key cannot be a multi-line string');
      return this.#literalString();
    }
    const start = this.#i;
    while (this.#i < s.length && isBare(s.charCodeAt(this.#i))) this.#i++;
    if (this.#i === start) this.#fail(this.#i >= s.length ? 'expected a key, found the end of the file' : `expected a key, found ${this.#show()}`);
    return s.slice(start, this.#i);
  }

  // ---------------------------------------------------------------------------------------------
  // Values

  #value(lines: LineNode): unknown {
    mark(lines, this.#line);
    const s = this.#s;
    const c = s.charCodeAt(this.#i);
    switch (c) {
      case 34: /* " */
        return s.startsWith('"""', this.#i) ? this.#multiBasicString() : this.#basicString();
      case 39: /* ' */
        return s.startsWith("'''", this.#i) ? this.#multiLiteralString() : this.#literalString();
      case 91: /* [ */
        return this.#array(lines);
      case 123: /* { */
        return this.#inlineTable(lines);
      case 116: /* t */
        if (s.startsWith('true', this.#i) && !isBare(s.charCodeAt(this.#i + 4))) {
          this.#i += 4;
          return true;
        }
        break;
      case 102: /* f */
        if (s.startsWith('false', this.#i) && !isBare(s.charCodeAt(this.#i + 5))) {
          this.#i += 5;
          return false;
        }
        break;
    }
    if (Number.isNaN(c)) this.#fail('expected a value, found the end of the file');
    return this.#scalar();
  }

  #array(lines: LineNode): unknown[] {
    this.#i++; // [
    const out: unknown[] = [];
    for (;;) {
      this.#skipBlank();
      if (this.#s.charCodeAt(this.#i) === 93 /* ] */) {
        this.#i++;
        return out;
      }
      out.push(this.#value(kid(lines, out.length)));
      this.#skipBlank();
      const c = this.#s.charCodeAt(this.#i);
      if (c === 44 /* , */) {
        this.#i++;
        continue;
      }
      if (c === 93) {
        this.#i++;
        return out;
      }
      this.#fail(`expected , or ] in an array, found ${this.#show()}`);
    }
  }

  #inlineTable(lines: LineNode): Table {
    this.#i++; // {
    const table = this.#table(Kind.Inline);
    // Dotted keys inside an inline table make tables that are themselves part of it.
    for (;;) {
      this.#skipBlank();
      if (this.#s.charCodeAt(this.#i) === 125 /* } */) {
        this.#i++;
        return table;
      }
      this.#inlineEntry(table, lines);
      this.#skipBlank();
      const c = this.#s.charCodeAt(this.#i);
      if (c === 44 /* , */) {
        this.#i++;
        continue;
      }
      if (c === 125) {
        this.#i++;
        return table;
      }
      this.#fail(`expected , or } in an inline table, found ${this.#show()}`);
    }
  }

  #inlineEntry(table: Table, tableLines: LineNode): void {
    const keys = this.#keys();
    this.#skipWs();
    if (this.#s.charCodeAt(this.#i) !== 61) this.#fail('expected = after the key');
    this.#i++;
    this.#skipWs();
    const line = this.#line;
    let t = table;
    let lines = tableLines;
    for (let n = 0; n < keys.length - 1; n++) {
      const key = keys[n]!;
      let next = t[key];
      if (next === undefined) {
        next = this.#table(Kind.Dotted);
        t[key] = next;
      } else if (typeof next !== 'object' || next === null || this.#kinds.get(next) !== Kind.Dotted) {
        throw new TomlSyntaxError(`Cannot redefine existing key '${pathText(keys.slice(0, n + 1))}'.`, line);
      }
      t = next as Table;
      lines = kid(lines, key);
      mark(lines, line);
    }
    const last = keys[keys.length - 1]!;
    if (t[last] !== undefined) throw new TomlSyntaxError(`Cannot redefine existing key '${pathText(keys)}'.`, line);
    t[last] = this.#value(kid(lines, last));
  }

  /** Numbers, booleans' lookalikes, dates and times: one token, classified. */
  #scalar(): unknown {
    const s = this.#s;
    const start = this.#i;
    let i = start;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (isBare(c) || c === 43 /* + */ || c === 46 /* . */ || c === 58 /* : */) continue;
      // "1979-05-27 07:32:00": a space between a date and a time.
      if (c === 32 && i - start === 10 && /^\d{4}-\d{2}-\d{2}$/.test(s.slice(start, i)) && /^\d{2}:/.test(s.slice(i + 1, i + 4))) continue;
      break;
    }
    const tok = s.slice(start, i);
    if (tok === '') this.#fail(`expected a value, found ${this.#show()}`);
    this.#i = i;
    const v = this.#number(tok) ?? this.#datetime(tok);
    if (v === undefined) {
      this.#i = start;
      this.#fail(`invalid value ${JSON.stringify(tok)}`);
    }
    return v;
  }

  #number(tok: string): number | undefined {
    const c0 = tok.charCodeAt(0);
    // The common case, a short plain decimal (port, weight, delay): no regex, no BigInt.
    if (tok.length <= 15 && c0 >= 49 && c0 <= 57) {
      let n = 0;
      let i = 0;
      for (; i < tok.length; i++) {
        const d = tok.charCodeAt(i) - 48;
        if (d < 0 || d > 9) break;
        n = n * 10 + d;
      }
      if (i === tok.length) return n;
    }
    if (/^[+-]?(?:0|[1-9](?:_?\d)*)$/.test(tok)) return this.#integer(BigInt(tok.replace(/_/g, '')), tok);
    if (c0 === 48 /* 0 */ && tok.length > 2) {
      const p = tok[1];
      const digits = tok.slice(2);
      if (p === 'x' && /^[0-9A-Fa-f](?:_?[0-9A-Fa-f])*$/.test(digits)) return this.#integer(BigInt(`0x${digits.replace(/_/g, '')}`), tok);
      if (p === 'o' && /^[0-7](?:_?[0-7])*$/.test(digits)) return this.#integer(BigInt(`0o${digits.replace(/_/g, '')}`), tok);
      if (p === 'b' && /^[01](?:_?[01])*$/.test(digits)) return this.#integer(BigInt(`0b${digits.replace(/_/g, '')}`), tok);
    }
    if (/^[+-]?(?:0|[1-9](?:_?\d)*)(?:\.\d(?:_?\d)*)?(?:[eE][+-]?\d(?:_?\d)*)?$/.test(tok)) return Number(tok.replace(/_/g, ''));
    if (/^[+-]?inf$/.test(tok)) return tok.startsWith('-') ? -Infinity : Infinity;
    if (/^[+-]?nan$/.test(tok)) return Number.NaN;
    return undefined;
  }

  #integer(v: bigint, tok: string): number {
    if (v > INT64_MAX || v < INT64_MIN) throw new TomlSyntaxError(`Integer ${tok} is outside the 64-bit signed integer range required by TOML.`, this.#line);
    if (v > MAX_SAFE || v < -MAX_SAFE) throw new TomlSyntaxError(`Integer ${tok} cannot be represented losslessly as a JavaScript number.`, this.#line);
    return Number(v);
  }

  #datetime(tok: string): Date | string | undefined {
    const dt = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?)?$/.exec(tok);
    if (dt) {
      const [, y, mo, d, h, mi, sec, frac, off] = dt;
      const year = Number(y);
      const month = Number(mo);
      const day = Number(d);
      const dim = [31, year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
      if (dim === undefined || day < 1 || day > dim) throw new TomlSyntaxError(`invalid date ${tok}`, this.#line);
      if (h === undefined) return tok;
      this.#checkTime(Number(h), Number(mi), sec === undefined ? 0 : Number(sec), tok);
      if (off !== undefined && off.length === 6 && (Number(off.slice(1, 3)) > 23 || Number(off.slice(4)) > 59)) throw new TomlSyntaxError(`invalid offset in ${tok}`, this.#line);
      const time = `${h}:${mi}:${sec ?? '00'}${frac ?? ''}`;
      if (off === undefined) return `${y}-${mo}-${d}T${time}`;
      return new Date(`${y}-${mo}-${d}T${time}${off.toUpperCase()}`);
    }
    const t = /^(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?$/.exec(tok);
    if (t) {
      this.#checkTime(Number(t[1]), Number(t[2]), t[3] === undefined ? 0 : Number(t[3]), tok);
      return `${t[1]}:${t[2]}:${t[3] ?? '00'}${t[4] ?? ''}`;
    }
    return undefined;
  }

  #checkTime(h: number, m: number, sec: number, tok: string): void {
    if (h > 23 || m > 59 || sec > 60) throw new TomlSyntaxError(`invalid time in ${tok}`, this.#line);
  }

  // ---------------------------------------------------------------------------------------------
  // Strings

  #basicString(): string {
    const s = this.#s;
    let i = this.#i + 1;
    let out = '';
    let from = i;
    for (;;) {
      if (i >= s.length) this.#fail('unterminated string');
      const c = s.charCodeAt(i);
      if (c === 34) {
        this.#i = i + 1;
        return out + s.slice(from, i);
      }
      if (c === 92 /* \ */) {
        out += s.slice(from, i);
        const esc = this.#escape(i);
        out += esc.text;
        i = esc.next;
        from = i;
        continue;
      }
      if (c === 10 || c === 13) this.#fail('newline in a single-line string');
      if ((c < 32 && c !== 9) || c === 127) this.#fail('control character in a string');
      i++;
    }
  }

  #literalString(): string {
    const s = this.#s;
    const start = this.#i + 1;
    let i = start;
    for (;;) {
      if (i >= s.length) this.#fail('unterminated string');
      const c = s.charCodeAt(i);
      if (c === 39) {
        this.#i = i + 1;
        return s.slice(start, i);
      }
      if (c === 10 || c === 13) this.#fail('newline in a single-line string');
      if ((c < 32 && c !== 9) || c === 127) this.#fail('control character in a string');
      i++;
    }
  }

  #multiBasicString(): string {
    const s = this.#s;
    let i = this.#i + 3;
    // A newline right after the opening delimiter is trimmed.
    if (s.charCodeAt(i) === 10) { i++; this.#line++; } else if (s.charCodeAt(i) === 13 && s.charCodeAt(i + 1) === 10) { i += 2; this.#line++; }
    let out = '';
    let from = i;
    for (;;) {
      if (i >= s.length) this.#fail('unterminated multi-line string');
      const c = s.charCodeAt(i);
      if (c === 34 && s.charCodeAt(i + 1) === 34 && s.charCodeAt(i + 2) === 34) {
        // Up to two more quotes right before the delimiter belong to the string.
        let end = i;
        while (s.charCodeAt(end + 3) === 34 && end - i < 2) end++;
        this.#i = end + 3;
        return out + s.slice(from, end);
      }
      if (c === 92) {
        out += s.slice(from, i);
        // A line-ending backslash swallows the newline and the whitespace after it.
        let j = i + 1;
        while (s.charCodeAt(j) === 32 || s.charCodeAt(j) === 9) j++;
        if (s.charCodeAt(j) === 10 || (s.charCodeAt(j) === 13 && s.charCodeAt(j + 1) === 10)) {
          for (;;) {
            const d = s.charCodeAt(j);
            if (d === 32 || d === 9) j++;
            else if (d === 10) { j++; this.#line++; }
            else if (d === 13 && s.charCodeAt(j + 1) === 10) { j += 2; this.#line++; }
            else break;
          }
          i = j;
          from = i;
          continue;
        }
        const esc = this.#escape(i);
        out += esc.text;
        i = esc.next;
        from = i;
        continue;
      }
      if (c === 10) { this.#line++; i++; continue; }
      if (c === 13) {
        if (s.charCodeAt(i + 1) !== 10) this.#fail('bare carriage return in a string');
        i++;
        continue;
      }
      if ((c < 32 && c !== 9) || c === 127) this.#fail('control character in a string');
      i++;
    }
  }

  #multiLiteralString(): string {
    const s = this.#s;
    let i = this.#i + 3;
    if (s.charCodeAt(i) === 10) { i++; this.#line++; } else if (s.charCodeAt(i) === 13 && s.charCodeAt(i + 1) === 10) { i += 2; this.#line++; }
    const start = i;
    for (;;) {
      if (i >= s.length) this.#fail('unterminated multi-line string');
      const c = s.charCodeAt(i);
      if (c === 39 && s.charCodeAt(i + 1) === 39 && s.charCodeAt(i + 2) === 39) {
        let end = i;
        while (s.charCodeAt(end + 3) === 39 && end - i < 2) end++;
        this.#i = end + 3;
        return s.slice(start, end);
      }
      if (c === 10) { this.#line++; i++; continue; }
      if (c === 13) {
        if (s.charCodeAt(i + 1) !== 10) this.#fail('bare carriage return in a string');
        i++;
        continue;
      }
      if ((c < 32 && c !== 9) || c === 127) this.#fail('control character in a string');
      i++;
    }
  }

  /** The escape at s[i] (a backslash): its text and where the string goes on. */
  #escape(i: number): { text: string; next: number } {
    const s = this.#s;
    const e = s[i + 1];
    switch (e) {
      case 'b': return { text: '\b', next: i + 2 };
      case 't': return { text: '\t', next: i + 2 };
      case 'n': return { text: '\n', next: i + 2 };
      case 'f': return { text: '\f', next: i + 2 };
      case 'r': return { text: '\r', next: i + 2 };
      case 'e': return { text: '\x1b', next: i + 2 };
      case '"': return { text: '"', next: i + 2 };
      case '\\': return { text: '\\', next: i + 2 };
      case 'x':
      case 'u':
      case 'U': {
        const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
        const hex = s.slice(i + 2, i + 2 + n);
        if (hex.length !== n || !/^[0-9A-Fa-f]+$/.test(hex)) this.#fail(`invalid escape \\${e}${hex}`);
        const cp = parseInt(hex, 16);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) this.#fail(`invalid escape \\${e}${hex}: not a Unicode scalar value`);
        return { text: String.fromCodePoint(cp), next: i + 2 + n };
      }
      default:
        this.#fail(`invalid escape \\${e ?? ''}`);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Whitespace, comments, line ends

  /** Spaces and tabs. */
  #skipWs(): void {
    const s = this.#s;
    while (this.#i < s.length) {
      const c = s.charCodeAt(this.#i);
      if (c === 32 || c === 9) this.#i++;
      else break;
    }
  }

  /** Whitespace, newlines and comments. */
  #skipBlank(): void {
    const s = this.#s;
    while (this.#i < s.length) {
      const c = s.charCodeAt(this.#i);
      if (c === 32 || c === 9) this.#i++;
      else if (c === 10) { this.#i++; this.#line++; }
      else if (c === 13) {
        if (s.charCodeAt(this.#i + 1) !== 10) this.#fail('bare carriage return');
        this.#i++;
      } else if (c === 35 /* # */) this.#comment();
      else break;
    }
  }

  #comment(): void {
    const s = this.#s;
    let i = this.#i + 1;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 10 || (c === 13 && s.charCodeAt(i + 1) === 10)) break;
      if ((c < 32 && c !== 9) || c === 127) {
        this.#i = i;
        this.#fail('control character in a comment');
      }
    }
    this.#i = i;
  }

  /** After an expression: optional whitespace and comment, then a newline or the end. */
  #endOfLine(): void {
    this.#skipWs();
    const s = this.#s;
    if (s.charCodeAt(this.#i) === 35) this.#comment();
    if (this.#i >= s.length) return;
    const c = s.charCodeAt(this.#i);
    if (c === 10) { this.#i++; this.#line++; return; }
    if (c === 13 && s.charCodeAt(this.#i + 1) === 10) { this.#i += 2; this.#line++; return; }
    this.#fail(`expected the end of the line, found ${this.#show()}`);
  }

  #show(): string {
    const s = this.#s;
    if (this.#i >= s.length) return 'the end of the file';
    const c = s.codePointAt(this.#i)!;
    return c < 32 ? `character U+${c.toString(16).padStart(4, '0')}` : JSON.stringify(String.fromCodePoint(c));
  }

  #fail(message: string): never {
    throw new TomlSyntaxError(message, this.#line);
  }
}
