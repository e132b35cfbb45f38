// The BGP scale-out lab: clients and a router on one segment ("lan", 10.77.0.0/24, fd77::/64),
// the router, N keepalive-ts directors and the real servers on another ("back", 10.78.0.0/24,
// fd78::/64). The router runs BIRD 2 with ECMP (`merge paths on`, fib_multipath_hash_policy=1)
// and BFD, peering with every director; each director runs keepalive-ts, which runs its own BIRD.
// The service addresses (10.99.0.0/24, fd99::/64) are on no segment: only the router's BGP
// routes lead to them. Framework-free (tests and bench use it).
import type { ExecutionContext } from 'ava';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab, LabHost, LabProcess } from './lab-core.js';
import { waitFor } from './procs.js';
import { startDirector, type Director } from './daemon.js';
import { startNginx } from './servers.js';
import { prepareDrRealServer } from './nft-lab.js';
import { startEchoServer, startEchoFlows, echoFlowsUp, echoFlowsResult, ECHO_PORT, type EchoFlow } from './hitless.js';

/** PROXY: the user-space proxy, VIP on the directors' lo. DR: the kernel data plane (nftables) in
 *  direct routing with mh, VIP on the real servers' lo (arp_ignore/arp_announce), none on the directors. */
export type BgpKind = 'PROXY' | 'DR';

export const VIP4 = '10.99.0.10';
export const VIP6 = 'fd99::10';
export const ROUTER_AS = 65000;
export const DIRECTOR_AS = 65001;

export interface BgpLab {
  lab: Lab;
  router: LabHost;
  /** The router's interface on the back segment (eth1). */
  routerBack: string;
  client: LabHost;
  directors: LabHost[];
  reals: LabHost[];
}

/** Router eth0 10.77.0.1 / eth1 10.78.0.1, client 10.77.0.100, directors 10.78.0.11.., real servers 10.78.0.21.. */
export async function buildBgpLab(lab: Lab, opts: { directors: number; reals: number; kind?: BgpKind }): Promise<BgpLab> {
  const back = await lab.addBridge();
  const router = await lab.addHost('router', { ipv4: '10.77.0.1/24', ipv6: 'fd77::1/64' });
  const client = await lab.addHost('cl', { ipv4: '10.77.0.100/24', ipv6: 'fd77::100/64' });
  const routerBack = await lab.addLink(router, back, { ipv4: '10.78.0.1/24', ipv6: 'fd78::1/64' });
  const directors: LabHost[] = [];
  for (let i = 1; i <= opts.directors; i++) {
    directors.push(await lab.addHost(`d${i}`, { bridge: back, ipv4: `10.78.0.${10 + i}/24`, ipv6: `fd78::${10 + i}/64` }));
  }
  const reals: LabHost[] = [];
  for (let i = 1; i <= opts.reals; i++) {
    reals.push(await lab.addHost(`rs${i}`, { bridge: back, ipv4: `10.78.0.${20 + i}/24`, ipv6: `fd78::${20 + i}/64` }));
  }
  await router.exec(['sh', '-ec', [
    'sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1',
    // Flows hash on ports too: one client spreads over every next hop.
    'sysctl -qw net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1',
    `sysctl -qw net.ipv6.conf.eth0.keep_addr_on_down=1 net.ipv6.conf.${routerBack}.keep_addr_on_down=1`,
  ].join('\n')]);
  await client.exec(['sh', '-ec', 'ip route add default via 10.77.0.1\nip -6 route add default via fd77::1']);
  for (const h of [...directors, ...reals]) {
    await h.exec(['sh', '-ec', [
      'ip route add default via 10.78.0.1',
      'ip -6 route add default via fd78::1',
      // A link set down must not flush the IPv6 addresses (BIRD's session source, BFD).
      'sysctl -qw net.ipv6.conf.eth0.keep_addr_on_down=1',
    ].join('\n')]);
  }
  if ((opts.kind ?? 'PROXY') === 'PROXY') {
    for (const d of directors) {
      // The user-space data plane (PROXY) binds the service address: it is local, as for anycast.
      await d.exec(['sh', '-ec', `ip addr add ${VIP4}/32 dev lo\nip addr add ${VIP6}/128 dev lo`]);
    }
  } else {
    // DR: the real servers hold the service addresses and answer the client directly (their
    // default route goes through the router); the directors only rewrite the MAC address.
    for (const r of reals) await prepareDrRealServer(r, VIP4, VIP6);
  }
  return { lab, router, routerBack, client, directors, reals };
}

export interface RouterBird {
  proc: LabProcess;
  socket: string;
  birdc(...cmd: string[]): Promise<string>;
}

/** The router's bird.conf: ECMP into the kernel, BFD, one session per director and family. */
export function routerBirdConf(directors: LabHost[], opts: { bfd?: boolean } = {}): string {
  const bfd = opts.bfd ?? true;
  const lines = [
    'router id 10.78.0.1;',
    'log stderr all;',
    'timeformat protocol "%s.%3f";',
    'protocol device { scan time 10; }',
    'protocol kernel { merge paths on; ipv4 { import none; export all; }; }',
    'protocol kernel { merge paths on; ipv6 { import none; export all; }; }',
    bfd ? 'protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }' : '',
    `template bgp dir4 { local as ${ROUTER_AS}; hold time 9; ${bfd ? 'bfd on; ' : ''}connect delay time 1; connect retry time 2; error wait time 1,10;`,
    '  ipv4 { import where net ~ [ 10.99.0.0/24{32,32} ]; export none; }; }',
    `template bgp dir6 { local as ${ROUTER_AS}; hold time 9; ${bfd ? 'bfd on; ' : ''}connect delay time 1; connect retry time 2; error wait time 1,10;`,
    '  ipv6 { import where net ~ [ fd99::/64{128,128} ]; export none; }; }',
  ];
  directors.forEach((d) => {
    lines.push(`protocol bgp ${d.name} from dir4 { neighbor ${d.ipv4} as ${DIRECTOR_AS}; }`);
    lines.push(`protocol bgp ${d.name}v6 from dir6 { neighbor ${d.ipv6} as ${DIRECTOR_AS}; }`);
  });
  return `${lines.filter(Boolean).join('\n')}\n`;
}

export async function startRouterBird(bl: BgpLab, opts: { bfd?: boolean } = {}): Promise<RouterBird> {
  const dir = join(bl.lab.tmpDir, 'router-bird');
  await mkdir(dir, { recursive: true });
  const conf = join(dir, 'bird.conf');
  const socket = join(dir, 'bird.ctl');
  await writeFile(conf, routerBirdConf(bl.directors, opts));
  const proc = bl.router.spawn(['bird', '-f', '-c', conf, '-s', socket, '-P', join(dir, 'bird.pid')]);
  const birdc = async (...cmd: string[]) => (await bl.router.exec(['birdc', '-s', socket, ...cmd])).stdout;
  let dead = false;
  void proc.exited.then(() => (dead = true));
  await waitFor(async () => {
    if (dead) throw new Error(`router BIRD exited:\n${proc.output()}`);
    return birdc('show', 'status').then(() => true, () => false);
  }, 10_000, 'router BIRD control socket', 50);
  return { proc, socket, birdc };
}

/** The next hops the router's kernel has for `vip` (gateway addresses), [] when there is no route. */
export async function nextHops(router: LabHost, vip: string): Promise<string[]> {
  const r = await router.exec(['ip', '-j', ...(vip.includes(':') ? ['-6'] : []), 'route', 'show', vip], { allowFail: true });
  if (r.code !== 0 || r.stdout.trim() === '') return [];
  const routes = JSON.parse(r.stdout) as Array<{ gateway?: string; nexthops?: Array<{ gateway: string }> }>;
  return routes.flatMap((x) => (x.nexthops ? x.nexthops.map((n) => n.gateway) : x.gateway ? [x.gateway] : [])).sort();
}

/** A director's config: [bgp] peering with the router (both families), and the TOML given. */
export function directorBgpToml(lab: Lab, d: LabHost, o: { extra: string; bgpExtra?: string; peers?: 'both' | 'v4' | 'v6'; peerExtra?: string; metricsListen?: string }): string {
  const peers = o.peers ?? 'both';
  const peer = (address: string) => `[[bgp.peer]]\naddress = "${address}"\nremote_as = ${ROUTER_AS}\n${o.peerExtra ?? ''}\n`;
  return [
    '[global]',
    `router_id = "${d.name}"`,
    `metrics_listen = "${o.metricsListen ?? ''}"`,
    '',
    '[bgp]',
    `local_as = ${DIRECTOR_AS}`,
    `router_id = "${d.ipv4}"`,
    `runtime_dir = "${join(lab.tmpDir, `bird-${d.name}`)}"`,
    o.bgpExtra ?? '',
    '',
    peers !== 'v6' ? peer('10.78.0.1') : '',
    peers !== 'v4' ? peer('fd78::1') : '',
    o.extra,
    '',
  ].join('\n');
}

/** Same table size and seed on every director: each computes the same Maglev table. */
export const MH_TABLE_SIZE = 251;
export const MH_SEED = 4242;

/**
 * A virtual server on `vip`:`port` with TCP-checked real servers (checked on `port`). PROXY: the
 * user-space proxy, rr. DR: the kernel data plane, mh hashing addresses and ports (one client's
 * connections spread over the real servers), the same table size and seed on every director.
 */
export function webService(vip: string, reals: LabHost[], extra = '', opts: { kind?: BgpKind; port?: number; algo?: 'mh' | 'rr' } = {}): string {
  const family = vip.includes(':') ? 'ipv6' : 'ipv4';
  const port = opts.port ?? 80;
  const dr = (opts.kind ?? 'PROXY') === 'DR';
  return [
    '[[virtual_server]]',
    `address = "${vip}"`,
    `port = ${port}`,
    'protocol = "TCP"',
    ...(dr
      ? (opts.algo ?? 'mh') === 'mh'
        ? ['lb_kind = "DR"', 'lb_algo = "mh"', 'sched_flags = ["mh-port"]', `mh_table_size = ${MH_TABLE_SIZE}`, `hash_seed = ${MH_SEED}`]
        : ['lb_kind = "DR"', `lb_algo = "${opts.algo}"`]
      : ['lb_kind = "PROXY"', 'lb_algo = "rr"']),
    'delay_loop = 0.5',
    'alpha = true',
    'drain_timeout = 2',
    extra,
    ...reals.map((r) => `[[virtual_server.real_server]]\naddress = "${r[family]}"\nport = ${port}\ncheck = { type = "TCP_CHECK", connect_timeout = 0.5, retry = 0 }\n`),
  ].join('\n');
}

/**
 * The FRR equivalent of routerBirdConf (docs/bgp.md shows the same): eBGP from the directors with
 * multipath, BFD 100 ms x 3, only the service prefixes accepted, nothing sent back. One file per
 * daemon: zebra, bfdd, bgpd.
 */
export function routerFrrConf(directors: LabHost[]): { zebra: string; bfdd: string; bgpd: string } {
  return {
    zebra: 'hostname router\nlog stdout informational\n',
    bfdd: ['bfd', ' profile directors', '  receive-interval 100', '  transmit-interval 100', '  detect-multiplier 3', '', ''].join('\n'),
    bgpd: [
      'frr defaults datacenter',
      'hostname router',
      'log stdout informational',
      'ip prefix-list VIPS4 seq 10 permit 10.99.0.0/24 ge 32',
      'ipv6 prefix-list VIPS6 seq 10 permit fd99::/64 ge 128',
      'route-map VIPS4-IN permit 10',
      ' match ip address prefix-list VIPS4',
      'route-map VIPS6-IN permit 10',
      ' match ipv6 address prefix-list VIPS6',
      'route-map NOTHING deny 10',
      `router bgp ${ROUTER_AS}`,
      ' bgp router-id 10.78.0.1',
      ...(['DIRECTORS4', 'DIRECTORS6'].flatMap((g) => [
        ` neighbor ${g} peer-group`,
        ` neighbor ${g} remote-as ${DIRECTOR_AS}`,
        ` neighbor ${g} timers 3 9`,
        ` neighbor ${g} timers connect 2`,
        ` neighbor ${g} bfd profile directors`,
      ])),
      ...directors.flatMap((d) => [` neighbor ${d.ipv4} peer-group DIRECTORS4`, ` neighbor ${d.ipv6} peer-group DIRECTORS6`]),
      ' address-family ipv4 unicast',
      '  maximum-paths 16',
      '  neighbor DIRECTORS4 route-map VIPS4-IN in',
      '  neighbor DIRECTORS4 route-map NOTHING out',
      ' exit-address-family',
      ' address-family ipv6 unicast',
      '  maximum-paths 16',
      '  neighbor DIRECTORS6 activate',
      '  neighbor DIRECTORS6 route-map VIPS6-IN in',
      '  neighbor DIRECTORS6 route-map NOTHING out',
      ' exit-address-family',
      '',
    ].join('\n'),
  };
}

export interface RouterFrr {
  vtysh(...cmd: string[]): Promise<string>;
}

/**
 * Runs FRR's zebra, bfdd and bgpd in the router namespace, as the frr user (FRR insists on its
 * frrvty group), with every file in a directory of the lab (the lab directory is made traversable).
 */
export async function startRouterFrr(bl: BgpLab): Promise<RouterFrr> {
  const { chmod, chown } = await import('node:fs/promises');
  const { lab, router } = bl;
  const id = async (flag: string) => Number((await router.exec(['id', flag, 'frr'])).stdout.trim());
  const [uid, gid] = [await id('-u'), await id('-g')];
  await chmod(lab.tmpDir, 0o711);
  const dir = join(lab.tmpDir, 'frr');
  await mkdir(dir, { recursive: true });
  const conf = routerFrrConf(bl.directors);
  for (const d of ['zebra', 'bfdd', 'bgpd'] as const) await writeFile(join(dir, `${d}.conf`), conf[d]);
  for (const f of [dir, ...['zebra', 'bfdd', 'bgpd'].map((d) => join(dir, `${d}.conf`))]) await chown(f, uid, gid);
  const vtysh = async (...cmd: string[]) => (await router.exec(['vtysh', '--vty_socket', dir, ...cmd.flatMap((c) => ['-c', c])])).stdout;
  for (const d of ['zebra', 'bfdd', 'bgpd'] as const) {
    const proc = router.spawn([`/usr/lib/frr/${d}`, '-f', join(dir, `${d}.conf`), '-i', join(dir, `${d}.pid`), '-z', join(dir, 'zserv.api'),
      '--vty_socket', dir, '-P', '0', ...(d === 'bgpd' ? ['-p', '179'] : []), '--log', 'stdout']);
    let dead = false;
    void proc.exited.then(() => (dead = true));
    await waitFor(async () => {
      if (dead) throw new Error(`FRR ${d} exited:\n${proc.output()}`);
      return router.exec(['test', '-S', join(dir, `${d}.vty`)], { allowFail: true }).then((r) => r.code === 0);
    }, 10_000, `FRR ${d}`, 50);
  }
  return { vtysh };
}

/**
 * The common set-up: the lab, nginx on every real server, the router (BIRD or FRR), keepalive-ts on
 * every director serving VIP4 and VIP6:80 (announce "healthy"), and every director announced in
 * both families at the router.
 */
export async function startBgpSet(lab: Lab, opts: {
  directors: number;
  reals: number;
  /** PROXY (default): VIP4 and VIP6 :80 by the user-space proxy. DR: by the kernel data plane with
   *  mh, :80 (nginx) and :ECHO_PORT (a line echo naming its server) in both families. */
  kind?: BgpKind;
  /** DR only: mh (default) or a scheduler without a shared hash (the bench's reference). */
  algo?: 'mh' | 'rr';
  router?: 'bird' | 'frr';
  metricsListen?: string;
  /** Extra [bgp] keys per director. */
  bgpExtra?: (d: LabHost) => string;
  /** Runs after the lab is built, before the directors start. */
  prepare?: (bl: BgpLab) => Promise<void>;
}): Promise<{ bl: BgpLab; ds: Director[]; router?: RouterBird; frr?: RouterFrr; toml: (d: LabHost) => string }> {
  const bl = await buildBgpLab(lab, opts);
  await opts.prepare?.(bl);
  await Promise.all(bl.reals.map((r, i) => startNginx(r, { port: 80, body: `rs${i + 1}`, tmpDir: lab.tmpDir })));
  const kind = opts.kind ?? 'PROXY';
  if (kind === 'DR') await Promise.all(bl.reals.map((r, i) => startEchoServer(r, `rs${i + 1}`)));
  const routers = opts.router === 'frr' ? { frr: await startRouterFrr(bl) } : { router: await startRouterBird(bl) };
  const algo = opts.algo ? { algo: opts.algo } : {};
  const svc = [VIP4, VIP6].map((vip) => webService(vip, bl.reals, '', { kind, ...algo })
    + (kind === 'DR' ? webService(vip, bl.reals, '', { kind, port: ECHO_PORT, ...algo }) : '')).join('');
  const toml = (d: LabHost) => directorBgpToml(lab, d, {
    extra: svc,
    ...(opts.metricsListen ? { metricsListen: opts.metricsListen } : {}),
    ...(opts.bgpExtra ? { bgpExtra: opts.bgpExtra(d) } : {}),
  });
  const ds = await Promise.all(bl.directors.map((d) => startDirector(lab, d, toml(d))));
  const all4 = bl.directors.map((d) => d.ipv4!).sort().join();
  await waitFor(async () => (await nextHops(bl.router, VIP4)).join() === all4, 40_000, `${opts.directors} IPv4 next hops at the router`);
  // (FRR installs IPv6 BGP routes through the directors' link-local addresses: count them.)
  await waitFor(async () => (await nextHops(bl.router, VIP6)).length === opts.directors, 40_000, `${opts.directors} IPv6 next hops at the router`);
  return { bl, ds, ...routers, toml };
}


export interface LongSessions {
  proc: LabProcess;
  /** Sessions per director (the echo service's active connections on each) once all were up. */
  perDirector: number[];
  /** Waits for the end: every session's result. */
  result(): Promise<EchoFlow[]>;
}

/**
 * `n` long-lived line-echo sessions from the client to VIP4:ECHO_PORT (a DR lab of startBgpSet),
 * one line per session every 200 ms for `durationMs` after the last one opened. Resolves once every
 * session has its first echo, with how many each director forwards.
 */
export async function startLongSessions(bl: BgpLab, ds: Director[], n: number, durationMs: number): Promise<LongSessions> {
  // A director announces once a service has quorum, maybe before every real server passed its
  // first check: until then its Maglev table lacks a server and maps flows differently from the
  // others. The sessions start once every director has every real server up (the same table).
  await waitFor(async () => {
    for (const d of ds) if (!(await d.status()).virtual_servers.every((v) => v.real_servers.every((r) => r.up))) return false;
    return true;
  }, 20_000, 'every real server up on every director', 100);
  // (status shows a server up at once; the data plane has it a transaction later)
  await new Promise((r) => setTimeout(r, 500));
  const proc = startEchoFlows(bl.client, VIP4, n, durationMs);
  await waitFor(async () => echoFlowsUp(proc).size === n, 20_000, `${n} echo sessions up`, 100);
  const key = `tcp/${VIP4}:${ECHO_PORT}`;
  // (the data plane's counters are read every second: wait until they add up)
  let perDirector: number[] = [];
  await waitFor(async () => {
    perDirector = await Promise.all(ds.map(async (d) => (await d.status()).virtual_servers.find((v) => v.key === key)?.active_conns ?? 0));
    return perDirector.reduce((a, b) => a + b, 0) === n;
  }, 10_000, `the directors count ${n} echo sessions`, 200).catch(() => undefined);
  return {
    proc,
    perDirector,
    async result() {
      await proc.exited;
      return echoFlowsResult(proc);
    },
  };
}

/**
 * Not reset: still Established, since the same moment. BIRD prints `since` as wall time computed
 * from its monotonic clock, so two reads of one session may differ by a millisecond; a reset moves
 * it by the seconds the test took.
 */
export function assertSameSession(t: ExecutionContext, now: { state: string; since: number | null }, before: { state: string; since: number | null }, message: string): void {
  t.is(now.state, before.state, message);
  t.true(now.since !== null && before.since !== null && Math.abs(now.since - before.since) <= 50, `${message}: since ${before.since} -> ${now.since}`);
}
