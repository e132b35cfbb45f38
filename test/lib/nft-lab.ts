// Labs for the kernel data plane (lb_kind DR / NAT / FULLNAT): real servers set up the way each
// kind needs them, nginx that tells who connected, and the service/pool specs the data plane takes.
//
// DR:  one segment 10.77.0.0/24. Client cl .100, director da .11 (VIP .50 on eth0), real servers
//      r1 .21, r2 .22 (and a sorry server so .30) with the VIP on lo and arp_ignore=1 /
//      arp_announce=2, so they accept packets for the VIP but never answer ARP for it.
// NAT: two segments. Clients on br0 10.77.0.0/24 (cl .100, director eth0 .11, VIP .50); real
//      servers on br1 10.78.0.0/24 (director eth1 .1 — or a floating gateway VIP — real servers
//      .21/.22, sorry .30) with their default route via the director, which forwards
//      (ip_forward=1) and un-NATs the replies through conntrack.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LbKind, PoolSpec, ServiceSpec } from '../../src/lvs/dataplane/contract.js';
import type { SchedulerName } from '../../src/lvs/scheduler-names.js';
import { endpoint, endpointText, serviceKey, type ServiceMatch } from '../../src/util/endpoint.js';
import type { Lab, LabHost, LabProcess } from './lab-core.js';
import { nginxConfig, waitUntilListening } from './servers.js';

export const VIP = '10.77.0.50';
export const CLIENT = '10.77.0.100';

/** nginx for the kernel-path labs: `/` answers the server's name, `/who` the client address it saw, `/big` 2 MiB at 200 KiB/s (~10 s). */
export async function startRealServer(lab: Lab, host: LabHost, name: string, ports: number[] = [80]): Promise<LabProcess> {
  const dir = join(lab.tmpDir, `nginx-${host.name}`);
  await mkdir(join(dir, 'www'), { recursive: true });
  await writeFile(join(dir, 'www', 'big'), Buffer.alloc(2 * 1024 * 1024, 'x'));
  const conf = nginxConfig(dir, {
    listen: ports.flatMap((p) => [`listen ${p};`, `listen [::]:${p} ipv6only=on;`]),
    http: 'sendfile on;',
    locations: [
      `location = /who { default_type text/plain; return 200 "$remote_addr"; }`,
      `location = /big { root ${dir}/www; default_type application/octet-stream; limit_rate 200k; }`,
      `location / { default_type text/plain; return 200 "${name}"; }`,
    ].join('\n    '),
  });
  await writeFile(join(dir, 'nginx.conf'), conf);
  const proc = host.spawn(['nginx', '-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf')]);
  for (const p of ports) await waitUntilListening(host, p, proc, 10_000, `nginx on ${host.name}:${p}`);
  return proc;
}

export const VIP6 = 'fd77::50';

/**
 * A real server for DR: the VIP on lo, and the two ARP sysctls so it never answers ARP for it
 * (IPv6 needs no sysctl: Linux answers neighbour solicitations only for addresses of the
 * receiving interface).
 */
export async function prepareDrRealServer(host: LabHost, vip = VIP): Promise<void> {
  await host.exec(['sh', '-ec', [
    `ip addr add ${vip}/32 dev lo`,
    `ip addr add ${VIP6}/128 dev lo`,
    'sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2',
    'sysctl -qw net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2',
  ].join('\n')]);
}

export interface DrFarm {
  lab: Lab;
  client: LabHost;
  director: LabHost;
  r1: LabHost;
  r2: LabHost;
  n1: LabProcess;
  n2: LabProcess;
  sorry?: LabHost;
}

export async function drFarm(lab: Lab, opts: { sorry?: boolean; ports?: number[]; vipOnDirector?: boolean } = {}): Promise<DrFarm> {
  const [client, director, r1, r2] = await Promise.all([
    lab.addHost('cl', { ipv4: `${CLIENT}/24`, ipv6: 'fd77::100/64' }),
    lab.addHost('da', { ipv4: '10.77.0.11/24', ipv6: 'fd77::11/64' }),
    lab.addHost('r1', { ipv4: '10.77.0.21/24', ipv6: 'fd77::21/64' }),
    lab.addHost('r2', { ipv4: '10.77.0.22/24', ipv6: 'fd77::22/64' }),
  ]);
  if (opts.vipOnDirector ?? true) await director.exec(['sh', '-ec', `ip addr add ${VIP}/24 dev eth0\nip addr add ${VIP6}/64 dev eth0 nodad`]);
  await Promise.all([prepareDrRealServer(r1), prepareDrRealServer(r2)]);
  const [n1, n2] = await Promise.all([startRealServer(lab, r1, 'r1', opts.ports), startRealServer(lab, r2, 'r2', opts.ports)]);
  let sorry: LabHost | undefined;
  if (opts.sorry) {
    sorry = await lab.addHost('so', { ipv4: '10.77.0.30/24', ipv6: 'fd77::30/64' });
    await prepareDrRealServer(sorry);
    await startRealServer(lab, sorry, 'sorry', opts.ports);
  }
  return { lab, client, director, r1, r2, n1, n2, ...(sorry ? { sorry } : {}) };
}

export interface NatFarm extends DrFarm {
  /** The real-server segment's bridge. */
  rsBridge: string;
}

/**
 * LVS-NAT topology. `gateway`: the real servers' default gateway on br1 (default the director's
 * eth1 address 10.78.0.1; a vrrp_sync_group test passes a floating VIP instead and adds the
 * directors itself with `directors: false`).
 */
export async function natFarm(lab: Lab, opts: { sorry?: boolean; ports?: number[]; gateway?: string; directors?: boolean } = {}): Promise<NatFarm> {
  const rsBridge = await lab.addBridge();
  const gateway = opts.gateway ?? '10.78.0.1';
  const [client, r1, r2] = await Promise.all([
    lab.addHost('cl', { ipv4: `${CLIENT}/24` }),
    lab.addHost('r1', { ipv4: '10.78.0.21/24', bridge: rsBridge }),
    lab.addHost('r2', { ipv4: '10.78.0.22/24', bridge: rsBridge }),
  ]);
  let director: LabHost | undefined;
  if (opts.directors ?? true) {
    director = await lab.addHost('da', { ipv4: '10.77.0.11/24' });
    await lab.addLink(director, rsBridge, { ipv4: '10.78.0.1/24' });
    await director.exec(['sh', '-ec', `ip addr add ${VIP}/24 dev eth0\nsysctl -qw net.ipv4.ip_forward=1`]);
  }
  const hosts = [r1, r2];
  let sorry: LabHost | undefined;
  if (opts.sorry) {
    sorry = await lab.addHost('so', { ipv4: '10.78.0.30/24', bridge: rsBridge });
    hosts.push(sorry);
  }
  // The route back: replies to clients go through the director (which un-NATs them).
  for (const h of hosts) await h.exec(['ip', 'route', 'add', 'default', 'via', gateway]);
  const [n1, n2] = await Promise.all([startRealServer(lab, r1, 'r1', opts.ports), startRealServer(lab, r2, 'r2', opts.ports)]);
  if (sorry) await startRealServer(lab, sorry, 'sorry', opts.ports);
  return { lab, client, director: director!, r1, r2, n1, n2, rsBridge, ...(sorry ? { sorry } : {}) };
}

export interface SpecOptions {
  family?: 4 | 6;
  kind: LbKind;
  scheduler?: SchedulerName;
  protocol?: 'tcp' | 'udp';
  address?: string;
  /** Port ranges; default [[80, 80]]. */
  ports?: Array<[number, number]>;
  fwmark?: number;
  persistence?: { timeoutMs: number; prefix: number };
  seed?: number;
  tableSize?: number;
  hashPort?: boolean;
  drainMs?: number;
}

export function svcSpec(o: SpecOptions): ServiceSpec {
  const match: ServiceMatch = o.fwmark !== undefined
    ? { kind: 'fwmark', mark: o.fwmark, family: o.family ?? 4 }
    : { kind: 'addr', protocol: o.protocol ?? 'tcp', address: o.address ?? (o.family === 6 ? VIP6 : VIP), family: o.family ?? 4, ports: (o.ports ?? [[80, 80]]).map(([from, to]) => ({ from, to })) };
  return {
    key: serviceKey(match),
    match,
    kind: o.kind,
    scheduler: o.scheduler ?? 'rr',
    hash: { seed: o.seed ?? 0xc0ffee, tableSize: o.tableSize ?? 65537, port: o.hashPort ?? false, fallback: false },
    persistence: o.persistence ?? null,
    drainMs: o.drainMs ?? 2000,
    ops: false,
  };
}

/** A pool from [address, port, weight] triples. */
export function pool(dests: Array<[string, number, number]>, sorry?: [string, number]): PoolSpec {
  return {
    dests: dests.map(([a, p, w]) => {
      const e = endpoint(a, p);
      return { key: endpointText(e), endpoint: e, weight: w };
    }),
    sorry: sorry ? endpoint(sorry[0], sorry[1]) : null,
  };
}

/**
 * Starts a download of `path` from address:port in `host` that prints one JSON line when done:
 * { ok, bytes, ms, error }. Resolves with the process; read the result with `transferResult`.
 */
export function startTransfer(host: LabHost, address: string, port: number, path = '/big'): LabProcess {
  const script = `
const http = require('node:http');
const t0 = Date.now(); let bytes = 0;
const req = http.get({ host: process.argv[1], port: Number(process.argv[2]), path: process.argv[3], agent: false }, (res) => {
  console.log('started');
  res.on('data', (d) => (bytes += d.length));
  res.on('end', () => console.log(JSON.stringify({ ok: res.statusCode === 200 && res.complete, bytes, ms: Date.now() - t0 })));
  res.on('error', (e) => console.log(JSON.stringify({ ok: false, bytes, ms: Date.now() - t0, error: e.message })));
});
req.on('error', (e) => console.log(JSON.stringify({ ok: false, bytes, ms: Date.now() - t0, error: e.message })));
`;
  return host.spawn([process.execPath, '-e', script, address, String(port), path]);
}

export async function transferResult(proc: LabProcess, timeoutMs = 30_000): Promise<{ ok: boolean; bytes: number; ms: number; error?: string }> {
  const m = await proc.waitForOutput(/(\{"ok".*\})/, timeoutMs);
  return JSON.parse(m[1]!) as { ok: boolean; bytes: number; ms: number; error?: string };
}

/**
 * A keep-alive HTTP client in `host`: one connection, a request every `everyMs`, printing the
 * body of each answer as a line ("r1"…) and "error <msg>" if the connection fails.
 */
export function startKeepAlive(host: LabHost, address: string, port: number, everyMs = 100): LabProcess {
  const script = `
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let sock;
const tick = () => {
  const req = http.get({ host: process.argv[1], port: Number(process.argv[2]), path: '/', agent }, (res) => {
    let b = ''; res.setEncoding('utf8'); res.on('data', (d) => (b += d));
    res.on('end', () => { if (sock && sock !== req.socket) console.log('reconnected'); sock = req.socket; console.log(b); setTimeout(tick, Number(process.argv[3])); });
  });
  req.on('error', (e) => { console.log('error ' + e.message); setTimeout(tick, Number(process.argv[3])); });
};
tick();
`;
  return host.spawn([process.execPath, '-e', script, address, String(port), String(everyMs)]);
}

/**
 * Hosts for a kernel-kind test with `count` real servers (r1…) and a sorry server (so): DR on one
 * segment (the VIP on every real server's lo), NAT/FULLNAT with the real servers on br1 routing
 * back through the director. Returns the real servers' addresses as the data plane sees them.
 */
export async function kernelFarm(lab: Lab, kind: LbKind, count: number): Promise<{ client: LabHost; director: LabHost; servers: Array<{ name: string; host: LabHost; address: string }>; sorry: { name: string; host: LabHost; address: string } }> {
  const dr = kind === 'DR';
  const rsBridge = dr ? 'br0' : await lab.addBridge();
  const net = dr ? '10.77.0' : '10.78.0';
  const client = await lab.addHost('cl', { ipv4: `${CLIENT}/24` });
  const director = await lab.addHost('da', { ipv4: '10.77.0.11/24' });
  if (dr) await director.exec(['ip', 'addr', 'add', `${VIP}/24`, 'dev', 'eth0']);
  else {
    await lab.addLink(director, rsBridge, { ipv4: '10.78.0.1/24' });
    await director.exec(['sh', '-ec', `ip addr add ${VIP}/24 dev eth0\nsysctl -qw net.ipv4.ip_forward=1`]);
  }
  const make = async (name: string, address: string) => {
    const host = await lab.addHost(name, { ipv4: `${address}/24`, bridge: rsBridge });
    if (dr) await prepareDrRealServer(host);
    else await host.exec(['ip', 'route', 'add', 'default', 'via', '10.78.0.1']);
    await startRealServer(lab, host, name);
    return { name, host, address };
  };
  const servers = [];
  for (let i = 0; i < count; i++) servers.push(await make(`r${i + 1}`, `${net}.${21 + i}`));
  const sorry = await make('so', `${net}.30`);
  return { client, director, servers, sorry };
}
