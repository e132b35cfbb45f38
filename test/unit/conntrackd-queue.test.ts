// conntrackd's role sequences as keepalive-ts orders them (sync/conntrackd-queue.ts), with a fake
// command runner: which command runs when, what a MASTER promotion abandons, commit outcomes.
import test from 'ava';
import { RoleQueue, type CommitOutcome, type RunningCommand } from '../../src/sync/conntrackd-queue.js';
import type { ConntrackdRole } from '../../src/sync/conntrackd-plan.js';

/** A runner whose commands finish when the test says so (or at once for those listed in `instant`). */
function fakeRunner(instant: ReadonlySet<string>) {
  const log: string[] = [];
  const pending = new Map<string, (ok: boolean) => void>();
  const run = (opt: string, role: ConntrackdRole): RunningCommand => {
    log.push(`start ${role} ${opt}`);
    let settle!: (ok: boolean) => void;
    const done = new Promise<boolean>((resolve) => { settle = resolve; });
    if (instant.has(opt)) settle(true);
    else pending.set(opt, (ok) => { pending.delete(opt); settle(ok); });
    return {
      done,
      abort: () => {
        log.push(`abort ${role} ${opt}`);
        pending.get(opt)?.(false);
      },
    };
  };
  return { log, pending, run };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

test('a MASTER promotion abandons the BACKUP command under way (a hung -n) and commits at once', async (t) => {
  const r = fakeRunner(new Set(['-t', '-c', '-f', '-R', '-B']));
  const commits: CommitOutcome[] = [];
  const abandoned: string[] = [];
  const q = new RoleQueue({ run: r.run, onCommit: (o) => commits.push(o), onAbandon: (opt, role) => abandoned.push(`${role} ${opt}`) });
  void q.set('backup');
  await tick();
  t.deepEqual(r.log, ['start backup -t', 'start backup -n']);
  t.deepEqual(q.current && { opt: q.current.opt, role: q.current.role }, { opt: '-n', role: 'backup' });
  // -n never answers (conntrackd busy under load): the VIPs of the new master wait for -c.
  const done = q.set('master');
  await tick();
  t.deepEqual(abandoned, ['backup -n']);
  t.is(commits.length, 1, 'the commit did not wait behind the BACKUP sequence');
  t.true(commits[0]!.ok);
  await done;
  t.deepEqual(r.log, ['start backup -t', 'start backup -n', 'abort backup -n', 'start master -c', 'start master -f', 'start master -R', 'start master -B']);
});

test('a BACKUP does not abandon the MASTER sequence: its commands not started are replaced', async (t) => {
  const r = fakeRunner(new Set(['-t', '-n', '-f', '-R', '-B']));
  const commits: CommitOutcome[] = [];
  const q = new RoleQueue({ run: r.run, onCommit: (o) => commits.push(o) });
  void q.set('master');
  await tick();
  t.deepEqual(r.log, ['start master -c']);
  void q.set('backup');
  r.pending.get('-c')!(true);
  await q.idle;
  t.deepEqual(r.log, ['start master -c', 'start backup -t', 'start backup -n']);
  t.is(commits.length, 1);
});

test('the same role again is a no-op; a failed -c is reported as a commit outcome', async (t) => {
  const r = fakeRunner(new Set(['-f', '-R', '-B']));
  const commits: CommitOutcome[] = [];
  const done: string[] = [];
  const q = new RoleQueue({ run: r.run, onCommit: (o) => commits.push(o), onSequenceDone: (role) => { done.push(role); } });
  void q.set('master');
  void q.set('master');
  await tick();
  r.pending.get('-c')!(false);
  await q.idle;
  void q.set('master');
  await q.idle;
  t.deepEqual(r.log.filter((l) => l.endsWith('-c')), ['start master -c']);
  t.deepEqual(commits.map((c) => [c.ok, c.reason]), [[false, 'failed']]);
  t.deepEqual(done, ['master']);
});
