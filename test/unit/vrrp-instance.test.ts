import test from 'ava';
import { VrrpInstance, type InstanceEffects } from '../../src/vrrp/instance.js';
import { VrrpHub, type HubMember } from '../../src/vrrp/hub.js';
import { MemorySegment, MemoryTransport } from '../../src/vrrp/transport-memory.js';
import { encodeAdvert } from '../../src/vrrp/packet.js';
import { masterDownIntervalMs } from '../../src/vrrp/timing.js';
import { FakeClock } from '../lib/fake-clock.js';

const VIP = '10.0.0.50';
const GROUP = '224.0.0.18';

interface Node { inst: VrrpInstance; member: HubMember; hub: VrrpHub; log: string[] }

function node(seg: MemorySegment, clock: FakeClock, name: string, src: string, priority: number): Node {
  const log: string[] = [];
  const hub = new VrrpHub((_if, idx, family) => new MemoryTransport(seg, family, idx), (err) => log.push(`error ${err.message}`));
  let member!: HubMember;
  const effects: InstanceEffects = {
    sendAdvert: (p) => hub.send(member, { version: 3, vrid: 51, priority: p, advertIntCs: 100, addresses: [VIP] }),
    addVips: async () => { log.push('add_vips'); },
    removeVips: async () => { log.push('remove_vips'); },
    announce: () => log.push('announce'),
    stopAnnounce: () => log.push('stop_announce'),
    reannounce: () => log.push('reannounce'),
    notify: (state, prio) => log.push(`notify ${state} ${prio}`),
    onTransition: (from, to) => log.push(`${from}->${to}`),
    onError: (err, what) => log.push(`error ${what} ${String(err)}`),
  };
  const inst = new VrrpInstance(name, { vrid: 51, version: 3, priority, advertIntCs: 100, preempt: true, preemptDelayMs: 0, primaryAddress: src },
    { version: 3, vrid: 51, advertIntCs: 100, addresses: [VIP], ownAddresses: [src] }, effects, clock);
  member = { instance: inst, vrid: 51, family: 4, ifname: 'eth0', ifindex: 2, src, destinations: [GROUP], v3ChecksumAsV2: false, unicast: false };
  hub.add(member, [GROUP]);
  return { inst, member, hub, log };
}

test('two shells over the in-memory segment elect the higher priority and hand over on crash', async (t) => {
  const seg = new MemorySegment();
  const clock = new FakeClock();
  const a = node(seg, clock, 'a', '10.0.0.11', 150);
  const b = node(seg, clock, 'b', '10.0.0.12', 100);
  a.inst.start();
  b.inst.start();
  clock.advance(8_000);
  await a.inst.settled;
  t.is(a.inst.state.name, 'MASTER');
  t.is(b.inst.state.name, 'BACKUP');
  t.true(a.inst.vipsOwned);
  t.false(b.inst.vipsOwned);
  // add_vips runs before announce: never announce an address we do not hold yet.
  t.true(a.log.indexOf('add_vips') < a.log.indexOf('announce'), a.log.join(', '));
  t.true(b.inst.counters.advertsReceived >= 3);
  t.deepEqual(b.inst.counters.drops, {});

  // Crash a: its transport goes silent. b must take over after exactly Master_Down_Interval.
  a.hub.close();
  clock.advance(masterDownIntervalMs(3, 100, 100) + 1);
  t.is(b.inst.state.name, 'MASTER');
  await b.inst.settled;
  t.true(b.log.includes('notify MASTER 100'));
});

test('graceful shutdown sends priority 0 and removes the VIPs', async (t) => {
  const seg = new MemorySegment();
  const clock = new FakeClock();
  const a = node(seg, clock, 'a', '10.0.0.11', 150);
  const b = node(seg, clock, 'b', '10.0.0.12', 100);
  a.inst.start();
  b.inst.start();
  clock.advance(5_000);
  await a.inst.shutdown();
  t.is(a.inst.state.name, 'STOP');
  t.false(a.inst.vipsOwned);
  t.true(a.log.includes('remove_vips'));
  const last = seg.log[seg.log.length - 1]!;
  t.is(last.payload[2], 0, 'the last advert on the wire carries priority 0');
  // b takes over after Skew_Time, far sooner than Master_Down_Interval.
  clock.advance(700);
  t.is(b.inst.state.name, 'MASTER');
});

test('hub counts undecodable packets per socket and per-instance check failures on the instance', (t) => {
  const seg = new MemorySegment();
  const clock = new FakeClock();
  const b = node(seg, clock, 'b', '10.0.0.12', 100);
  b.inst.start();
  seg.inject('10.0.0.66', GROUP, Buffer.from([1, 2, 3]));
  const other = encodeAdvert({ version: 3, vrid: 52, priority: 200, advertIntCs: 100, addresses: [VIP] }, { family: 4, src: '10.0.0.66', dst: GROUP });
  seg.inject('10.0.0.66', GROUP, other);
  const wrongList = encodeAdvert({ version: 3, vrid: 51, priority: 200, advertIntCs: 100, addresses: ['10.0.0.99'] }, { family: 4, src: '10.0.0.66', dst: GROUP });
  seg.inject('10.0.0.66', GROUP, wrongList);
  const good = encodeAdvert({ version: 3, vrid: 51, priority: 200, advertIntCs: 100, addresses: [VIP] }, { family: 4, src: '10.0.0.66', dst: GROUP });
  seg.inject('10.0.0.66', GROUP, good, 64);
  t.deepEqual(b.hub.socketDrops(), { 'eth0/v4': { too_short: 1, wrong_vrid: 1 } });
  t.deepEqual(b.inst.counters.drops, { address_list_mismatch: 1, bad_ttl: 1 });
  t.is(b.inst.counters.advertsReceived, 0);
  seg.inject('10.0.0.66', GROUP, good);
  t.is(b.inst.counters.advertsReceived, 1);
});
