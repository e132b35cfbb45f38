import type { KeyPath } from './issues.js';
import { parseConfigSource, type ConfigSource } from './load.js';
import { CONFIG_FIELDS } from './schema.js';
import { checkSemantics } from './semantic.js';
import { parseToml } from './toml-source.js';
import { splitVirtualServers, type SplitText } from './toml-split.js';
import type { VirtualServerConfig } from './types.js';
import { IssueSink, validateDocument, type Table } from './validate.js';

/*
 * Loading a config again after a small edit, in time proportional to the edit: the text is split
 * into its [[virtual_server]] blocks and the rest (toml-split.ts); a block whose text is the same
 * as in the previous load, with the rest of the file the same too, is the same virtual server —
 * the previous load's validated object is taken as it is (same object: the reload plan then knows
 * it unchanged at once, see planReload). Only the other blocks and the rest are parsed, validated
 * and normalised; the rules across virtual servers (overlaps) run on all of them.
 *
 * Anything unusual — a layout the split does not vouch for, any issue at all — falls back to the
 * whole-file parseConfigSource, so errors are exactly those of a full load (file:line and key).
 */

interface CachedBlock {
  readonly vs: VirtualServerConfig;
  /** Lines within the block's own text (line 1 = its first line). */
  readonly lineOf: (path: KeyPath) => number | undefined;
}

/**
 * A cached block's lines, found by parsing its text again when asked (only an issue's file:line
 * needs them): the cache lives as long as the daemon, and keeping every block's location tree (and
 * with it the parsed document) cost ~3 KiB per virtual server (bench `scale`, heap snapshot).
 */
function blockLines(text: string, fileName: string): CachedBlock['lineOf'] {
  return (path) => {
    try {
      return parseToml(text, fileName).lineOf(['virtual_server', 0, ...path.slice(2)]);
    } catch {
      return undefined;
    }
  };
}

/** What a load leaves for the next one: the validated blocks, valid with the same rest of the file. */
export interface ConfigCache {
  readonly context: string;
  readonly blocks: ReadonlyMap<string, CachedBlock>;
}

export interface IncrementalLoad {
  source: ConfigSource;
  /** For the next load (empty after a fallback to the whole-file parse). */
  cache: ConfigCache;
  /** Virtual servers taken from `prev` unchanged; -1 when the whole file was parsed. */
  reused: number;
}

const EMPTY: ConfigCache = { context: '', blocks: new Map() };

/** Issues of the schema pass over the edited blocks only: their index among those -> in the file. */
class RemappingSink extends IssueSink {
  constructor(file: string, lineOf: (path: KeyPath) => number | undefined, private readonly fileIndex: (j: number) => number) {
    super(file, lineOf);
  }

  override add(path: KeyPath, message: string): void {
    if (path[0] === 'virtual_server' && typeof path[1] === 'number') super.add(['virtual_server', this.fileIndex(path[1]), ...path.slice(2)], message);
    else super.add(path, message);
  }
}

/** Thrown inside to leave for the whole-file parse. */
class Fallback extends Error {}

/**
 * parseConfigSource(text, fileName), reusing from `prev` (the cache of the config running now)
 * the virtual servers whose block is unchanged. `inputs` is configInputs(): what the config
 * depends on besides its text. Throws ConfigError exactly as parseConfigSource does.
 */
export function parseConfigIncremental(text: string, fileName: string, inputs: string, prev?: ConfigCache): IncrementalLoad {
  try {
    return incremental(text, fileName, inputs, prev ?? EMPTY);
  } catch (err) {
    if (!(err instanceof Fallback)) throw err;
    return { source: parseConfigSource(text, fileName), cache: EMPTY, reused: -1 };
  }
}

function incremental(text: string, fileName: string, inputs: string, prev: ConfigCache): IncrementalLoad {
  const split = splitVirtualServers(text);
  if (!split) throw new Fallback();
  // The rest as it reads, without the line breaks standing for the blocks (a block that grows by
  // a line does not change the context of the others).
  const restParts: string[] = [];
  let at = 0;
  for (const b of split.blocks) {
    restParts.push(text.slice(at, b.start));
    at = b.end;
  }
  restParts.push(text.slice(at));
  const context = `${inputs}\u0000${fileName}\u0000${restParts.join('\u0000')}`;
  if (prev.context !== context || prev.blocks.size === 0) return cold(text, fileName, split, context);
  const reuse = prev.blocks;
  const restDoc = tryParse(split.rest, fileName);
  if (Object.hasOwn(restDoc.data, 'virtual_server')) throw new Fallback();

  const n = split.blocks.length;
  const texts = new Array<string>(n);
  const lineOfs = new Array<CachedBlock['lineOf']>(n);
  const layout = new Array<VirtualServerConfig | number>(n);
  const edited: unknown[] = [];
  const editedAt: number[] = [];
  let reused = 0;
  for (let i = 0; i < n; i++) {
    const b = split.blocks[i]!;
    const t = text.slice(b.start, b.end);
    texts[i] = t;
    const hit = reuse.get(t);
    if (hit) {
      layout[i] = hit.vs;
      lineOfs[i] = hit.lineOf;
      reused++;
      continue;
    }
    const doc = tryParse(t, fileName);
    const list = doc.data.virtual_server;
    if (Object.keys(doc.data).length !== 1 || !Array.isArray(list) || list.length !== 1) throw new Fallback();
    layout[i] = edited.length;
    editedAt.push(i);
    edited.push(list[0]);
    lineOfs[i] = doc.lineOf;
  }

  const lineOf = (path: KeyPath): number | undefined => {
    if (path[0] !== 'virtual_server' || n === 0) return restDoc.lineOf(path);
    const i = typeof path[1] === 'number' ? path[1] : 0;
    const b = split.blocks[i];
    if (!b) return restDoc.lineOf(path);
    const line = lineOfs[i]!(['virtual_server', 0, ...path.slice(2)]);
    return line === undefined ? undefined : line + b.line - 1;
  };

  const data = Object.assign(Object.create(null) as Table, restDoc.data, n > 0 ? { virtual_server: edited } : {});
  const schemaSink = new RemappingSink(fileName, lineOf, (j) => editedAt[j] ?? j);
  const tree = validateDocument(CONFIG_FIELDS, data, schemaSink);
  if (schemaSink.issues.length > 0) throw new Fallback();
  const sink = new IssueSink(fileName, lineOf);
  const config = checkSemantics(tree, fileName, sink, layout);
  if (sink.issues.length > 0) throw new Fallback();

  const blocks = new Map<string, CachedBlock>();
  for (let i = 0; i < n; i++) {
    const t = texts[i]!;
    blocks.set(t, { vs: config.virtual_server[i]!, lineOf: reuse.get(t)?.lineOf ?? blockLines(t, fileName) });
  }
  return { source: { config, lineOf }, cache: { context, blocks }, reused };
}

/**
 * Nothing to reuse (the first load, or the rest of the file changed): the whole text parsed in one
 * pass as parseConfigSource does, the blocks recorded for the next load.
 */
function cold(text: string, fileName: string, split: SplitText, context: string): IncrementalLoad {
  const whole = tryParse(text, fileName);
  const list = whole.data.virtual_server;
  const n = split.blocks.length;
  if (n > 0 ? !Array.isArray(list) || list.length !== n : list !== undefined) throw new Fallback();
  const sink = new IssueSink(fileName, whole.lineOf);
  const tree = validateDocument(CONFIG_FIELDS, whole.data, sink);
  if (sink.issues.length > 0) throw new Fallback();
  const config = checkSemantics(tree, fileName, sink);
  if (sink.issues.length > 0) throw new Fallback();
  const blocks = new Map<string, CachedBlock>();
  split.blocks.forEach((b, i) => {
    const t = text.slice(b.start, b.end);
    blocks.set(t, { vs: config.virtual_server[i]!, lineOf: blockLines(t, fileName) });
  });
  return { source: { config, lineOf: whole.lineOf }, cache: { context, blocks }, reused: 0 };
}

function tryParse(text: string, fileName: string): ReturnType<typeof parseToml> {
  try {
    return parseToml(text, fileName);
  } catch {
    throw new Fallback();
  }
}
