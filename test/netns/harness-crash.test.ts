// A test file that crashes (uncaught exception) or hangs until ava's timeout must not leave
// processes or namespaces behind, and the run must end with the failure reported (it used to hang:
// a stopped listener that had inherited the worker's stderr kept ava's pipe open). Each test runs
// test/fixtures/harness/crash.fixture.ts in a nested ava and then looks for what it had started.
import type { ExecutionContext } from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsTest } from '../lib/netns.js';
import { pidAlive, run, sleep } from '../lib/procs.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const AVA = join(ROOT, 'node_modules/ava/entrypoints/cli.mjs');

async function crashRun(t: ExecutionContext, mode: 'uncaught' | 'hang'): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kt-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'ava.config.mjs');
  // Its own configuration: only the fixture, and a short inactivity timeout for the hang case.
  writeFileSync(config, `export default ${JSON.stringify({ files: ['dist/test/fixtures/harness/crash.fixture.js'], timeout: '5s', workerThreads: false })};\n`);
  const outFile = join(dir, 'children.json');
  const started = Date.now();
  // The nested run must end by itself; run() kills it (and fails the test) after 60 s.
  const r = await run(['env', `KT_FIXTURE_OUT=${outFile}`, `KT_FIXTURE_MODE=${mode}`, process.execPath, AVA, '--config', config], {
    allowFail: true,
    timeoutMs: 60_000,
  });
  const took = Date.now() - started;
  const output = `${r.stdout}${r.stderr}`;
  t.log(`nested ava (${mode}) exited ${r.code} after ${took} ms`);
  t.not(r.code, 0, `the crash is reported as a failure:\n${output}`);
  t.regex(output, mode === 'uncaught' ? /simulated crash of a test file/ : /Timed out while running tests/);

  const { pids, namespaces } = JSON.parse(readFileSync(outFile, 'utf8')) as { pids: number[]; namespaces: string[] };
  t.log(`children the fixture started: pids ${pids.join(' ')}; namespaces ${namespaces.join(' ') || '(none)'}`);
  t.true(pids.length >= 3, 'stopped listener, forker and its grandchild at least');
  t.true(namespaces.length >= 2, 'the fixture built a lab');
  // SIGKILL is immediate, but delivery to a whole group may lag a little.
  for (let i = 0; i < 20 && pids.some(pidAlive); i++) await sleep(100);
  t.deepEqual(pids.filter(pidAlive), [], 'no child of the crashed test file is left running');
  const left = (await run(['ip', 'netns', 'list'])).stdout;
  t.deepEqual(namespaces.filter((ns) => left.includes(ns)), [], 'no namespace of the crashed test file is left');
}

netnsTest('a test file that crashes on an uncaught exception leaves no process or namespace behind; ava ends and reports it', (t) => crashRun(t, 'uncaught'));
netnsTest('a test file stopped by ava\'s timeout leaves no process or namespace behind; ava ends and reports it', (t) => crashRun(t, 'hang'));
