/**
 * The VRRP keys reach what they configure: the real VrrpManager built from a parsed config over a
 * fake world (links, a recording transport, VIP managers, announcers, script runner and accept
 * filter), plus the pure mappings it uses (vrrpParams, expectation, announcerTiming). Each test
 * fails if its key were ignored; the key audit (test/unit/config-key-audit.test.ts) points here.
 */
import test from 'ava';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { parseConfig, type Config } from '../../src/config/index.js';
import { VrrpManager, expectation, vrrpParams } from '../../src/vrrp/manager.js';
import { announcerTiming } from '../../src/net/announcer.js';
import { decodeAdvert } from '../../src/vrrp/packet.js';
import { ScriptRunner, policyOf } from '../../src/util/script.js';
import type { LinkEvent, LinkInfo } from '../../src/net/rtnl.js';
import type { VrrpPacketIn, VrrpTransport } from '../../src/vrrp/transport.js';

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const BASE = (extra = '', global = '') => `[global]
router_id = "w"
metrics_listen = ""
${global}

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
version = 3
advert_int = 0.05
priority = 150
virtual_ipaddress = ["10.0.0.50/24"]
${extra}
`;

interface Sent { src: string; dst: string; payload: Buffer }

/** The manager over fakes; everything it does to the world is recorded. */
async function world(toml: string, extra: { beforeVips?: (instance: string) => Promise<void> } = {}) {
  const config: Config = parseConfig(toml, 'w.toml');
  const sent: Sent[] = [];
  const transports: Array<{ ifname: string; family: number; groups: string[] }> = [];
  const vipCalls: string[] = [];
  const vipLists: string[][] = [];
  const announcers: Array<{ timing: ReturnType<typeof announcerTiming>; vips: string[] }> = [];
  const ran: Array<{ line: string; args: string[]; user: string | undefined; timeoutMs: number }> = [];
  const filter: string[] = [];
  const links = new Map<string, LinkInfo>([
    ['eth0', { index: 2, name: 'eth0', mac: '02:00:00:00:00:01', up: true, adminUp: true, carrier: true, mtu: 1500 }],
    ['eth1', { index: 3, name: 'eth1', mac: '02:00:00:00:00:02', up: true, adminUp: true, carrier: true, mtu: 1500 }],
  ]);
  const watcher = Object.assign(new EventEmitter(), { close: () => undefined });
  let deliver: (pkt: VrrpPacketIn) => void = () => undefined;
  const scripts = new ScriptRunner({
    policy: () => policyOf(config.global), // as the daemon builds it
    fs: { lstat: () => { throw new Error('unused'); }, stat: () => ({ mode: 0o100755, uid: 0, gid: 0, isFile: () => true, isDirectory: () => false, isSymbolicLink: () => false }), realpath: (p) => p },
    userFiles: () => ({ passwd: 'root:x:0:0::/root:/bin/sh\nsvc:x:1000:1000::/home/svc:/bin/sh\n', group: 'root:x:0:\n' }),
    run: async (line, args = [], timeoutMs = 0, opts) => { ran.push({ line, args, user: opts?.runAs?.name, timeoutMs }); return { code: scriptExit(line), signal: null, timedOut: false }; },
  });
  const exits = new Map<string, number>();
  const scriptExit = (line: string) => exits.get(line) ?? 0;
  const m = await VrrpManager.create(config, {
    rtnl: {
      getLink: async (name: string) => { const l = links.get(name); if (!l) throw new Error(`no ${name}`); return l; },
      primaryAddress: async () => '10.0.0.11',
      watch: () => watcher as never,
    } as never,
    transports: (ifname, _ifindex, family, groups) => {
      transports.push({ ifname, family, groups });
      const t: VrrpTransport = {
        family, ifindex: 2,
        send: (payload, src, dst) => { sent.push({ src, dst, payload: Buffer.from(payload) }); },
        onPacket: (cb) => { deliver = cb; },
        onError: () => undefined,
        close: () => undefined,
      };
      return t;
    },
    vipManager: (_ifindex, vips) => {
      vipLists.push(vips);
      let acquired = false;
      return {
        acquire: async () => { acquired = true; vipCalls.push('acquire'); },
        release: async () => { acquired = false; vipCalls.push('release'); },
        update: async () => undefined,
        get acquired() { return acquired; },
      } as never;
    },
    announcer: (_link, vips, cfg, global) => {
      announcers.push({ timing: announcerTiming(cfg, global), vips });
      return { start: () => undefined, stop: () => undefined, burst: () => undefined, active: false, sent: 0 } as never;
    },
    log,
    scripts,
    acceptFilter: { add: async (name, addrs) => { filter.push(`add ${name} ${addrs.join(',')}`); }, remove: async (name) => { filter.push(`remove ${name}`); } },
    ...extra,
  });
  const state = (name = 'VI_1') => m.status().find((s) => s.name === name)!.state;
  const adverts = () => sent.map((s) => ({ ...s, advert: decodeAdvert(s.payload, { family: 4, src: s.src, dst: s.dst, ttl: 255 }) }));
  const link = (ev: Partial<LinkEvent> & { name: string }) => watcher.emit('link', { index: 3, up: true, adminUp: true, carrier: true, removed: false, ...ev });
  return { m, config, sent, adverts, transports, vipCalls, vipLists, announcers, ran, filter, state, link, exits, deliver: (p: VrrpPacketIn) => deliver(p) };
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

test('priority, advert_int, version, virtual_ipaddress and mcast_src_ip shape the adverts the MASTER sends', async (t) => {
  const w = await world(BASE('mcast_src_ip = "10.0.0.99"'));
  await w.m.start();
  await until(() => w.state() === 'MASTER');
  await until(() => w.sent.length >= 2);
  const a = w.adverts().at(-1)!;
  t.true(a.advert.ok);
  if (a.advert.ok) t.like(a.advert.advert, { version: 3, vrid: 51, priority: 150, advertIntCs: 5, addresses: ['10.0.0.50'] });
  t.is(a.src, '10.0.0.99');
  t.is(a.dst, '224.0.0.18');
  await w.m.stop();
});

test('authentication (v2 PASS) is carried in the adverts', async (t) => {
  const w = await world(BASE('authentication = { type = "PASS", password = "s3cr" }').replace('version = 3', 'version = 2').replace('advert_int = 0.05', 'advert_int = 1'));
  await w.m.start();
  await until(() => w.sent.length >= 1, 6000);
  const a = w.adverts()[0]!;
  t.true(a.advert.ok && a.advert.advert.authType === 1 && a.advert.advert.authData!.subarray(0, 4).toString() === 's3cr');
  await w.m.stop();
});

test('unicast_peer and unicast_src_ip: adverts go to each peer from that source, no multicast group is joined; vrrp_mcast_group4 otherwise', async (t) => {
  const u = await world(BASE('unicast_peer = ["10.0.0.12", "10.0.0.13"]\nunicast_src_ip = "10.0.0.98"'));
  await u.m.start();
  await until(() => u.sent.length >= 2);
  t.deepEqual([...new Set(u.sent.map((s) => s.dst))].sort(), ['10.0.0.12', '10.0.0.13']);
  t.true(u.sent.every((s) => s.src === '10.0.0.98'));
  t.deepEqual(u.transports[0]!.groups, []);
  await u.m.stop();
  const g = await world(BASE('', 'vrrp_mcast_group4 = "224.0.0.99"'));
  await g.m.start();
  await until(() => g.sent.length >= 1);
  t.is(g.sent[0]!.dst, '224.0.0.99');
  t.deepEqual(g.transports[0]!.groups, ['224.0.0.99']);
  await g.m.stop();
});

test('vrrp_mcast_group6 is the group of IPv6 instances', async (t) => {
  const w = await world(BASE('', 'vrrp_mcast_group6 = "ff02::99"').replace('virtual_ipaddress = ["10.0.0.50/24"]', 'virtual_ipaddress = ["fd00::50/64"]'));
  t.deepEqual(w.transports[0]!.groups, ['ff02::99']);
  await w.m.stop();
});

test('v3_checksum_as_v2 (instance and global): the IPv4 checksum leaves out the pseudo-header', async (t) => {
  for (const [extra, global] of [['v3_checksum_as_v2 = true', ''], ['', 'v3_checksum_as_v2 = true']]) {
    const w = await world(BASE(extra, global));
    await w.m.start();
    await until(() => w.sent.length >= 1);
    const s = w.sent[0]!;
    t.false(decodeAdvert(s.payload, { family: 4, src: s.src, dst: s.dst, ttl: 255 }).ok, 'not a pseudo-header checksum');
    t.true(decodeAdvert(s.payload, { family: 4, src: s.src, dst: s.dst, ttl: 255, v3ChecksumAsV2: true }).ok);
    await w.m.stop();
  }
});

test('virtual_ipaddress_excluded goes on the interface with the VIPs and into the accept filter, not into adverts', async (t) => {
  const w = await world(BASE('virtual_ipaddress_excluded = ["10.0.1.7/24"]\naccept = false'));
  t.deepEqual(w.vipLists[0], ['10.0.0.50/24', '10.0.1.7/24']);
  await w.m.start();
  await until(() => w.state() === 'MASTER' && w.filter.length > 0);
  t.deepEqual(w.filter, ['add VI_1 10.0.0.50,10.0.1.7']);
  const a = w.adverts().at(-1)!;
  t.true(a.advert.ok && a.advert.advert.addresses.length === 1);
  await w.m.stop();
  t.deepEqual(w.filter, ['add VI_1 10.0.0.50,10.0.1.7', 'remove VI_1']);
});

test('accept = true (default) or the address owner: no accept filter', async (t) => {
  for (const extra of ['', 'accept = false\npriority = 255']) {
    const w = await world(BASE(extra).replace('priority = 150\n', extra.includes('255') ? '' : 'priority = 150\n'));
    await w.m.start();
    await until(() => w.state() === 'MASTER');
    await sleep(50);
    t.deepEqual(w.filter, [], extra || 'default');
    await w.m.stop();
  }
});

test('vrrp_startup_delay holds the instances in INIT', async (t) => {
  const w = await world(BASE('', 'vrrp_startup_delay = 0.4'));
  const started = w.m.start();
  await sleep(200);
  t.is(w.state(), 'INIT');
  await started;
  t.not(w.state(), 'INIT');
  await w.m.stop();
});

test('track_interface and dont_track_primary: which link going down means FAULT', async (t) => {
  const w = await world(BASE('track_interface = ["eth1"]'));
  await w.m.start();
  await until(() => w.state() === 'MASTER');
  w.link({ name: 'eth1', up: false });
  await until(() => w.state() === 'FAULT');
  w.link({ name: 'eth1', up: true });
  await until(() => w.state() !== 'FAULT');
  w.link({ name: 'eth0', index: 2, up: false });
  await until(() => w.state() === 'FAULT');
  await w.m.stop();
  const d = await world(BASE('dont_track_primary = true'));
  await d.m.start();
  await until(() => d.state() === 'MASTER');
  d.link({ name: 'eth0', index: 2, up: false });
  await sleep(150);
  t.is(d.state(), 'MASTER', 'dont_track_primary: the instance interface is not tracked');
  await d.m.stop();
});

test('notify_master / notify_backup / notify_fault / notify_stop / notify run with keepalived arguments, as script_user', async (t) => {
  const w = await world(BASE('notify_master = "/n master"\nnotify_backup = "/n backup"\nnotify_fault = "/n fault"\nnotify_stop = "/n stop"\nnotify = "/n all"\ntrack_interface = ["eth1"]', 'script_user = "svc"'));
  await w.m.start();
  await until(() => w.state() === 'MASTER');
  w.link({ name: 'eth1', up: false });
  await until(() => w.state() === 'FAULT');
  w.link({ name: 'eth1', up: true });
  await until(() => w.state() === 'BACKUP' || w.state() === 'MASTER');
  await w.m.stop();
  await sleep(50);
  const lines = w.ran.map((r) => `${r.line}${r.args.length ? ` ${r.args.join(' ')}` : ''}`);
  for (const want of ['/n backup', '/n master', '/n fault', '/n stop', '/n all INSTANCE VI_1 MASTER 150', '/n all INSTANCE VI_1 FAULT 150']) t.true(lines.includes(want), `${want} in ${JSON.stringify(lines)}`);
  t.true(w.ran.every((r) => r.user === 'svc'), JSON.stringify(w.ran.map((r) => r.user)));
});

test('vrrp_script: script, user, interval, weight, fall and rise move the priority', async (t) => {
  const w = await world(`${BASE('track_script = ["chk"]')}
[[vrrp_script]]
name = "chk"
script = "/chk"
user = "svc"
interval = 0.05
weight = -60
fall = 2
rise = 3
`);
  await w.m.start();
  await until(() => w.state() === 'MASTER');
  t.true(w.ran.every((r) => r.line === '/chk' && r.user === 'svc'));
  const runs = w.ran.length;
  await sleep(300);
  t.true(w.ran.length - runs >= 3, 'runs every interval');
  const prio = () => w.m.status()[0]!.effective_priority;
  w.exits.set('/chk', 1);
  await until(() => prio() === 90);
  const failedAt = w.ran.length;
  w.exits.set('/chk', 0);
  await until(() => prio() === 150);
  t.true(w.ran.length - failedAt >= 3, 'rise = 3 successes to recover');
  await w.m.stop();
});

test('vrrp_script: init_fail starts failed; timeout is passed to the run', async (t) => {
  const w = await world(`${BASE('track_script = [{ name = "chk", weight = -60 }]')}
[[vrrp_script]]
name = "chk"
script = "/chk"
interval = 0.05
timeout = 0.03
init_fail = true
rise = 5
`);
  await w.m.start();
  await sleep(100);
  t.is(w.m.status()[0]!.effective_priority, 90, 'failed until rise successes');
  await until(() => w.m.status()[0]!.effective_priority === 150);
  t.true(w.ran.every((r) => r.timeoutMs === 30), 'timeout 0.03 s');
  await w.m.stop();
});

/** A second instance on eth1 (VRID 52) for the sync-group tests. */
const SECOND_INSTANCE = (priority: number) => `[[vrrp_instance]]
name = "VI_2"
interface = "eth1"
virtual_router_id = 52
version = 3
advert_int = 0.05
priority = ${priority}
virtual_ipaddress = ["10.0.1.50/24"]
`;

test('vrrp_sync_group: group members follow each other; group notify and track_script', async (t) => {
  const w = await world(`${BASE()}
${SECOND_INSTANCE(150)}track_interface = ["eth1"]

[[vrrp_sync_group]]
name = "G"
group = ["VI_1", "VI_2"]
notify = "/g"
notify_master = "/g master"
notify_backup = "/g backup"
notify_fault = "/g fault"
notify_stop = "/g stop"
`);
  await w.m.start();
  await until(() => w.state('VI_1') === 'MASTER' && w.state('VI_2') === 'MASTER');
  w.link({ name: 'eth1', up: false });
  await until(() => w.state('VI_1') === 'FAULT' && w.state('VI_2') === 'FAULT');
  w.link({ name: 'eth1', up: true });
  await until(() => w.state('VI_1') === 'MASTER' && w.state('VI_2') === 'MASTER');
  await w.m.stop();
  await sleep(50);
  const lines = w.ran.map((r) => `${r.line} ${r.args.join(' ')}`.trim());
  for (const want of ['/g GROUP G FAULT 0', '/g GROUP G MASTER 0', '/g master', '/g backup', '/g fault', '/g stop']) t.true(lines.includes(want), `${want} in ${JSON.stringify(lines)}`);
});

test('vrrpParams and expectation carry the election and receive keys', (t) => {
  const cfg = parseConfig(BASE(`state = "MASTER"
nopreempt = true
preempt_delay = 3
lower_prio_no_advert = true
higher_prio_send_advert = true
accept = false
skip_check_adv_addr = true
unicast_peer = [{ address = "10.0.0.12", min_ttl = 250, max_ttl = 254 }]`), 'w.toml').vrrp_instance[0]!;
  t.like(vrrpParams(cfg, '10.0.0.11'), { vrid: 51, version: 3, priority: 150, advertIntCs: 5, preempt: false, preemptDelayMs: 3000, initialState: 'MASTER', lowerPrioNoAdvert: true, higherPrioSendAdvert: true, accept: false, primaryAddress: '10.0.0.11' });
  const e = expectation(cfg, '10.0.0.11');
  t.like(e, { skipCheckAdvAddr: true, addresses: ['10.0.0.50'] });
  t.deepEqual(e.unicastPeers, [{ address: '10.0.0.12', minTtl: 250, maxTtl: 254 }]);
  const off = parseConfig(BASE('unicast_peer = ["10.0.0.12"]\ncheck_unicast_src = false'), 'w.toml').vrrp_instance[0]!;
  t.is(expectation(off, '10.0.0.11').unicastPeers, undefined, 'check_unicast_src = false');
  const globalOff = parseConfig(BASE('unicast_peer = ["10.0.0.12"]', 'vrrp_check_unicast_src = false'), 'w.toml').vrrp_instance[0]!;
  t.is(expectation(globalOff, '10.0.0.11').unicastPeers, undefined, 'vrrp_check_unicast_src = false');
});

test('announcerTiming: garp_master_* per instance (global defaults), vrrp_garp_interval / vrrp_gna_interval global', (t) => {
  const c = parseConfig(BASE('garp_master_repeat = 7\ngarp_master_refresh_repeat = 3', 'vrrp_garp_master_delay = 9\nvrrp_garp_master_refresh = 60\nvrrp_garp_interval = 0.002\nvrrp_gna_interval = 0.003'), 'w.toml');
  t.deepEqual(announcerTiming(c.vrrp_instance[0]!, c.global), { garpMasterRepeat: 7, garpMasterDelay: 9, garpMasterRefresh: 60, garpMasterRefreshRepeat: 3, garpInterval: 0.002, gnaInterval: 0.003 });
  const d = parseConfig(BASE('garp_master_delay = 2\ngarp_master_refresh = 5', 'vrrp_garp_master_repeat = 4\nvrrp_garp_master_refresh_repeat = 6'), 'w.toml');
  t.like(announcerTiming(d.vrrp_instance[0]!, d.global), { garpMasterRepeat: 4, garpMasterDelay: 2, garpMasterRefresh: 5, garpMasterRefreshRepeat: 6 });
});

test('the announcer of a reloaded instance gets the new [global] pacing', async (t) => {
  const w = await world(BASE('', 'vrrp_garp_interval = 0.001'));
  const next = parseConfig(BASE('garp_master_repeat = 2', 'vrrp_garp_interval = 0.005'), 'w.toml');
  const { planReload } = await import('../../src/config/index.js');
  await w.m.applyReload(planReload(w.config, next), next);
  t.is(w.announcers.at(-1)!.timing.garpInterval, 0.005);
  await w.m.stop();
});

test('vrrp_sync_group track_script: the script changes the priority of every member', async (t) => {
  const w = await world(`${BASE()}
${SECOND_INSTANCE(140)}
[[vrrp_script]]
name = "chk"
script = "/chk"
interval = 0.05

[[vrrp_sync_group]]
name = "G"
group = ["VI_1", "VI_2"]
track_script = [{ name = "chk", weight = -60 }]
`);
  await w.m.start();
  await until(() => w.ran.some((r) => r.line === '/chk'));
  w.exits.set('/chk', 1);
  const prio = (n: string) => w.m.status().find((s) => s.name === n)!.effective_priority;
  await until(() => prio('VI_1') === 90 && prio('VI_2') === 80);
  w.exits.set('/chk', 0);
  await until(() => prio('VI_1') === 150 && prio('VI_2') === 140);
  t.pass();
  await w.m.stop();
});

test('track_interface with a weight lowers the priority instead of FAULT', async (t) => {
  const w = await world(BASE('track_interface = [{ name = "eth1", weight = -60 }]'));
  await w.m.start();
  await until(() => w.state() === 'MASTER');
  w.link({ name: 'eth1', up: false });
  await until(() => w.m.status()[0]!.effective_priority === 90);
  t.is(w.state(), 'MASTER');
  await w.m.stop();
});

test('beforeVips runs on becoming MASTER before the VIPs go up; the adverts do not wait for it', async (t) => {
  let release!: () => void;
  const calls: string[] = [];
  const w = await world(BASE(), {
    beforeVips: (instance) => {
      calls.push(`before ${instance}`);
      return new Promise<void>((r) => { release = r; });
    },
  });
  await w.m.start();
  await until(() => w.state() === 'MASTER' && calls.length === 1);
  await until(() => w.sent.length >= 3);
  const acquired = () => w.vipCalls.filter((c) => c === 'acquire').length;
  const held = acquired();
  release();
  t.is(held, 0, 'no VIP while beforeVips runs; adverts went out meanwhile');
  await until(() => acquired() === 1);
  t.deepEqual(calls, ['before VI_1']);
  await w.m.stop();
});
