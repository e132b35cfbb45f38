/**
 * Known answers: `birdc` output captured from BIRD 2.0.12 (scripts/capture-bird-fixtures.sh). The
 * expected values come from the capture script's configuration and scenario (which peer exists,
 * what was done to it), not from the parser.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseBfdSessions, parseBirdTime, parseShowProtocols, type BirdProtocol } from '../../src/announce/bird-status.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/bird/', import.meta.url));
const fixture = (name: string): string => readFileSync(`${FIXTURES}${name}`, 'utf8');
const PEER4 = 'kt_peer_10_88_0_1';
const PEER6 = 'kt_peer_fd88__1';
const GHOST = 'kt_peer_10_88_0_99';

function byName(list: BirdProtocol[], name: string): BirdProtocol {
  const p = list.find((x) => x.name === name);
  if (!p) throw new Error(`no protocol ${name} in ${list.map((x) => x.name).join(', ')}`);
  return p;
}

test('established: every protocol, BGP details, one route exported per family', (t) => {
  const ps = parseShowProtocols(fixture('protocols-established.txt'));
  t.deepEqual(ps.map((p) => p.name), ['kt_device', 'kt_vips4', 'kt_vips6', 'kt_bfd', PEER4, PEER6, GHOST]);
  const p4 = byName(ps, PEER4);
  t.like(p4, { proto: 'BGP', state: 'up', info: 'Established' });
  t.like(p4.bgp, { state: 'Established', neighborAddress: '10.88.0.1', neighborAs: 65000, localAs: 65001, neighborId: '10.88.0.1', sourceAddress: '10.88.0.11', holdTime: 9 });
  t.is(p4.bgp?.lastError, undefined);
  t.deepEqual(p4.channels, [{ name: 'ipv4', state: 'UP', imported: 0, exported: 1 }]);
  const p6 = byName(ps, PEER6);
  t.like(p6.bgp, { state: 'Established', neighborAddress: 'fd88::1', sourceAddress: 'fd88::11' });
  t.deepEqual(p6.channels, [{ name: 'ipv6', state: 'UP', imported: 0, exported: 1 }]);
  // The kernel protocols learnt the two host routes.
  t.is(byName(ps, 'kt_vips4').channels[0]?.imported, 1);
  t.is(byName(ps, 'kt_vips6').channels[0]?.imported, 1);
  // The peer that does not exist never got past connecting.
  const ghost = byName(ps, GHOST);
  t.is(ghost.state, 'start');
  t.true(['Connect', 'Active'].includes(ghost.bgp!.state), ghost.bgp!.state);
  t.is(ghost.channels[0]?.state, 'DOWN');
  t.is(ghost.channels[0]?.exported, null);
  // Epoch-with-milliseconds times, all within the capture (a few seconds apart).
  const times = ps.map((p) => p.since);
  t.true(times.every((x) => x !== null && x > Date.UTC(2020, 0, 1)), JSON.stringify(times));
  t.true(Math.max(...(times as number[])) - Math.min(...(times as number[])) < 60_000);
  t.true(p4.since! >= byName(ps, 'kt_device').since!);
});

test('withdrawn: sessions stay up, nothing exported', (t) => {
  const ps = parseShowProtocols(fixture('protocols-withdrawn.txt'));
  for (const name of [PEER4, PEER6]) {
    t.is(byName(ps, name).bgp?.state, 'Established');
    t.is(byName(ps, name).channels[0]?.exported, 0);
  }
  t.is(byName(ps, 'kt_vips4').channels[0]?.imported, 0);
});

test('admin down: the Cease notification is the last error', (t) => {
  const ps = parseShowProtocols(fixture('protocols-admin-down.txt'));
  for (const name of [PEER4, PEER6]) {
    const p = byName(ps, name);
    t.is(p.state, 'start');
    t.not(p.bgp?.state, 'Established');
    t.is(p.bgp?.lastError, 'Received: Administrative shutdown');
    t.true(p.info.endsWith('Received: Administrative shutdown'), p.info);
  }
});

test('BFD down: the IPv4 peer (BFD on) is down at once, the IPv6 one (no BFD) still waits for its hold timer', (t) => {
  const ps = parseShowProtocols(fixture('protocols-bfd-down.txt'));
  const p4 = byName(ps, PEER4);
  t.not(p4.bgp?.state, 'Established');
  t.is(p4.bgp?.lastError, 'Error: BFD session down');
  t.is(p4.channels[0]?.state, 'DOWN');
  t.is(byName(ps, PEER6).bgp?.state, 'Established');
});

test('link down and disabled', (t) => {
  const down = parseShowProtocols(fixture('protocols-link-down.txt'));
  for (const name of [PEER4, PEER6, GHOST]) t.is(byName(down, name).bgp?.lastError, 'Error: Link down');
  const disabled = parseShowProtocols(fixture('protocols-disabled.txt'));
  t.like(byName(disabled, PEER4), { state: 'down', info: '' });
  t.is(byName(disabled, PEER4).bgp?.state, 'Down');
});

test('summary-only output (show protocols) parses too', (t) => {
  const summary = fixture('protocols-established.txt').split('\n').filter((l) => !/^\s/.test(l)).join('\n');
  const ps = parseShowProtocols(`BIRD 2.0.12 ready.\n${summary}`);
  t.is(ps.length, 7);
  t.is(byName(ps, PEER4).info, 'Established');
  t.deepEqual(byName(ps, PEER4).channels, []);
});

test('BFD sessions', (t) => {
  const s = parseBfdSessions(fixture('bfd-sessions.txt'));
  t.is(s.length, 1);
  t.like(s[0], { address: '10.88.0.1', interface: 'eth0', state: 'Up', interval: 0.1, timeout: 0.3 });
  t.true(s[0]!.since! > Date.UTC(2020, 0, 1));
});

test('BIRD time formats', (t) => {
  t.is(parseBirdTime('1795947357.147'), 1795947357147);
  t.is(parseBirdTime('2026-11-29 10:11:46'), new Date(2026, 10, 29, 10, 11, 46).getTime());
  t.is(parseBirdTime('2026-11-29 10:11:46.706'), new Date(2026, 10, 29, 10, 11, 46, 706).getTime());
  const now = new Date(2026, 0, 2, 12, 0, 0);
  t.is(parseBirdTime('10:11:46.5', now), new Date(2026, 0, 2, 10, 11, 46, 500).getTime());
  t.is(parseBirdTime('yesterday'), null);
  // Old-style two-token Since column in a summary line.
  const [p] = parseShowProtocols('kt_peer_10_0_0_1 BGP        ---        up     2026-11-29 10:11:57  Established   \n');
  t.like(p, { state: 'up', info: 'Established', since: new Date(2026, 10, 29, 10, 11, 57).getTime() });
});
