import test from 'ava';
import { processMatchSpec, processMatches, processQuorumMet, processTransition, computeTracking, type ProcessEntry } from '../../src/vrrp/tracking.js';
import { parseCmdline, parseStat } from '../../src/vrrp/process-monitor.js';

const p = (comm: string, argv: string[], pid = 1): ProcessEntry => ({ pid, comm, argv });

test('a bare name matches /proc/PID/comm exactly (pgrep "^name$", not a regex or prefix)', (t) => {
  const spec = processMatchSpec({ process: ['haproxy'], full_command: false });
  t.deepEqual(spec, { name: 'haproxy', params: [], paramMatch: 'none', fullCommand: false });
  t.true(processMatches(spec, p('haproxy', ['/usr/sbin/haproxy', '-f', 'x'])));
  t.false(processMatches(spec, p('haproxy-wrap', ['haproxy'])));
  t.false(processMatches(spec, p('ssh', [])), 'ssh is not sshd');
});

test('full_command compares argv[0]; parameters imply it and match exactly by default', (t) => {
  const full = processMatchSpec({ process: ['/usr/sbin/haproxy'], full_command: true });
  t.true(processMatches(full, p('haproxy', ['/usr/sbin/haproxy', '-W'])));
  t.false(processMatches(full, p('haproxy', ['haproxy', '-W'])));
  const params = processMatchSpec({ process: ['sleep', '1000'], full_command: false });
  t.like(params, { paramMatch: 'exact', fullCommand: true });
  t.true(processMatches(params, p('sleep', ['sleep', '1000'])));
  t.false(processMatches(params, p('sleep', ['sleep', '1000', 'x'])));
  t.false(processMatches(params, p('sleep', ['sleep', '100'])));
  t.false(processMatches(params, p('sleep', ['/bin/sleep', '1000'])));
});

test('param_match partial / initial; param_match without parameters means "no parameters"', (t) => {
  const partial = processMatchSpec({ process: ['python3', '-m', 'worker'], param_match: 'partial', full_command: false });
  t.true(processMatches(partial, p('python3', ['python3', '-m', 'worker', '--queue', 'a'])));
  t.false(processMatches(partial, p('python3', ['python3', '-m', 'workers'])));
  const initial = processMatchSpec({ process: ['python3', '-m', 'work'], param_match: 'initial', full_command: false });
  t.true(processMatches(initial, p('python3', ['python3', '-m', 'workers', 'x'])));
  t.false(processMatches(initial, p('python3', ['python3', '-c', 'workers'])));
  const none = processMatchSpec({ process: ['nginx'], param_match: 'exact', full_command: false });
  t.true(processMatches(none, p('nginx', ['nginx'])));
  t.false(processMatches(none, p('nginx', ['nginx', '-g', 'daemon off;'])));
});

test('quorum and quorum_max', (t) => {
  t.false(processQuorumMet(0, 1));
  t.true(processQuorumMet(1, 1));
  t.true(processQuorumMet(9, 1));
  t.false(processQuorumMet(3, 1, 2));
  t.true(processQuorumMet(0, 0, 0), 'quorum_max 0: OK while none runs');
  t.false(processQuorumMet(1, 0, 0));
});

test('transitions: first result at once, later ones after fork_delay / terminate_delay', (t) => {
  const d = { forkDelayMs: 500, terminateDelayMs: 2000 };
  t.deepEqual(processTransition(null, true, d), { ok: true });
  t.deepEqual(processTransition(null, false, d), { ok: false });
  t.is(processTransition(true, true, d), null);
  t.deepEqual(processTransition(false, true, d), { ok: true, after: 500 });
  t.deepEqual(processTransition(true, false, d), { ok: false, after: 2000 });
  t.deepEqual(processTransition(true, false, { forkDelayMs: 0, terminateDelayMs: 0 }), { ok: false });
});

test('a tracked process feeds the priority like a script: weight on failure, reverse, weight 0 = FAULT', (t) => {
  t.deepEqual(computeTracking(100, [{ name: 'process:p', weight: -30, ok: false }]), { priority: 70, faults: [] });
  t.deepEqual(computeTracking(100, [{ name: 'process:p', weight: -30, ok: true }]), { priority: 100, faults: [] });
  t.deepEqual(computeTracking(100, [{ name: 'process:p', weight: -30, reverse: true, ok: true }]), { priority: 100, faults: [] });
  t.deepEqual(computeTracking(100, [{ name: 'process:p', weight: 0, ok: false }]), { priority: 100, faults: ['process:p'] });
});

test('/proc parsing: comm with spaces and parentheses, zombies skipped, argv split at NULs', (t) => {
  t.deepEqual(parseStat('123 (my (odd) name) S 1 123 123 0'), { comm: 'my (odd) name', state: 'S' });
  t.is(parseStat('124 (defunct) Z 1 124'), null);
  t.is(parseStat('garbage'), null);
  t.deepEqual(parseCmdline(Buffer.from('sleep\u00001000\u0000')), ['sleep', '1000']);
  t.deepEqual(parseCmdline(Buffer.from('')), []);
  t.deepEqual(parseCmdline(Buffer.from('a b\u0000\u0000c\u0000')), ['a b', '', 'c']);
});
