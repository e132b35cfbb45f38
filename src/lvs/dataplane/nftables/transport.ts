/**
 * How nft command buffers reach the kernel.
 *
 *  - LibnftablesTransport (the default): libnftables in-process through the N-API addon, which
 *    opens libnftables.so.1 with dlopen() at run time and runs each buffer on the libuv thread
 *    pool, so the event loop never waits on a transaction. One buffer = one netlink batch = one
 *    atomic transaction.
 *  - NftCliTransport: `nft -f -` (and `nft -j <list commands>`) as a child process per buffer;
 *    the fallback, and the reference the benchmark compares against.
 *
 * Both serialise their buffers (one in flight at a time) and report how long each took.
 */
import { spawn } from 'node:child_process';
import { KeepaliveError, errorMessage } from '../../../util/errors.js';
import { libnftables, NFT_OUTPUT_JSON, type NftHandle } from '../../../net/native.js';
import { parseCounters, parseMapEntries, rawEntries, type MapEntry, type PacketBytes } from './counters.js';
import { TABLE, type NftFamily } from './model.js';

export interface NftOutput {
  /** Printed output (JSON documents for json runs). */
  readonly output: string;
  /** Wall time from the call to the result, milliseconds. */
  readonly ms: number;
}

export interface NftTransport {
  readonly name: string;
  /** Runs one command buffer; rejects with KeepaliveError E_NETLINK (the kernel or nft refused it). */
  run(commands: string, opts?: { json?: boolean }): Promise<NftOutput>;
  /** The named counters of our table of `family` (default: the main one): "family name" -> figures. */
  counters(family: NftFamily, table?: string): Promise<Map<string, PacketBytes>>;
  /** The elements of one of our sets or maps (in `table`, default the main one). */
  elements(family: NftFamily, kind: 'map' | 'set', name: string, table?: string): Promise<MapEntry[]>;
  close(): void;
}

const NFPROTO: Record<NftFamily, number> = { inet: 1, netdev: 5 };

/** Debian packages that provide libnftables.so.1 / nft. */
export const NFT_PACKAGE_HINT = 'install the Debian package libnftables1 (pulled in by nftables): apt-get install nftables';

/** Longest error text kept from nft (a failing 65,537-element batch echoes its whole line). */
const MAX_ERROR = 2000;

export function trimNftError(text: string): string {
  const t = text.trim();
  if (t.length <= MAX_ERROR) return t;
  return `${t.slice(0, MAX_ERROR)}… (${t.length - MAX_ERROR} more characters)`;
}

/** Splits concatenated JSON documents (`{…}{…}`, one per list command) and parses each. */
export function parseJsonDocuments(text: string): unknown[] {
  const docs: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b) {
      if (depth++ === 0) start = i;
    } else if (c === 0x7d && --depth === 0) {
      docs.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return docs;
}

/** Serialises calls: each starts when the previous one settled. */
class Queue {
  #tail: Promise<unknown> = Promise.resolve();
  push<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(fn, fn);
    this.#tail = p.catch(() => undefined);
    return p;
  }
}

export class LibnftablesTransport implements NftTransport {
  readonly name = 'libnftables';
  /**
   * Two contexts: transactions never wait behind reads (a poll listing many connection tables),
   * each context runs one buffer at a time on the thread pool.
   */
  #write: NftHandle | undefined;
  #read: NftHandle | undefined;
  readonly #writes = new Queue();
  readonly #reads = new Queue();

  /** Opens the contexts; throws E_DATAPLANE_UNAVAILABLE naming the package when libnftables is missing. */
  constructor() {
    const problem = libnftablesProblem();
    if (problem) throw new KeepaliveError('E_DATAPLANE_UNAVAILABLE', problem);
    this.#write = libnftables.open();
    this.#read = libnftables.open();
  }

  run(commands: string, opts: { json?: boolean } = {}): Promise<NftOutput> {
    const read = opts.json === true;
    return (read ? this.#reads : this.#writes).push(async () => {
      const h = read ? this.#read : this.#write;
      if (!h) throw new KeepaliveError('E_CLOSED', 'nftables transport is closed');
      const t0 = performance.now();
      const r = await libnftables.run(h, commands, read ? NFT_OUTPUT_JSON : 0);
      if (r.rc !== 0) throw new KeepaliveError('E_NETLINK', `nftables refused the transaction: ${trimNftError(r.error || `exit code ${r.rc}`)}`);
      return { output: r.output, ms: performance.now() - t0 };
    });
  }

  /** One raw nfnetlink dump of the table's counter objects (not `list counters`: see native/). */
  async counters(family: NftFamily, table = TABLE): Promise<Map<string, PacketBytes>> {
    if (!this.#read) throw new KeepaliveError('E_CLOSED', 'nftables transport is closed');
    let raw: Record<string, [number, number]>;
    try {
      raw = await libnftables.counters(NFPROTO[family], table);
    } catch (err) {
      throw new KeepaliveError('E_NETLINK', `reading the counters of table ${family} ${table}: ${errorMessage(err)}`, { cause: err });
    }
    const out = new Map<string, PacketBytes>();
    for (const [name, [packets, bytes]] of Object.entries(raw)) out.set(`${family} ${name}`, { packets, bytes });
    return out;
  }

  /** The dump's rows as the addon returns them, own timeouts included (connection sync's change detection). */
  async elementRows(family: NftFamily, name: string, table = TABLE): Promise<Array<[string, number | null, number, number]>> {
    if (!this.#read) throw new KeepaliveError('E_CLOSED', 'nftables transport is closed');
    try {
      return await libnftables.setElements(NFPROTO[family], table, name);
    } catch (err) {
      throw new KeepaliveError('E_NETLINK', `reading ${family} ${table} ${name}: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** One raw nfnetlink dump of one set (libnftables' `list map` would fetch every table's metadata first). */
  async elements(family: NftFamily, _kind: 'map' | 'set', name: string, table = TABLE): Promise<MapEntry[]> {
    if (!this.#read) throw new KeepaliveError('E_CLOSED', 'nftables transport is closed');
    try {
      return rawEntries(await libnftables.setElements(NFPROTO[family], table, name));
    } catch (err) {
      throw new KeepaliveError('E_NETLINK', `reading ${family} ${table} ${name}: ${errorMessage(err)}`, { cause: err });
    }
  }

  close(): void {
    for (const h of [this.#write, this.#read]) if (h) libnftables.close(h);
    this.#write = undefined;
    this.#read = undefined;
  }
}

/** Why libnftables cannot be used here (with the package to install), or null. */
export function libnftablesProblem(): string | null {
  let problem: string | null;
  try {
    problem = libnftables.problem();
  } catch (err) {
    return `the native addon is not built (npm run build): ${errorMessage(err)}`;
  }
  return problem ? `libnftables is not available (${problem}); ${NFT_PACKAGE_HINT}` : null;
}

export class NftCliTransport implements NftTransport {
  readonly name = 'nft';
  readonly #queue = new Queue();
  #closed = false;

  constructor(private readonly nftPath = '/usr/sbin/nft') {}

  run(commands: string, opts: { json?: boolean } = {}): Promise<NftOutput> {
    return this.#queue.push(
      () =>
        new Promise<NftOutput>((resolve, reject) => {
          if (this.#closed) return reject(new KeepaliveError('E_CLOSED', 'nftables transport is closed'));
          const t0 = performance.now();
          // `nft -j -f -` prints nothing for list commands given as text; pass those as arguments.
          const args = opts.json ? ['-j', commands] : ['-f', '-'];
          const child = spawn(this.nftPath, args, { stdio: [opts.json ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
          const out: Buffer[] = [];
          const err: Buffer[] = [];
          child.stdout!.on('data', (d: Buffer) => out.push(d));
          child.stderr!.on('data', (d: Buffer) => err.push(d));
          child.on('error', (e) => reject(new KeepaliveError('E_DATAPLANE_UNAVAILABLE', `cannot run ${this.nftPath}: ${e.message}; ${NFT_PACKAGE_HINT}`, { cause: e })));
          child.on('close', (code) => {
            if (code !== 0) {
              reject(new KeepaliveError('E_NETLINK', `nftables refused the transaction: ${trimNftError(Buffer.concat(err).toString() || `exit code ${code}`)}`));
              return;
            }
            resolve({ output: Buffer.concat(out).toString(), ms: performance.now() - t0 });
          });
          if (child.stdin) {
            child.stdin.on('error', () => undefined); // nft may exit (on a syntax error) before reading all of it
            child.stdin.end(commands);
          }
        }),
    );
  }

  async elements(family: NftFamily, kind: 'map' | 'set', name: string, table = TABLE): Promise<MapEntry[]> {
    return parseMapEntries(parseJsonDocuments((await this.run(`list ${kind} ${family} ${table} ${name}`, { json: true })).output));
  }

  async counters(family: NftFamily, table = TABLE): Promise<Map<string, PacketBytes>> {
    return parseCounters(parseJsonDocuments((await this.run(`list counters table ${family} ${table}`, { json: true })).output));
  }

  close(): void {
    this.#closed = true;
  }
}
