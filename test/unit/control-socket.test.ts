import test from 'ava';
import { mkdtempSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection, type Socket } from 'node:net';
import { ControlServer, MAX_REQUEST_BYTES } from '../../src/daemon/control-server.js';
import { controlRequest } from '../../src/cli/control-client.js';
import { KeepaliveError } from '../../src/util/errors.js';
import { LineSplitter } from '../../src/util/ndjson.js';

async function withServer(t: import('ava').ExecutionContext, idleTimeoutMs = 10_000) {
  const dir = mkdtempSync(join(tmpdir(), 'kt-ctl-'));
  const path = join(dir, 'ctl.sock');
  let calls = 0;
  const server = new ControlServer({
    path,
    idleTimeoutMs,
    handlers: {
      status: () => ({ calls: ++calls }),
      fail: () => { throw new KeepaliveError('E_CONFIG_INVALID', 'bad config'); },
      slow: () => new Promise((r) => setTimeout(() => r('late'), 50)),
    },
  });
  await server.listen();
  t.teardown(async () => { await server.close(); rmSync(dir, { recursive: true, force: true }); });
  return { path, server };
}

/** Sends raw text and collects everything the server writes until it closes or `until` matches. */
function rawExchange(path: string, send: (s: Socket) => void, until?: (text: string) => boolean): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    let text = '';
    s.setEncoding('utf8');
    s.on('connect', () => send(s));
    s.on('data', (d: string) => { text += d; if (until?.(text)) { s.destroy(); resolve({ text, closed: false }); } });
    s.on('close', () => resolve({ text, closed: true }));
    s.on('error', () => undefined);
  });
}

test('socket file is created with mode 0600', async (t) => {
  const { path } = await withServer(t);
  t.is(statSync(path).mode & 0o777, 0o600);
});

test('request/reply round trip and coded errors', async (t) => {
  const { path } = await withServer(t);
  t.deepEqual(await controlRequest(path, 'status'), { id: 1, ok: true, result: { calls: 1 } });
  const bad = await controlRequest(path, 'fail');
  t.false(bad.ok);
  if (!bad.ok) t.is(bad.error.code, 'E_CONFIG_INVALID');
  const unknown = await controlRequest(path, 'nope');
  t.false(unknown.ok);
  if (!unknown.ok) t.regex(unknown.error.message, /unknown command "nope"/);
});

test('garbage lines get an error reply and the connection keeps working', async (t) => {
  const { path } = await withServer(t);
  const { text } = await rawExchange(path, (s) => s.write('not json\n[1,2]\n{"cmd":5}\n{"cmd":"status","id":"x"}\n'),
    (txt) => txt.split('\n').filter(Boolean).length >= 4);
  const replies = text.trim().split('\n').map((l) => JSON.parse(l));
  t.deepEqual(replies.map((r) => r.ok), [false, false, false, true]);
  t.is(replies[3].id, 'x');
  t.regex(replies[0].error.message, /not valid JSON/);
});

test('an oversized line gets an error and a closed connection; the server still answers others', async (t) => {
  const { path } = await withServer(t);
  const big = 'x'.repeat(MAX_REQUEST_BYTES + 10);
  const { text, closed } = await rawExchange(path, (s) => s.write(big));
  t.true(closed);
  t.regex(text, /exceeds/);
  t.true((await controlRequest(path, 'status')).ok);
});

test('a half-open client that never finishes a line is disconnected; others are served meanwhile', async (t) => {
  const { path } = await withServer(t, 300);
  const idle = rawExchange(path, (s) => s.write('{"cmd":"sta'));
  t.true((await controlRequest(path, 'status')).ok);
  const { closed, text } = await idle;
  t.true(closed);
  t.is(text, '');
});

test('a second daemon cannot steal a live socket; a stale file is replaced', async (t) => {
  const { path, server } = await withServer(t);
  const other = new ControlServer({ path, handlers: {} });
  await t.throwsAsync(other.listen(), { message: /in use/ });
  await server.close();
  await server.close(); // idempotent
  t.throws(() => statSync(path));
});

test('client reports a clear error when no daemon listens', async (t) => {
  const err = await t.throwsAsync(controlRequest('/nonexistent/kt.sock', 'status'));
  t.regex(err!.message, /cannot reach the daemon .*ENOENT/);
});

test('LineSplitter reassembles lines split at every position', (t) => {
  const input = '{"cmd":"a"}\n{"cmd":"bb"}\r\n\n{"cmd":"ccc"}\n';
  for (let i = 0; i <= input.length; i++) {
    const s = new LineSplitter(1024);
    const lines = [...s.push(input.slice(0, i)), ...s.push(input.slice(i))].map((e) => (e.kind === 'line' ? e.line : 'OVERFLOW'));
    t.deepEqual(lines, ['{"cmd":"a"}', '{"cmd":"bb"}', '{"cmd":"ccc"}'], `split at ${i}`);
  }
  const s = new LineSplitter(4);
  t.deepEqual(s.push('12345'), [{ kind: 'overflow' }]);
  t.deepEqual(s.push('\nok\n'), []);
});

test('a client trickling bytes without ever finishing a line is disconnected (slowloris)', async (t) => {
  const { path } = await withServer(t, 400);
  let timer: NodeJS.Timeout | undefined;
  const started = Date.now();
  const { closed } = await rawExchange(path, (s) => {
    timer = setInterval(() => { if (!s.destroyed) s.write('x'); }, 100);
  });
  clearInterval(timer);
  t.true(closed);
  t.true(Date.now() - started < 5_000, 'closed by the deadline, not by the test timeout');
});

test('a client that half-closes right after its requests still gets every reply, in order', async (t) => {
  const { path } = await withServer(t);
  const { text, closed } = await rawExchange(path, (s) => s.end('{"cmd":"slow","id":1}\n{"cmd":"status","id":2}\n'));
  t.true(closed, 'the server closes its side once the replies are out');
  t.deepEqual(text.trim().split('\n').map((l) => JSON.parse(l).id), [1, 2]);
  t.is(JSON.parse(text.split('\n')[0]!).result, 'late');
});

test('an answer that takes longer than the idle deadline still reaches the client (the deadline is for idle clients, not for the daemon\'s work)', async (t) => {
  // idle deadline 30 ms; the slow handler answers after 50 ms.
  const { path } = await withServer(t, 30);
  const { text } = await rawExchange(path, (s) => s.write('{"id":1,"cmd":"slow"}\n'), (x) => x.includes('\n'));
  t.deepEqual(JSON.parse(text.trim()), { id: 1, ok: true, result: 'late' });
  // And the deadline runs again once the answer is out: an idle client is then disconnected.
  const after = await rawExchange(path, (s) => s.write('{"id":2,"cmd":"slow"}\n'));
  t.true(after.closed);
  t.true(after.text.includes('"late"'));
});

test.serial('a request that arrived while the event loop was stalled past the idle deadline is answered, not dropped with the connection', async (t) => {
  const { path } = await withServer(t, 50);
  const s = createConnection(path);
  s.setEncoding('utf8');
  s.on('error', () => undefined);
  let text = '';
  let closed = false;
  const got = (n: number) => new Promise<void>((resolve) => {
    const check = () => { if (text.split('\n').length - 1 >= n || closed) resolve(); else setTimeout(check, 5); };
    check();
  });
  s.on('data', (d: string) => { text += d; });
  s.on('close', () => { closed = true; });
  await new Promise<void>((r) => s.on('connect', () => r()));
  // A first round trip: the server has accepted, its idle deadline runs from the reply.
  s.write('{"id":1,"cmd":"status"}\n');
  await got(1);
  // The next request is sent, then the event loop is stalled (a big transaction planned on the
  // main thread) well past the deadline: the request is in the socket before the deadline expires.
  s.write('{"id":2,"cmd":"status"}\n');
  const until = Date.now() + 250;
  while (Date.now() < until) { /* stall */ }
  await got(2);
  t.false(closed && text.split('\n').length - 1 < 2, `closed without the reply: ${JSON.stringify(text)}`);
  t.deepEqual(JSON.parse(text.trim().split('\n')[1]!), { id: 2, ok: true, result: { calls: 2 } });
  s.destroy();
});
