/**
 * Splits a config's TOML text into its [[virtual_server]] blocks and the rest, without parsing
 * values: a scan that only follows strings, comments and brackets, so that it finds the table
 * headers that start a line at the top level (and never one inside a multi-line string or array).
 *
 * A block is a `[[virtual_server]]` header with everything up to the next top-level header that
 * is not one of its own sub-tables (`[[virtual_server.real_server]]`, `[virtual_server.x]`…).
 * Parsing each block on its own gives the same value as parsing the whole file, as long as the
 * rest never names `virtual_server` itself: the caller checks that (see incremental.ts).
 *
 * null when the layout is one this split does not vouch for (a quoted first key in a header, a
 * `virtual_server` sub-table outside a block, `[virtual_server]` as a plain table): the caller
 * then parses the whole text as one.
 */

export interface TextBlock {
  /** Offsets in the text: [start, end). */
  start: number;
  end: number;
  /** 1-based line of the block's first character. */
  line: number;
  /** Line breaks inside the block (its line count, when it ends with one). */
  newlines: number;
}

export interface SplitText {
  /** The [[virtual_server]] blocks, in file order. */
  blocks: TextBlock[];
  /** The text without the blocks, each block replaced by as many line breaks: same line numbers. */
  rest: string;
}

const enum C {
  LF = 10,
  SPACE = 32,
  TAB = 9,
  HASH = 35,
  DQ = 34,
  SQ = 39,
  BACKSLASH = 92,
  LBRACKET = 91,
  RBRACKET = 93,
  LBRACE = 123,
  RBRACE = 125,
}

const BORING = /[^\n#"'[\]{}]+/y;

type HeaderKind = 'vs' | 'vs-sub' | 'other';

/** `[[virtual_server]]`, one of its sub-tables, or another header; null for a quoted first key. */
function classify(header: string): HeaderKind | null {
  const m = /^\[\[?[ \t]*([A-Za-z0-9_-]+)[ \t]*([.\]])/.exec(header);
  if (!m) return null;
  if (m[1] !== 'virtual_server') return 'other';
  if (m[2] === '.') return 'vs-sub';
  return /^\[\[[ \t]*virtual_server[ \t]*\]\]/.test(header) ? 'vs' : null;
}

export function splitVirtualServers(text: string): SplitText | null {
  const s = text;
  const n = s.length;
  let i = s.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let depth = 0;
  let atLineStart = true;
  const blocks: TextBlock[] = [];
  /** The block being read, if the last top-level header was a [[virtual_server]] or its sub-table. */
  let open: { start: number; line: number; startNewlines: number } | null = null;
  let newlines = 0;
  const close = (end: number): void => {
    if (open) blocks.push({ start: open.start, end, line: open.line, newlines: newlines - open.startNewlines });
    open = null;
  };

  while (i < n) {
    let c = s.charCodeAt(i);
    if (atLineStart && depth === 0) {
      // Leading blanks of a line at the top level; a '[' here starts a table header.
      while (c === C.SPACE || c === C.TAB) c = s.charCodeAt(++i);
      atLineStart = false;
      if (c === C.LBRACKET) {
        const lineStart = s.lastIndexOf('\n', i - 1) + 1;
        // The header runs to its closing bracket(s); quoted keys may hold brackets.
        let j = i;
        let quote = 0;
        for (; j < n; j++) {
          const d = s.charCodeAt(j);
          if (d === C.LF) break;
          if (quote) {
            if (d === C.BACKSLASH && quote === C.DQ) j++;
            else if (d === quote) quote = 0;
          } else if (d === C.DQ || d === C.SQ) quote = d;
          else if (d === C.RBRACKET) {
            if (s.charCodeAt(j + 1) === C.RBRACKET) j++;
            j++;
            break;
          }
        }
        const kind = classify(s.slice(i, j));
        if (kind === null) return null;
        if (kind === 'vs') {
          close(lineStart);
          open = { start: lineStart, line, startNewlines: newlines };
        } else if (kind === 'vs-sub') {
          if (!open) return null;
        } else {
          close(lineStart);
        }
        i = j;
        continue;
      }
      continue;
    }
    switch (c) {
      case C.LF:
        line++;
        newlines++;
        i++;
        if (depth === 0) atLineStart = true;
        break;
      case C.HASH:
        while (i < n && s.charCodeAt(i) !== C.LF) i++;
        break;
      case C.DQ:
      case C.SQ: {
        const triple = s.charCodeAt(i + 1) === c && s.charCodeAt(i + 2) === c;
        i += triple ? 3 : 1;
        while (i < n) {
          const d = s.charCodeAt(i);
          if (d === C.BACKSLASH && c === C.DQ) {
            if (s.charCodeAt(i + 1) === C.LF) {
              line++;
              newlines++;
            }
            i += 2;
            continue;
          }
          if (d === C.LF) {
            if (!triple) break; // unterminated: the parser will say so
            line++;
            newlines++;
          }
          if (d === c && (!triple || (s.charCodeAt(i + 1) === c && s.charCodeAt(i + 2) === c))) {
            i += triple ? 3 : 1;
            // A closing """ may be followed by up to two more quotes that belong to the string.
            if (triple) while (s.charCodeAt(i) === c) i++;
            break;
          }
          i++;
        }
        break;
      }
      case C.LBRACKET:
      case C.LBRACE:
        depth++;
        i++;
        break;
      case C.RBRACKET:
      case C.RBRACE:
        if (depth > 0) depth--;
        i++;
        break;
      default:
        // A run of characters that mean nothing here, skipped at once.
        BORING.lastIndex = i;
        i = BORING.test(s) ? BORING.lastIndex : i + 1;
    }
  }
  close(n);
  if (blocks.length === 0) return { blocks, rest: text };
  const parts: string[] = [];
  let at = 0;
  for (const b of blocks) {
    parts.push(s.slice(at, b.start), '\n'.repeat(b.newlines));
    at = b.end;
  }
  parts.push(s.slice(at));
  return { blocks, rest: parts.join('') };
}
