import test from 'ava';
import { bareAddress, formatMessage, rfc5322Date } from '../../src/alert/smtp.js';
import { Mailer, realServerAlertText, virtualServerAlertText, vrrpAlertFor, vrrpAlertText } from '../../src/alert/mailer.js';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/util/log.js';
import { LOAD_SLACK_MS } from '../lib/timing.js';

test('VRRP alert texts are keepalived\'s', (t) => {
  t.deepEqual(vrrpAlertText('lb1', 'INSTANCE', 'VI_1', 'MASTER'), { subject: '[lb1] VRRP Instance VI_1 - Entering MASTER state', body: '=> VRRP Instance is now owning VRRP VIPs <=' });
  t.deepEqual(vrrpAlertText('lb1', 'INSTANCE', 'VI_1', 'BACKUP'), { subject: '[lb1] VRRP Instance VI_1 - Entering BACKUP state', body: '=> VRRP Instance is no longer owning VRRP VIPs <=' });
  t.deepEqual(vrrpAlertText('lb1', 'INSTANCE', 'VI_1', 'FAULT'), { subject: '[lb1] VRRP Instance VI_1 - Entering FAULT state', body: '=> VRRP Instance is no longer owning VRRP VIPs <=' });
  t.deepEqual(vrrpAlertText('lb1', 'INSTANCE', 'VI_1', 'STOP'), { subject: '[lb1] VRRP Instance VI_1 - Stopping', body: '=> VRRP Instance stopping <=' });
  t.deepEqual(vrrpAlertText('lb1', 'GROUP', 'G1', 'MASTER'), { subject: '[lb1] VRRP Group G1 - Entering MASTER state', body: '=> All VRRP group instances are now in MASTER state <=' });
  t.is(vrrpAlertText('lb1', 'INSTANCE', 'VI_1', 'INIT'), null);
  t.deepEqual(realServerAlertText('lb1', 'tcp/10.0.0.50:80', '10.0.0.21:80', false, 'TCP_CHECK: refused'), {
    subject: '[lb1] Realserver 10.0.0.21:80 of virtual server tcp/10.0.0.50:80 - DOWN', body: '=> TCP_CHECK: refused <=',
  });
  t.is(virtualServerAlertText('lb1', 'tcp/10.0.0.50:80', true, 2, 1, 3).body, '=> Gained quorum 2+1 <= 3 <=');
});

test('the message: keepalived\'s headers, CRLF, dot-stuffing, no header injection', (t) => {
  const text = formatMessage({
    from: 'LB <lb@example.com>', to: ['a@example.com', 'B <b@example.com>'], subject: 'hello\r\nBcc: evil@example.com', body: 'line 1\n.line 2\n..\nend',
    date: new Date(Date.UTC(2021, 2, 1, 9, 44, 8)),
  });
  t.is(text, [
    'Date: Mon, 01 Mar 2021 09:44:08 +0000',
    'From: LB <lb@example.com>',
    'Subject: hello Bcc: evil@example.com',
    'X-Mailer: keepalive-ts',
    'To: a@example.com,',
    ' B <b@example.com>',
    '',
    'line 1',
    '..line 2',
    '...',
    'end',
    '',
  ].join('\r\n'));
  t.is(bareAddress('LB <lb@example.com>'), 'lb@example.com');
  t.is(bareAddress('lb@example.com'), 'lb@example.com');
  t.is(rfc5322Date(new Date(Date.UTC(2024, 11, 31, 23, 5, 0))), 'Tue, 31 Dec 2024 23:05:00 +0000');
});

const log = createLogger({ level: 'silent' });
const configured = parseConfig('[global]\nrouter_id = "lb1"\nnotification_email = ["ops@example.com"]\nsmtp_server = "10.0.0.25:2525"\nsmtp_helo_name = "lb1.example.com"\nsmtp_connect_timeout = 3\n', 'm.toml').global;

test('Mailer: queues and sends in the background, in order; enqueue never waits or throws', async (t) => {
  const sent: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const mailer = new Mailer({
    global: () => configured,
    log,
    send: async (mail, opts) => {
      t.deepEqual(opts, { host: '10.0.0.25', port: 2525, helo: 'lb1.example.com', timeoutMs: 3000 });
      t.deepEqual(mail.to, ['ops@example.com']);
      await gate;
      if (mail.subject === 'bad') throw new Error('550 no');
      sent.push(mail.subject);
    },
  });
  t.true(mailer.enabled);
  mailer.enqueue({ subject: 'one', body: 'x' });
  mailer.enqueue({ subject: 'bad', body: 'x' });
  mailer.enqueue({ subject: 'two', body: 'x' });
  t.is(mailer.pending, 3, 'nothing was sent synchronously');
  release();
  await mailer.flush(1_000);
  t.deepEqual(sent, ['one', 'two']);
  t.deepEqual(mailer.counters, { sent: 2, failed: 1, dropped: 0 });
});

test('Mailer: nothing is queued without recipients or server; a full queue drops the oldest; flush gives up after its timeout', async (t) => {
  const none = new Mailer({ global: () => parseConfig('', 'n.toml').global, log, send: async () => t.fail('must not send') });
  t.false(none.enabled);
  none.enqueue({ subject: 's', body: 'b' });
  t.is(none.pending, 0);

  const stuck = new Mailer({ global: () => configured, log, maxQueue: 2, send: () => new Promise(() => undefined) });
  for (const s of ['a', 'b', 'c', 'd']) stuck.enqueue({ subject: s, body: '' });
  t.is(stuck.counters.dropped, 1, 'a in flight, b dropped for d');
  const started = Date.now();
  await stuck.flush(100);
  // flush(100) gives up after 100 ms; the bound leaves room for a loaded machine.
  t.true(Date.now() - started < 100 + LOAD_SLACK_MS, `flush returned after ${Date.now() - started} ms`);
});

test('no_email_faults: no mail for FAULT, the other states still mail', (t) => {
  const g = { router_id: 'lb1', no_email_faults: true };
  t.is(vrrpAlertFor(g, 'INSTANCE', 'VI_1', 'FAULT'), null);
  t.is(vrrpAlertFor(g, 'GROUP', 'G', 'FAULT'), null);
  t.is(vrrpAlertFor(g, 'INSTANCE', 'VI_1', 'MASTER')?.subject, '[lb1] VRRP Instance VI_1 - Entering MASTER state');
  t.is(vrrpAlertFor({ ...g, no_email_faults: false }, 'INSTANCE', 'VI_1', 'FAULT')?.subject, '[lb1] VRRP Instance VI_1 - Entering FAULT state');
});
