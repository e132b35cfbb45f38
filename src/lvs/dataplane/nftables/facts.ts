/**
 * Facts about the director the ruleset depends on, looked up with iproute2 and /proc (a thin
 * shell; the builder takes the answers as plain inputs):
 *  - where client traffic for a DR service arrives (the interface holding the VIP),
 *  - through which interface a DR real server is on-link (and whether it is on-link at all),
 *  - whether IP forwarding is on (NAT / FULLNAT).
 *
 * Look-ups are batched: every question asked while no batch has started yet (the same turn of the
 * event loop, e.g. 1,000 services served at once on becoming MASTER) is answered by ONE `ip`
 * process — one `ip -j addr show` dump for every address question, one `ip -j -batch -` for every
 * route. Spawning is synchronous work on the main thread (fork + exec, tens of ms on a loaded
 * machine with a large heap): one process per service stalled the event loop — VRRP adverts and
 * the control socket — for tens of seconds with 1,000 DR services. A batch starts after the
 * questions in it were asked, so its answer is never older than the question.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { KeepaliveError } from '../../../util/errors.js';
import type { IpFamily } from '../../../util/endpoint.js';

export interface RouteFact {
  device: string;
  onLink: boolean;
  gateway?: string;
  local: boolean;
}

export interface DirectorFacts {
  /** Interfaces holding `address` (the VIP while this director is MASTER); [] when none does. */
  devicesWithAddress(address: string): Promise<string[]>;
  /** The interface through which `address` is reached; `onLink` false when via a gateway. */
  route(address: string): Promise<RouteFact>;
  /** net.ipv4.ip_forward / net.ipv6.conf.all.forwarding. */
  forwarding(family: IpFamily): Promise<boolean>;
}

/** Runs `cmd args` with `input` on stdin; resolves with stdout and stderr (whatever the exit status). */
function capture(cmd: string, args: string[], input = ''): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new KeepaliveError('E_NETLINK', `${cmd} ${args.join(' ')}: ${e.message}`, { cause: e })));
    child.on('close', (code) => resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/**
 * Coalesces questions: every key asked before the batch starts (setImmediate after the first
 * question) is answered by one call of `run` with the distinct keys; questions asked while a batch
 * runs go to the next one. `run` returns an answer (or an Error) per key; a key it leaves out is
 * rejected with `missing(key)`.
 */
export class Batcher<K, V> {
  #next: Map<K, Array<{ resolve: (v: V) => void; reject: (e: unknown) => void }>> | null = null;
  /** Batches run so far (the number of processes spawned). */
  batches = 0;
  constructor(
    private readonly run: (keys: K[]) => Promise<Map<K, V | Error>>,
    private readonly missing: (key: K) => Error,
  ) {}

  ask(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      if (!this.#next) {
        this.#next = new Map();
        setImmediate(() => void this.#flush());
      }
      const waiting = this.#next.get(key);
      if (waiting) waiting.push({ resolve, reject });
      else this.#next.set(key, [{ resolve, reject }]);
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#next!;
    this.#next = null;
    this.batches++;
    let answers: Map<K, V | Error>;
    try {
      answers = await this.run([...batch.keys()]);
    } catch (err) {
      for (const list of batch.values()) for (const w of list) w.reject(err);
      return;
    }
    for (const [key, list] of batch) {
      const a = answers.has(key) ? answers.get(key)! : this.missing(key);
      for (const w of list) (a instanceof Error ? w.reject(a) : w.resolve(a));
    }
  }
}

/** Interfaces holding each address, from one `ip -j addr show` dump (pure: the dump's JSON in, answers out). */
export function devicesFromDump(dump: string, addresses: readonly string[]): Map<string, string[] | Error> {
  const links = JSON.parse(dump) as Array<{ ifname?: string; addr_info?: Array<{ local?: string }> }>;
  const by = new Map<string, Set<string>>();
  for (const l of links) {
    if (typeof l.ifname !== 'string') continue;
    for (const a of l.addr_info ?? []) {
      if (typeof a.local !== 'string') continue;
      const k = canonical(a.local);
      let s = by.get(k);
      if (!s) by.set(k, (s = new Set()));
      s.add(l.ifname);
    }
  }
  return new Map(addresses.map((a) => [a, [...(by.get(canonical(a)) ?? [])]]));
}

/** `ip -j -batch -` output of `route get` commands (one JSON array per line) -> answer per address, by `dst`. */
export function routesFromBatch(output: string, addresses: readonly string[]): Map<string, RouteFact | Error> {
  const by = new Map<string, RouteFact>();
  for (const line of output.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('[')) continue;
    let r: { dst?: string; dev?: string; gateway?: string; type?: string } | undefined;
    try {
      r = (JSON.parse(t) as Array<typeof r>)[0];
    } catch {
      continue;
    }
    if (!r?.dst || !r.dev) continue;
    const local = r.type === 'local' || r.dev === 'lo';
    by.set(canonical(r.dst), { device: r.dev, onLink: !r.gateway && !local, local, ...(r.gateway ? { gateway: r.gateway } : {}) });
  }
  return new Map(addresses.map((a) => [a, by.get(canonical(a)) ?? new KeepaliveError('E_NETLINK', `no route to ${a}`)]));
}

/** The textual form `ip` prints (IPv6 compressed, lower case); IPv4 as is. */
function canonical(address: string): string {
  if (!address.includes(':')) return address;
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address.toLowerCase();
  }
}

/**
 * DirectorFacts answered in batches: `addressDump` gives the interfaces of every asked address at
 * once, `routeBatch` the route of every asked address at once (each called once per batch).
 */
export function batchedFacts(
  addressDump: (addresses: string[]) => Promise<Map<string, string[] | Error>>,
  routeBatch: (addresses: string[]) => Promise<Map<string, RouteFact | Error>>,
  forwarding: DirectorFacts['forwarding'],
): DirectorFacts & { batches(): { addresses: number; routes: number } } {
  const addressQuestions = new Batcher<string, string[]>(addressDump, (a) => new KeepaliveError('E_NETLINK', `no answer for ${a}`));
  const routeQuestions = new Batcher<string, RouteFact>(routeBatch, (a) => new KeepaliveError('E_NETLINK', `no route to ${a}`));
  return {
    devicesWithAddress: (address) => addressQuestions.ask(address),
    route: (address) => routeQuestions.ask(address),
    forwarding,
    batches: () => ({ addresses: addressQuestions.batches, routes: routeQuestions.batches }),
  };
}

/** The real lookups, through `ip -j`, batched (see above). */
export const systemFacts: DirectorFacts = batchedFacts(
  async (addresses) => {
    const r = await capture('ip', ['-j', 'addr', 'show']);
    if (r.code !== 0) throw new KeepaliveError('E_NETLINK', `ip -j addr show: ${r.stderr.trim() || `exit ${r.code}`}`);
    return devicesFromDump(r.stdout, addresses);
  },
  async (addresses) => {
    // -force: an unreachable address (its `route get` fails) does not stop the others.
    const r = await capture('ip', ['-j', '-force', '-batch', '-'], addresses.map((a) => `route get ${a}\n`).join(''));
    const out = routesFromBatch(r.stdout, addresses);
    const why = r.stderr.trim();
    if (why) for (const [a, v] of out) if (v instanceof Error) out.set(a, new KeepaliveError('E_NETLINK', `no route to ${a} (ip route get: ${why.split('\n')[0]})`));
    return out;
  },
  async (family) => {
    const path = family === 4 ? '/proc/sys/net/ipv4/ip_forward' : '/proc/sys/net/ipv6/conf/all/forwarding';
    return (await readFile(path, 'utf8')).trim() === '1';
  },
);
