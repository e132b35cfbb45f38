/**
 * A minimal SMTP client (RFC 5321) for alert mails, as keepalived's smtp.c talks: HELO, MAIL FROM,
 * one RCPT TO per recipient, DATA, QUIT; plain TCP to a relay, no authentication or TLS (keepalived
 * has neither). Every reply must arrive within `timeoutMs` (keepalived's smtp_connect_timeout is
 * per step too). The message text (headers, body) is built by the pure functions below.
 */
import { Socket } from 'node:net';
import { KeepaliveError } from '../util/errors.js';

export interface MailEnvelope {
  /** Bare address for MAIL FROM ("a@b", taken out of "Name <a@b>"). */
  from: string;
  /** Bare addresses for RCPT TO. */
  to: string[];
}

export interface Mail {
  /** As configured: "a@b" or "Name <a@b>". */
  from: string;
  to: readonly string[];
  subject: string;
  body: string;
  date: Date;
}

/** "Name <a@b>" -> "a@b"; "a@b" stays. */
export function bareAddress(addr: string): string {
  const m = /<([^<>]+)>\s*$/.exec(addr);
  return (m ? m[1]! : addr).trim();
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 date in UTC, e.g. "Mon, 01 Mar 2021 09:44:08 +0000". */
export function rfc5322Date(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** Header values must not carry line breaks (a subject built from a name must not add headers). */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

/**
 * The DATA part, keepalived's layout: Date, From, Subject, X-Mailer, To (recipients comma separated),
 * a blank line and the body; CRLF line ends, lines starting with "." doubled (RFC 5321 4.5.2), and
 * without the terminating ".".
 */
export function formatMessage(m: Mail): string {
  const headers = [
    `Date: ${rfc5322Date(m.date)}`,
    `From: ${oneLine(m.from)}`,
    `Subject: ${oneLine(m.subject)}`,
    'X-Mailer: keepalive-ts',
    `To: ${m.to.map(oneLine).join(',\r\n ')}`,
  ];
  const body = m.body.replace(/\r?\n/g, '\r\n');
  const text = `${headers.join('\r\n')}\r\n\r\n${body}\r\n`;
  return text.replace(/(^|\r\n)\./g, '$1..');
}

export interface SendOptions {
  host: string;
  port: number;
  helo: string;
  timeoutMs: number;
}

/** Reads SMTP replies (multi-line "250-" ... "250 ") off a socket, one at a time. */
class ReplyReader {
  #buf = '';
  #lines: string[] = [];
  #waiter: ((r: { code: number; text: string } | Error) => void) | undefined;
  #error: Error | undefined;

  feed(chunk: string): void {
    this.#buf += chunk;
    let i: number;
    while ((i = this.#buf.indexOf('\n')) >= 0) {
      const line = this.#buf.slice(0, i).replace(/\r$/, '');
      this.#buf = this.#buf.slice(i + 1);
      this.#lines.push(line);
      if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
        const text = this.#lines.join('\n');
        this.#lines = [];
        const w = this.#waiter;
        this.#waiter = undefined;
        w?.({ code: Number(line.slice(0, 3)), text });
      } else if (!/^\d{3}-/.test(line)) {
        this.fail(new Error(`malformed SMTP reply line ${JSON.stringify(line)}`));
      }
    }
  }

  fail(err: Error): void {
    this.#error ??= err;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.(err);
  }

  next(timeoutMs: number, step: string): Promise<{ code: number; text: string }> {
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error(`no reply to ${step} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = (r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
    });
  }
}

/**
 * Sends one mail. Resolves when the server accepted the message (250 after DATA); rejects with
 * E_SMTP naming the step and the server's reply otherwise. The socket is always closed.
 */
export async function sendMail(mail: Mail, opts: SendOptions): Promise<void> {
  const sock = new Socket();
  const reader = new ReplyReader();
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => reader.feed(d));
  sock.on('error', (err) => reader.fail(err));
  sock.on('close', () => reader.fail(new Error('connection closed by the SMTP server')));
  const step = async (what: string, line: string | null, ok: (code: number) => boolean): Promise<void> => {
    if (line !== null) sock.write(`${line}\r\n`);
    const r = await reader.next(opts.timeoutMs, what);
    if (!ok(r.code)) throw new Error(`${what}: server replied ${JSON.stringify(r.text)}`);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cannot connect within ${opts.timeoutMs} ms`)), opts.timeoutMs);
      sock.once('connect', () => { clearTimeout(timer); resolve(); });
      sock.once('error', (err) => { clearTimeout(timer); reject(err); });
      sock.connect(opts.port, opts.host);
    });
    const envelope = { from: bareAddress(mail.from), to: mail.to.map(bareAddress) };
    await step('greeting', null, (c) => c === 220);
    await step('HELO', `HELO ${opts.helo}`, (c) => c === 250);
    await step('MAIL FROM', `MAIL FROM:<${envelope.from}>`, (c) => c === 250);
    for (const rcpt of envelope.to) await step(`RCPT TO ${rcpt}`, `RCPT TO:<${rcpt}>`, (c) => c === 250 || c === 251);
    await step('DATA', 'DATA', (c) => c === 354);
    await step('message', `${formatMessage(mail)}.`, (c) => c === 250);
    // The mail is accepted; a QUIT that goes unanswered changes nothing.
    await step('QUIT', 'QUIT', (c) => c === 221).catch(() => undefined);
  } catch (err) {
    throw new KeepaliveError('E_SMTP', `SMTP ${opts.host}:${opts.port}: ${(err as Error).message}`, { cause: err });
  } finally {
    sock.destroy();
  }
}
