import { createRequire } from 'node:module';
import { ConfigError, formatPath, type KeyPath } from './issues.js';

const require = createRequire(import.meta.url);
// toml's public parse() hides the AST; its two halves are used directly so the text is parsed once
// and key paths can be mapped back to lines.
const parser = require('toml/lib/parser') as { parse(text: string): AstNode[] };
const compiler = require('toml/lib/compiler') as { compile(nodes: AstNode[], text: string): unknown };

interface AstNode {
  type: string;
  value: unknown;
  offset: number;
  key?: string[];
}

export interface TomlSource {
  data: Record<string, unknown>;
  /** Line of the key path, or of its closest ancestor that has one (tables named by a header). */
  lineOf(path: KeyPath): number | undefined;
}

export function parseToml(text: string, file: string): TomlSource {
  const lineAt = lineIndex(text);
  let nodes: AstNode[];
  let data: unknown;
  try {
    nodes = parser.parse(text);
    data = compiler.compile(nodes, text);
  } catch (err) {
    throw new ConfigError([{ file, ...syntaxLine(err), path: '', message: `syntax error: ${syntaxMessage(err)}` }]);
  }
  const lines = mapLines(nodes, lineAt);
  return {
    data: data as Record<string, unknown>,
    lineOf(path) {
      for (let n = path.length; n >= 0; n--) {
        const line = lines.get(formatPath(path.slice(0, n)));
        if (line !== undefined) return line;
      }
      return undefined;
    },
  };
}

function syntaxLine(err: unknown): { line?: number } {
  const e = err as { line?: unknown; location?: { start?: { line?: unknown } } };
  const line = e?.location?.start?.line ?? e?.line;
  return typeof line === 'number' ? { line } : {};
}

function syntaxMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function lineIndex(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}

/** Walks the AST the way the compiler does, recording the first line that mentions each key path. */
function mapLines(nodes: AstNode[], lineAt: (offset: number) => number): Map<string, number> {
  const lines = new Map<string, number>();
  const tableArrayCounts = new Map<string, number>();
  let current: KeyPath = [];

  const record = (path: KeyPath, offset: number): void => {
    const key = formatPath(path);
    if (!lines.has(key)) lines.set(key, lineAt(offset));
  };
  // [a.b] and the prefix of [[a.b]] address the latest element of any table array on the way.
  const resolve = (segments: readonly string[]): (string | number)[] => {
    const out: (string | number)[] = [];
    for (const seg of segments) {
      out.push(seg);
      const count = tableArrayCounts.get(formatPath(out));
      if (count !== undefined) out.push(count - 1);
    }
    return out;
  };
  const walkValue = (path: KeyPath, value: AstNode, alias = true): void => {
    record(path, value.offset);
    // A single value where a list is accepted (check = {...}, status_code = 200) is reported as
    // element [0] of the normalized list, so that alias gets the same lines.
    if (alias && value.type !== 'Array') walkValue([...path, 0], value, false);
    if (value.type === 'InlineTable') {
      for (const entry of value.value as AstNode[]) walkAssign(path, entry);
    } else if (value.type === 'Array') {
      (value.value as AstNode[]).forEach((item, i) => walkValue([...path, i], item));
    }
  };
  const walkAssign = (base: KeyPath, node: AstNode): void => {
    const keys = node.key ?? [];
    const value = node.value as AstNode;
    // A key and its value always share a line in TOML, and the value offset is exact.
    for (let i = 1; i < keys.length; i++) record([...base, ...keys.slice(0, i)], value.offset);
    walkValue([...base, ...keys], value);
  };

  for (const node of nodes) {
    const segments = node.value as string[];
    if (node.type === 'ObjectPath') {
      current = resolve(segments);
      record(current, node.offset);
    } else if (node.type === 'ArrayPath') {
      const parent = resolve(segments.slice(0, -1));
      const arrayPath = [...parent, segments[segments.length - 1]!];
      const key = formatPath(arrayPath);
      const index = tableArrayCounts.get(key) ?? 0;
      tableArrayCounts.set(key, index + 1);
      current = [...arrayPath, index];
      record(arrayPath, node.offset);
      record(current, node.offset);
    } else if (node.type === 'Assign') {
      walkAssign(current, node);
    }
  }
  return lines;
}
