// FRR's vrrpd (with the zebra it needs) as a VRRP peer inside a lab host: not the system service,
// its own config, pid, zserv and vty paths. FRR does not create the VMAC itself: as its docs say,
// the operator creates a macvlan in bridge mode with the virtual MAC and the VIP on it, and vrrpd
// sets that macvlan protodown while Backup. The daemons drop to the `frr` user (compiled-in vty
// group frrvty), so their directory is a world-traversable one of their own, named after the lab
// so a crashed run's leftovers are swept with the lab's.
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab, LabHost, LabProcess } from './netns.js';
import { waitFor } from './procs.js';

export interface FrrPeer {
  zebra: LabProcess;
  vrrpd: LabProcess;
  dir: string;
  /** "Master", "Backup", "Initialize" (FRR's words) from the last transition vrrpd logged. */
  state(): string;
  stop(): Promise<void>;
}

export interface FrrOptions {
  vrid: number;
  priority: number;
  /** VIP with prefix, e.g. "10.77.0.50/24". */
  vip: string;
  version?: 2 | 3;
  advertMs?: number;
  /** macvlan name (FRR's own convention: vrrp4-IFINDEX-N). */
  macvlan?: string;
}

/** The Debian package's frr user, looked up once. */
let frrIds: { uid: number; gid: number } | undefined;

async function lookupFrr(host: LabHost): Promise<{ uid: number; gid: number }> {
  frrIds ??= {
    uid: Number((await host.exec(['id', '-u', 'frr'])).stdout.trim()),
    gid: Number((await host.exec(['id', '-g', 'frr'])).stdout.trim()),
  };
  return frrIds;
}

/** FRR's state words from the vrrpd log ("[VRID 51] [IPv4] Backup -> Master"). */
export function frrState(log: string, vrid: number, family: 4 | 6 = 4): string {
  const re = new RegExp(`\\[VRID ${vrid}\\] \\[IPv${family}\\] (\\w+) -> (\\w+)`, 'g');
  let last = 'Initialize';
  for (const m of log.matchAll(re)) last = m[2]!;
  return last;
}

export async function startFrrVrrp(lab: Lab, host: LabHost, o: FrrOptions): Promise<FrrPeer> {
  const ids = await lookupFrr(host);
  const dir = await mkdtemp(join(tmpdir(), `${lab.id}-frr-${host.name}-`));
  await chown(dir, ids.uid, ids.gid);
  const mac = `00:00:5e:00:01:${o.vrid.toString(16).padStart(2, '0')}`;
  const macvlan = o.macvlan ?? `vrrp4-${host.ifindex}-1`;
  await host.exec(['ip', 'link', 'add', macvlan, 'link', 'eth0', 'type', 'macvlan', 'mode', 'bridge']);
  await host.exec(['ip', 'link', 'set', 'dev', macvlan, 'address', mac]);
  await host.exec(['ip', 'addr', 'add', o.vip, 'dev', macvlan]);
  await host.exec(['ip', 'link', 'set', 'dev', macvlan, 'up']);
  // The base-system side FRR leaves to the operator: only the macvlan may answer ARP for the VIP
  // (Linux answers for any local address on any interface by default, which would make eth0 answer
  // with its own MAC, even while Backup), ARP requests from eth0 carry eth0's own address, and
  // routes through a protodown macvlan are ignored (FRR's troubleshooting section).
  await host.exec(['sh', '-ec', [
    'echo 1 > /proc/sys/net/ipv4/conf/eth0/arp_ignore',
    'echo 2 > /proc/sys/net/ipv4/conf/eth0/arp_announce',
    'echo 1 > /proc/sys/net/ipv4/conf/eth0/ignore_routes_with_linkdown',
    `echo 1 > /proc/sys/net/ipv4/conf/${macvlan}/ignore_routes_with_linkdown`,
  ].join('\n')]);
  const conf = [
    'interface eth0',
    ` vrrp ${o.vrid} version ${o.version ?? 3}`,
    ` vrrp ${o.vrid} priority ${o.priority}`,
    ` vrrp ${o.vrid} advertisement-interval ${o.advertMs ?? 1000}`,
    ` vrrp ${o.vrid} ip ${o.vip.split('/')[0]}`,
    '',
  ].join('\n');
  const files = { zebra: join(dir, 'zebra.conf'), vrrpd: join(dir, 'vrrpd.conf') };
  await writeFile(files.zebra, '\n');
  await writeFile(files.vrrpd, conf);
  for (const f of Object.values(files)) await chown(f, ids.uid, ids.gid);
  const common = ['-z', join(dir, 'zserv.api'), '--vty_socket', dir, '-u', 'frr', '-g', 'frr', '-P', '0', '--log', 'stdout'];
  const zebra = host.spawn(['/usr/lib/frr/zebra', '-f', files.zebra, '-i', join(dir, 'zebra.pid'), ...common]);
  await zebra.waitForOutput(/zebra \S+ starting/, 10_000);
  const vrrpd = host.spawn(['/usr/lib/frr/vrrpd', '-f', files.vrrpd, '-i', join(dir, 'vrrpd.pid'), ...common, '--log-level', 'debug']);
  await vrrpd.waitForOutput(/vrrpd \S+ starting/, 10_000);
  return {
    zebra,
    vrrpd,
    dir,
    state: () => frrState(vrrpd.output(), o.vrid),
    async stop() {
      await vrrpd.kill('SIGTERM');
      await zebra.kill('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function waitFrrState(p: FrrPeer, state: string, ms: number): Promise<void> {
  await waitFor(async () => p.state() === state, ms, `FRR vrrpd to be ${state} (is ${p.state()})`, 20);
}
