// Helpers for the keepalived interop and gratuitous-ARP tests: one "VRRP peer" interface over
// keepalive-ts and keepalived, a VIP-add timestamp taken from `ip -ts monitor address` (the
// kernel's view, independent of how fast either daemon logs), neighbour-table and capture parsing.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Lab, LabHost, LabProcess } from './netns.js';
import { waitFor } from './procs.js';
import { startDirector, directorToml, hasVip, type Director } from './daemon.js';
import { keepalivedState, keepalivedVrrpConfig, startKeepalived } from './servers.js';

export type Impl = 'keepalive-ts' | 'keepalived';

export interface VrrpFlavour {
  version: 2 | 3;
  family: 4 | 6;
  /** v2 PASS authentication. */
  password?: string;
}

export const VRID = 51;

export function vipCidr(f: VrrpFlavour): string {
  return f.family === 4 ? '10.77.0.50/24' : 'fd77::50/64';
}

export function bareVip(f: VrrpFlavour): string {
  return vipCidr(f).split('/')[0]!;
}

/** One VRRP router of the interop pair, whichever implementation runs it. */
export interface Peer {
  impl: Impl;
  host: LabHost;
  priority: number;
  /** The running process (replaced by start()). */
  proc(): LabProcess;
  /** keepalive-ts only: the control-socket client of the running process. */
  director(): Director | undefined;
  /** (Re)starts the daemon; resolves once it is up (keepalived: first state logged). */
  start(): Promise<void>;
  /** "MASTER" / "BACKUP" / "FAULT" / "INIT" (keepalived before its first transition). */
  state(): Promise<string>;
  /** keepalive-ts only: per-instance drops and the socket-level drops (blamed on no instance). */
  drops(): Promise<{ instance: Record<string, number>; socket: Record<string, Record<string, number>>; received: number; sent: number } | undefined>;
}

export function makePeer(lab: Lab, impl: Impl, host: LabHost, priority: number, f: VrrpFlavour): Peer {
  let proc: LabProcess | undefined;
  let director: Director | undefined;
  const routerId = `${impl === 'keepalived' ? 'ka' : 'kt'}-${host.name}`;
  return {
    impl,
    host,
    priority,
    proc: () => {
      if (!proc) throw new Error(`${impl} on ${host.name} not started`);
      return proc;
    },
    director: () => director,
    async start() {
      if (impl === 'keepalive-ts') {
        director = await startDirector(lab, host, directorToml({
          routerId, vrid: VRID, priority, version: f.version, vips: [vipCidr(f)], password: f.password, advertInt: 1, garpDelay: 1, garpRepeat: 5,
        }));
        proc = director.proc;
      } else {
        const auth = f.password === undefined ? '' : `  authentication {\n    auth_type PASS\n    auth_pass ${f.password}\n  }\n`;
        proc = await startKeepalived(host, keepalivedVrrpConfig({
          routerId, vrid: VRID, priority, version: f.version, advertInt: 1, vips: [vipCidr(f)], extra: auth,
        }), lab);
      }
    },
    async state() {
      if (impl === 'keepalive-ts') return (await director!.instance()).state;
      return keepalivedState(proc!) ?? 'INIT';
    },
    async drops() {
      if (impl !== 'keepalive-ts' || !director) return undefined;
      const s = await director.status();
      const i = s.vrrp.find((v) => v.name === 'VI_1');
      if (!i) throw new Error(`no VI_1 on ${host.name}`);
      return { instance: i.drops, socket: s.vrrp_socket_drops, received: i.adverts_received, sent: i.adverts_sent };
    },
  };
}

export async function waitPeerState(p: Peer, state: string, ms: number): Promise<void> {
  await waitFor(async () => (await p.state()) === state, ms, `${p.impl} on ${p.host.name} to be ${state} (is ${await p.state().catch(() => '?')})`, 20);
}

/**
 * `ip -ts monitor address` in `host`, in UTC so timestamps parse unambiguously. Resolves once the
 * monitor is subscribed: it prints nothing until an event, and on a loaded machine starting it can
 * take longer than the failover it is meant to time (a fixed pause before it missed events).
 */
export async function startAddrMonitor(host: LabHost): Promise<LabProcess> {
  const mon = host.spawn(['ip', '-ts', 'monitor', 'address'], { env: { TZ: 'UTC' } });
  await waitFor(() => subscribedToNetlink(mon.pid), 15_000, `ip monitor in ${host.name} to subscribe to address events`, 20);
  return mon;
}

/**
 * Whether process `pid` holds an rtnetlink socket bound to multicast groups: ip monitor opens one
 * with its groups only once it is about to read events (its first socket has none).
 */
export function subscribedToNetlink(pid: number): boolean {
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(safeReadlink(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    }
    // Columns: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode (this process's namespace's sockets).
    return readFileSync(`/proc/${pid}/net/netlink`, 'utf8').split('\n').slice(1).some((line) => {
      const f = line.trim().split(/\s+/);
      return f.length >= 10 && f[1] === '0' && parseInt(f[3]!, 16) !== 0 && inodes.has(f[9]!);
    });
  } catch {
    return false; // not started yet, or already gone
  }
}

function safeReadlink(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '';
  }
}

/** Timestamp (ms since epoch) at which `vip` was first added according to `ip -ts monitor address`. */
export function vipAddedAt(monitorOutput: string, vip: string): number | null {
  for (const line of monitorOutput.split('\n')) {
    const m = /^\[([0-9T:.-]+)\]\s+(?!Deleted)\d+:\s+\S+\s+inet6?\s+([0-9a-f.:]+)\//.exec(line);
    if (m && m[2] === vip) return Date.parse(`${m[1]}Z`);
  }
  return null;
}

/**
 * Like vipAddedAt, once the monitor has printed the add: the test usually learns of the VIP by
 * polling `ip addr`, and on a loaded machine the monitor may not have been scheduled yet to read
 * and print the event. Null if no add shows within `timeoutMs`.
 */
export async function waitVipAdded(mon: LabProcess, vip: string, timeoutMs = 5_000): Promise<number | null> {
  await waitFor(() => vipAddedAt(mon.output(), vip) !== null, timeoutMs, `ip monitor to print the add of ${vip}`, 20).catch(() => undefined);
  return vipAddedAt(mon.output(), vip);
}

/** Names of the hosts among `hosts` that hold `vip` on eth0. */
export async function vipHolders(hosts: LabHost[], vip: string): Promise<string[]> {
  const held = await Promise.all(hosts.map((h) => hasVip(h, vip)));
  return hosts.filter((_, i) => held[i]).map((h) => h.name);
}

export interface NeighEntry {
  lladdr: string | null;
  state: string[];
}

/** The neighbour entry for `addr` on the host's eth0, or null when there is none. */
export async function neighEntry(host: LabHost, addr: string): Promise<NeighEntry | null> {
  const out = (await host.exec(['ip', '-j', 'neigh', 'show', 'to', addr, 'dev', 'eth0'])).stdout.trim();
  const list = JSON.parse(out || '[]') as Array<{ dst: string; lladdr?: string; state?: string[] }>;
  const e = list.find((n) => n.dst === addr);
  return e ? { lladdr: e.lladdr ?? null, state: e.state ?? [] } : null;
}

/** Neighbour entries on eth0 whose reachability is being (re)confirmed: DELAY, PROBE, INCOMPLETE. */
export async function unsettledNeighbours(host: LabHost): Promise<string[]> {
  const out = (await host.exec(['ip', '-j', 'neigh', 'show', 'dev', 'eth0'])).stdout.trim();
  const list = JSON.parse(out || '[]') as Array<{ dst: string; lladdr?: string; state?: string[] }>;
  return list.filter((n) => (n.state ?? []).some((s) => s === 'DELAY' || s === 'PROBE' || s === 'INCOMPLETE')).map((n) => `${n.dst} ${(n.state ?? []).join(',')}`);
}

/** Epoch seconds of each tcpdump `-tt` line matching `re`. */
export function captureTimes(text: string, re: RegExp): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+\.\d+)\s/.exec(line);
    if (m && re.test(line)) out.push(Number(m[1]));
  }
  return out;
}

/** Packet lines (timestamped) of a tcpdump `-tt` capture. */
export function packetLines(text: string): string[] {
  return text.split('\n').filter((l) => /^\d+\.\d+\s/.test(l));
}

/** Splits sorted times into bursts: a gap larger than `gapS` seconds starts a new burst. */
export function bursts(times: number[], gapS: number): number[][] {
  const out: number[][] = [];
  for (const t of times) {
    const last = out[out.length - 1];
    if (last && t - last[last.length - 1]! <= gapS) last.push(t);
    else out.push([t]);
  }
  return out;
}
