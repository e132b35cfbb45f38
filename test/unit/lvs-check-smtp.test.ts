import test from 'ava';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { SmtpCheck } from '../../src/config/types.js';
import { createChecker } from '../../src/lvs/check/index.js';
import { SmtpDialogue } from '../../src/lvs/check/smtp.js';

function smtp(address: string, port: number, extra: Partial<SmtpCheck> = {}): SmtpCheck {
  return {
    type: 'SMTP_CHECK', connect_timeout: 5, retry: 1, delay_before_retry: 1, delay_loop: 60, warmup: 0,
    connect_ip: address, connect_port: port, helo_name: 'director.example', ...extra,
  };
}

const run = (c: { run(s: AbortSignal): Promise<{ ok: boolean; detail: string }> }) => c.run(new AbortController().signal);

// ---- the pure dialogue ----

test('dialogue: 220 -> HELO, 250 -> QUIT, any reply to QUIT -> success', (t) => {
  const d = new SmtpDialogue('h.example');
  t.deepEqual(d.feed('220 mx ESMTP ready\r\n'), { send: 'HELO h.example\r\n' });
  t.deepEqual(d.feed('250 mx Hello\r\n'), { send: 'QUIT\r\n' });
  const end = d.feed('221 Bye\r\n');
  t.true(end !== null && 'done' in end && end.done.ok);
  t.is(d.stage, 'done');
  t.is(d.feed('more\r\n'), null);
});

test('dialogue: replies split across reads and bare LF line ends', (t) => {
  const d = new SmtpDialogue('h');
  t.is(d.feed('22'), null);
  t.is(d.feed('0 hi'), null);
  t.deepEqual(d.feed('\n'), { send: 'HELO h\r\n' });
});

test('dialogue: a multi-line reply is judged by its last line', (t) => {
  const d = new SmtpDialogue('h');
  t.is(d.feed('220-first line\r\n'), null);
  t.deepEqual(d.feed('220-second\r\n220 last\r\n'), { send: 'HELO h\r\n' });
  t.is(d.feed('250-mx greets h\r\n250-PIPELINING\r\n'), null);
  t.deepEqual(d.feed('250 8BITMIME\r\n'), { send: 'QUIT\r\n' });
});

test('dialogue: a wrong greeting code or HELO code fails with the reply text', (t) => {
  const a = new SmtpDialogue('h').feed('554 no service for you\r\n');
  t.true(a !== null && 'done' in a && !a.done.ok && /greeting "554 no service for you", expected 220/.test(a.done.detail));
  const d = new SmtpDialogue('h');
  d.feed('220 ok\r\n');
  const b = d.feed('501 bad HELO\r\n');
  t.true(b !== null && 'done' in b && !b.done.ok && /HELO reply "501 bad HELO", expected 250/.test(b.done.detail));
});

test('dialogue: malformed lines and endless lines fail', (t) => {
  const a = new SmtpDialogue('h').feed('HTTP/1.1 400 Bad Request\r\n');
  t.true(a !== null && 'done' in a && !a.done.ok && /malformed reply line/.test(a.done.detail));
  const b = new SmtpDialogue('h').feed('2'.repeat(5000));
  t.true(b !== null && 'done' in b && !b.done.ok && /longer than/.test(b.done.detail));
});

test('dialogue: closing early names the missing reply', (t) => {
  const d = new SmtpDialogue('h');
  d.feed('220 ok\r\n');
  t.regex(d.closed('connection closed').detail, /connection closed before the HELO reply/);
});

// ---- against a local fake server ----

interface FakeSmtp { server: Server; port: number; received: string[] }

/** A scripted SMTP server: `script(line)` answers each client line (null: close). */
async function fakeSmtp(greeting: string | null, answer: (line: string) => string | null): Promise<FakeSmtp> {
  const received: string[] = [];
  const server = createServer((s: Socket) => {
    s.on('error', () => {});
    s.setEncoding('latin1');
    if (greeting !== null) s.write(greeting);
    let buf = '';
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        received.push(line);
        const a = answer(line);
        if (a === null) s.end();
        else s.write(a);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, received };
}

test('a well-behaved server passes and sees HELO helo_name then QUIT', async (t) => {
  const f = await fakeSmtp('220 fake ESMTP\r\n', (l) => (l.startsWith('HELO') ? '250 fake\r\n' : '221 bye\r\n'));
  t.teardown(() => f.server.close());
  const checker = createChecker(smtp('127.0.0.1', f.port));
  t.is(checker.type, 'SMTP_CHECK');
  const r = await run(checker);
  t.true(r.ok, r.detail);
  t.deepEqual(f.received, ['HELO director.example', 'QUIT']);
});

test('a server answering HELO with 5xx fails', async (t) => {
  const f = await fakeSmtp('220 fake\r\n', () => '550 go away\r\n');
  t.teardown(() => f.server.close());
  const r = await run(createChecker(smtp('127.0.0.1', f.port)));
  t.false(r.ok);
  t.regex(r.detail, /550 go away/);
});

test('a server that closes after HELO fails (keepalived needs the QUIT reply)', async (t) => {
  const f = await fakeSmtp('220 fake\r\n', (l) => (l.startsWith('HELO') ? '250 ok\r\n' : null));
  t.teardown(() => f.server.close());
  const r = await run(createChecker(smtp('127.0.0.1', f.port)));
  t.false(r.ok);
  t.regex(r.detail, /before the QUIT reply/);
});

test('a server that never greets fails at connect_timeout', async (t) => {
  const f = await fakeSmtp(null, () => '250 x\r\n');
  t.teardown(() => f.server.close());
  const r = await run(createChecker(smtp('127.0.0.1', f.port, { connect_timeout: 0.3 })));
  t.false(r.ok);
  t.regex(r.detail, /timeout after 300 ms/);
});

test('a closed port fails at once with the refusal', async (t) => {
  const f = await fakeSmtp('220 x\r\n', () => null);
  const port = f.port;
  await new Promise<void>((r) => f.server.close(() => r()));
  const r = await run(createChecker(smtp('127.0.0.1', port, { connect_timeout: 30 })));
  t.false(r.ok);
  t.regex(r.detail, /ECONNREFUSED before the 220 greeting/);
});

test('abort ends a pending dialogue with "aborted"', async (t) => {
  const f = await fakeSmtp(null, () => null);
  t.teardown(() => f.server.close());
  const ac = new AbortController();
  const p = createChecker(smtp('127.0.0.1', f.port, { connect_timeout: 60 })).run(ac.signal);
  setTimeout(() => ac.abort(), 50);
  t.deepEqual(await p, { ok: false, detail: 'aborted' });
});
