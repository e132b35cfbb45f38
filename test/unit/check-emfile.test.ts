/**
 * A checker that runs out of descriptors (EMFILE) reports "unknown", not "down": run in a child
 * process whose descriptor limit is lowered with prlimit and then exhausted, against a live
 * listener that would answer the check.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '../../src');

function childScript(port: number): string {
  return `
import { openSync } from 'node:fs';
import { createChecker } from '${DIST}/lvs/check/index.js';
const base = { connect_timeout: 2, retry: 0, delay_before_retry: 1, delay_loop: 1, warmup: 0, connect_ip: '127.0.0.1', connect_port: ${port} };
const checks = {
  TCP_CHECK: { type: 'TCP_CHECK', ...base },
  HTTP_GET: { type: 'HTTP_GET', ...base, path: '/', status_code: [200] },
  MISC_CHECK: { type: 'MISC_CHECK', ...base, misc_path: '/bin/true', misc_timeout: 2, misc_dynamic: false },
  UDP_CHECK: { type: 'UDP_CHECK', ...base, payload: 'x', require_reply: false },
};
const before = {};
for (const [k, c] of Object.entries(checks)) before[k] = await createChecker(c).run(new AbortController().signal);
const held = [];
try { for (;;) held.push(openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }
const after = {};
for (const [k, c] of Object.entries(checks)) after[k] = await createChecker(c).run(new AbortController().signal);
process.stdout.write(JSON.stringify({ before, after }));
process.exit(0);
`;
}

test('TCP, HTTP, UDP and MISC checks that hit EMFILE report unknown, not down', async (t) => {
  const server = createServer((s) => { s.on('error', () => undefined); s.end('HTTP/1.0 200 OK\r\n\r\nok'); }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  t.teardown(() => server.close());
  const dir = mkdtempSync(join(tmpdir(), 'kt-emfile-'));
  const file = join(dir, 'child.mjs');
  writeFileSync(file, childScript((server.address() as AddressInfo).port));
  const r = await new Promise<{ stdout: string; stderr: string; status: number | null }>((resolve) => {
    // Not spawnSync: it would block this process's own listener.
    const c = spawn('prlimit', ['--nofile=64:64', process.execPath, file]);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('exit', (status) => resolve({ stdout, stderr, status }));
  });
  t.is(r.status, 0, r.stderr);
  const { before, after } = JSON.parse(r.stdout) as Record<string, Record<string, { ok: boolean; unknown?: boolean; detail: string }>>;
  t.log(JSON.stringify(after));
  for (const k of ['TCP_CHECK', 'HTTP_GET', 'MISC_CHECK']) t.true(before[k]!.ok, `${k} passes with descriptors to spare: ${before[k]!.detail}`);
  for (const k of ['TCP_CHECK', 'HTTP_GET', 'MISC_CHECK', 'UDP_CHECK']) {
    t.false(after[k]!.ok, k);
    t.true(after[k]!.unknown, `${k} without descriptors is unknown: ${after[k]!.detail}`);
  }
});
