// Alert mails on VRRP transitions, delivered to a real SMTP server (aiosmtpd in a lab host), with
// keepalived's subjects and bodies; and an SMTP server that never answers delays no transition.
import type { ExecutionContext } from 'ava';
import { createLab, netnsTest, waitFor, type LabHost } from '../lib/netns.js';
import { startDirector, directorToml, type Director } from '../lib/daemon.js';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from '../lib/smtp-server.js';
import { startAddrMonitor, vipAddedAt } from '../lib/interop.js';
import { masterDownIntervalMs, skewTimeMs } from '../../src/vrrp/timing.js';
import { assertGracefulTakeover } from '../lib/timing.js';
import { startNginx } from '../lib/servers.js';

const VIP = '10.77.0.50';

function toml(routerId: string, priority: number, smtp: string, extraGlobal = ''): string {
  const global = [
    'notification_email = ["ops@example.com", "NOC <noc@example.com>"]',
    'notification_email_from = "keepalive-ts <kt@example.com>"',
    `smtp_server = "${smtp}"`,
    'smtp_helo_name = "director.example.com"',
    'smtp_connect_timeout = 2',
    extraGlobal,
  ].join('\n');
  return directorToml({
    routerId, priority, vips: [`${VIP}/24`], version: 3, advertInt: 1, extraInstance: 'smtp_alert = true',
    extra: '[[vrrp_sync_group]]\nname = "G1"\ngroup = ["VI_1"]\nsmtp_alert = true',
  })
    .replace('metrics_listen = ""', `metrics_listen = "127.0.0.1:9650"\n${global}`);
}

async function waitMail(t: ExecutionContext, sink: SmtpSink, subject: string, ms = 10_000): Promise<ReceivedMail> {
  let found: ReceivedMail | undefined;
  await waitFor(async () => {
    found = (await sink.mails()).find((m) => m.headers.subject === subject);
    return found !== undefined;
  }, ms, `mail "${subject}"`, 50).catch(async () => {
    t.log(`mails so far: ${JSON.stringify((await sink.mails()).map((m) => m.headers.subject))}`);
  });
  if (!found) throw new Error(`no mail with subject "${subject}"`);
  return found;
}

async function metric(host: LabHost, name: string): Promise<string> {
  const text = (await host.exec(['node', '-e', "fetch('http://127.0.0.1:9650/metrics').then(r => r.text()).then(x => process.stdout.write(x))"])).stdout;
  return text.split('\n').filter((l) => l.startsWith(name)).join('\n');
}

async function state(d: Director): Promise<string> {
  return (await d.instance()).state;
}

netnsTest('smtp_alert: mails with keepalived subjects reach a real SMTP server on MASTER, BACKUP and stop', async (t) => {
  const lab = await createLab(t);
  const ha = await lab.addHost('a');
  const hb = await lab.addHost('b');
  const mail = await lab.addHost('mail');
  const sink = await startSmtpSink(lab, mail);
  const server = `${sink.address}:${sink.port}`;

  const a = await startDirector(lab, ha, toml('dir-a', 150, server));
  await waitFor(async () => (await state(a)) === 'MASTER', 10_000, 'a MASTER', 50);
  const m1 = await waitMail(t, sink, '[dir-a] VRRP Instance VI_1 - Entering MASTER state');
  t.is(m1.body.trim(), '=> VRRP Instance is now owning VRRP VIPs <=');
  t.is(m1.headers.from, 'keepalive-ts <kt@example.com>');
  t.regex(m1.headers.to ?? '', /ops@example\.com,\s*NOC <noc@example\.com>/);
  t.regex(m1.headers.date ?? '', /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
  // aiosmtpd records the envelope: both recipients, the bare From address.
  t.is(m1.headers['x-rcptto'], 'ops@example.com, noc@example.com');
  t.is(m1.headers['x-mailfrom'], 'kt@example.com');
  t.regex(sink.proc.output(), />> b'HELO director\.example\.com'/, 'smtp_helo_name is what HELO says');
  const g1 = await waitMail(t, sink, '[dir-a] VRRP Group G1 - Entering MASTER state');
  t.is(g1.body.trim(), '=> All VRRP group instances are now in MASTER state <=');

  const b = await startDirector(lab, hb, toml('dir-b', 100, server));
  await waitFor(async () => (await state(b)) === 'BACKUP', 10_000, 'b BACKUP', 50);
  const m2 = await waitMail(t, sink, '[dir-b] VRRP Instance VI_1 - Entering BACKUP state');
  t.is(m2.body.trim(), '=> VRRP Instance is no longer owning VRRP VIPs <=');

  // a stops: it mails "Stopping" on its way out, b mails its new MASTER state.
  await a.proc.kill('SIGTERM');
  t.is((await a.proc.exited).code, 0);
  await waitMail(t, sink, '[dir-a] VRRP Instance VI_1 - Stopping');
  await waitMail(t, sink, '[dir-b] VRRP Instance VI_1 - Entering MASTER state');
  t.regex(await metric(hb, 'keepalive_ts_alert_mails_total'), /result="sent"\} [2-9]/, 'b counts its sent mails');
  t.regex(await metric(hb, 'keepalive_ts_alert_mails_total'), /result="failed"\} 0/);
});

netnsTest('smtp_alert: an SMTP server that never answers delays no VRRP transition; the failures are logged and counted', async (t) => {
  const lab = await createLab(t);
  const ha = await lab.addHost('a');
  const hb = await lab.addHost('b');
  const tarpit = await lab.addHost('tarpit');
  // Accepts TCP connections and never says a word: every mail waits out smtp_connect_timeout.
  tarpit.spawn(['node', '-e', `require('net').createServer(() => {}).listen(2525, '${tarpit.ipv4}')`]);
  await waitFor(async () => (await tarpit.exec(['ss', '-Hltn', 'sport = :2525'])).stdout.trim() !== '', 5_000, 'tarpit listening', 50);
  const server = `${tarpit.ipv4}:2525`;

  const a = await startDirector(lab, ha, toml('dir-a', 150, server));
  await waitFor(async () => (await state(a)) === 'MASTER', 10_000, 'a MASTER', 50);
  const b = await startDirector(lab, hb, toml('dir-b', 100, server));
  await waitFor(async () => (await state(b)) === 'BACKUP', 10_000, 'b BACKUP', 50);

  // b's BACKUP mail is still hanging on the tarpit; a's SIGTERM must still hand over in Skew_Time.
  const mon = await startAddrMonitor(hb);
  const stoppedAt = Date.now();
  await a.proc.kill('SIGTERM');
  await waitFor(async () => (await state(b)) === 'MASTER', 5_000, 'b MASTER', 10);
  await waitFor(async () => vipAddedAt(mon.output(), VIP) !== null, 3_000, 'VIP add seen', 10);
  assertGracefulTakeover(t, vipAddedAt(mon.output(), VIP)! - stoppedAt, { skewMs: skewTimeMs(3, 100, 100), mdiMs: masterDownIntervalMs(3, 100, 100), advertMs: 1000 },
    'takeover with a dead SMTP server');
  await mon.kill('SIGTERM');

  await waitFor(async () => /result="failed"\} [1-9]/.test(await metric(hb, 'keepalive_ts_alert_mails_total')), 10_000, 'failed mails counted', 100);
  t.regex(b.proc.output(), /alert mail failed.*no reply to greeting within 2000 ms/);
});

netnsTest('smtp_alert on real and virtual servers: DOWN / UP mails as checks fail and pass; smtp_alert = false silences one real server', async (t) => {
  const lab = await createLab(t);
  const mail = await lab.addHost('mail');
  const sink = await startSmtpSink(lab, mail);
  const r1 = await lab.addHost('r1', { ipv4: '10.77.0.21/24' });
  const r2 = await lab.addHost('r2', { ipv4: '10.77.0.22/24' });
  let n1 = await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir });
  const n2 = await startNginx(r2, { port: 80, body: 'r2', tmpDir: lab.tmpDir });
  const da = await lab.addHost('da');
  const service = `[[virtual_server]]
address = "${VIP}"
port = 80
lb_kind = "PROXY"
delay_loop = 0.5
quorum = 2
smtp_alert = true
[[virtual_server.real_server]]
address = "10.77.0.21"
check = { type = "TCP_CHECK", connect_timeout = 0.5, retry = 0 }
[[virtual_server.real_server]]
address = "10.77.0.22"
smtp_alert = false
check = { type = "TCP_CHECK", connect_timeout = 0.5, retry = 0 }
`;
  const text = directorToml({ routerId: 'dir-lvs', priority: 150, vips: [`${VIP}/24`], extra: service })
    .replace('metrics_listen = ""', `metrics_listen = ""\nnotification_email = ["ops@example.com"]\nsmtp_server = "${sink.address}:${sink.port}"`);
  const d = await startDirector(lab, da, text);
  await waitFor(async () => (await d.status()).virtual_servers[0]!.real_servers.filter((r) => r.up).length === 2, 10_000, 'both real servers up');

  await n1.kill('SIGTERM');
  const down = await waitMail(t, sink, '[dir-lvs] Realserver 10.77.0.21:80 of virtual server tcp/10.77.0.50:80 - DOWN');
  t.regex(down.body, /^=> .+ <=/);
  t.log(`DOWN mail body: ${down.body.trim()}`);
  const vsDown = await waitMail(t, sink, '[dir-lvs] Virtualserver tcp/10.77.0.50:80 - DOWN');
  t.regex(vsDown.body, /Lost quorum 2\+0 <= 1 <=/);
  n1 = await startNginx(r1, { port: 80, body: 'r1', tmpDir: lab.tmpDir });
  await waitMail(t, sink, '[dir-lvs] Realserver 10.77.0.21:80 of virtual server tcp/10.77.0.50:80 - UP');
  await waitMail(t, sink, '[dir-lvs] Virtualserver tcp/10.77.0.50:80 - UP');

  // r2 has smtp_alert = false: its failure is logged, not mailed.
  await n2.kill('SIGTERM');
  await waitFor(async () => (await d.status()).virtual_servers[0]!.real_servers.find((r) => r.address === '10.77.0.22')?.up === false, 5_000, 'r2 down');
  const vsDownSubject = '[dir-lvs] Virtualserver tcp/10.77.0.50:80 - DOWN';
  await waitFor(async () => (await sink.mails()).filter((m) => m.headers.subject === vsDownSubject).length === 2, 10_000, 'second quorum DOWN mail', 50);
  t.false((await sink.mails()).some((m) => (m.headers.subject ?? '').includes('Realserver 10.77.0.22')), 'no mail for the real server with smtp_alert = false');
});
