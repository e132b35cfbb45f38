/**
 * SMTP_CHECK (keepalived check_smtp.c): connect over TCP (from bind_to when set), then
 *
 *   server: 220 greeting        (any other code = failure)
 *   client: HELO <helo_name>
 *   server: 250 ...             (any other code = failure)
 *   client: QUIT
 *   server: any complete reply  (keepalived reads one line and does not look at its code)
 *
 * = success. A connection that closes or errors before the QUIT reply, a malformed reply line or no
 * complete dialogue within connect_timeout = failure. As for the other network checkers,
 * connect_timeout bounds the whole attempt (keepalived arms it per read and write).
 *
 * One difference from keepalived, on purpose: keepalived looks at the first line of a reply only,
 * so a multi-line reply ("220-first line", "220 last line", RFC 5321 4.2.1) fails its check;
 * keepalive-ts waits for the reply's last line and judges its code, as every SMTP client does.
 *
 * keepalived's deprecated `host { }` sub-blocks (several addresses in one checker) are not a key
 * here: `keepalive-ts import` turns each into its own SMTP_CHECK, which is what keepalived does
 * internally.
 */
import type { SmtpCheck } from '../../config/types.js';
import { connectTarget, formatTarget, timeoutMs, withDeadline, type CheckResult, type Checker, type CheckTarget } from './types.js';

/** Longest reply line accepted (RFC 5321 4.5.3.1.5: 512 octets); longer = failure. */
const MAX_LINE = 4096;

type Stage = 'greeting' | 'helo' | 'quit' | 'done';

const EXPECTED: Readonly<Record<Exclude<Stage, 'done'>, number | null>> = { greeting: 220, helo: 250, quit: null };

/** What the connection should do after some bytes arrived. */
export type SmtpStep = { send: string } | { done: CheckResult } | null;

/**
 * The client side of the dialogue, pure: feed it what the server sends, it answers with the line to
 * send next, the verdict, or null while a reply is still incomplete.
 */
export class SmtpDialogue {
  #stage: Stage = 'greeting';
  #pending = '';
  #replyLines: string[] = [];

  constructor(private readonly heloName: string) {}

  get stage(): Stage {
    return this.#stage;
  }

  feed(text: string): SmtpStep {
    if (this.#stage === 'done') return null;
    this.#pending += text;
    let out: SmtpStep = null;
    for (;;) {
      const nl = this.#pending.indexOf('\n');
      if (nl < 0) break;
      const line = this.#pending.slice(0, nl).replace(/\r$/, '');
      this.#pending = this.#pending.slice(nl + 1);
      const step = this.#line(line);
      if (step === null) continue;
      if ('done' in step) return step;
      // A server must not answer a command before it is sent; if it does (pipelined garbage), the
      // next reply is judged against the next stage anyway.
      out = out && 'send' in out ? { send: out.send + step.send } : step;
    }
    if (this.#pending.length > MAX_LINE) return this.#fail(`reply line longer than ${MAX_LINE} bytes`);
    return out;
  }

  /** The connection ended (closed by the server, or an error) before the dialogue finished. */
  closed(reason: string): CheckResult {
    const what = this.#stage === 'greeting' ? 'the 220 greeting' : this.#stage === 'helo' ? 'the HELO reply' : 'the QUIT reply';
    this.#stage = 'done';
    return { ok: false, detail: `${reason} before ${what}` };
  }

  #line(line: string): SmtpStep {
    const m = /^([0-9]{3})([ -]|$)(.*)$/.exec(line);
    if (!m) return this.#fail(`malformed reply line ${JSON.stringify(line.slice(0, 80))}`);
    this.#replyLines.push(line);
    if (m[2] === '-') return null; // a multi-line reply goes on
    const code = Number(m[1]);
    const text = this.#replyLines.join(' | ');
    this.#replyLines = [];
    const stage = this.#stage as Exclude<Stage, 'done'>;
    const want = EXPECTED[stage];
    if (want !== null && code !== want) {
      return this.#fail(`${stage === 'greeting' ? 'greeting' : 'HELO reply'} ${JSON.stringify(text.slice(0, 120))}, expected ${want}`);
    }
    if (stage === 'greeting') {
      this.#stage = 'helo';
      return { send: `HELO ${this.heloName}\r\n` };
    }
    if (stage === 'helo') {
      this.#stage = 'quit';
      return { send: 'QUIT\r\n' };
    }
    this.#stage = 'done';
    return { done: { ok: true, detail: `220, HELO ${this.heloName} 250, QUIT ${code}` } };
  }

  #fail(detail: string): SmtpStep {
    this.#stage = 'done';
    return { done: { ok: false, detail } };
  }
}

export function createSmtpChecker(cfg: SmtpCheck, target: CheckTarget): Checker {
  const ms = timeoutMs(cfg.connect_timeout);
  const where = formatTarget(target);
  return {
    type: 'SMTP_CHECK',
    run: (signal) => withDeadline(signal, ms, (sig) => new Promise<CheckResult>((resolve) => {
      const dialogue = new SmtpDialogue(cfg.helo_name);
      let settled = false;
      const sock = connectTarget(target, cfg.bind_to);
      const done = (r: CheckResult): void => {
        if (settled) return;
        settled = true;
        sig.removeEventListener('abort', onAbort);
        sock.destroy();
        resolve(r.ok ? { ok: true, detail: `${where}: ${r.detail}` } : { ok: false, detail: `${where}: ${r.detail}` });
      };
      const onAbort = (): void => done({ ok: false, detail: `no complete SMTP dialogue (stuck at ${dialogue.stage})` });
      sig.addEventListener('abort', onAbort, { once: true });
      sock.setEncoding('latin1');
      sock.on('data', (text: string) => {
        const step = dialogue.feed(text);
        if (step === null) return;
        if ('done' in step) done(step.done);
        else sock.write(step.send, 'latin1');
      });
      sock.once('end', () => done(dialogue.closed('connection closed')));
      sock.once('error', (err: NodeJS.ErrnoException) => done(dialogue.closed(err.code ?? err.message)));
    })),
  };
}
