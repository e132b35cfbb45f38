/**
 * E-mail alerts, as keepalived sends them (smtp.c, vrrp_notify.c, ipwrapper.c): the subjects and
 * bodies are built by the pure functions here; the Mailer queues them and sends them one at a time
 * in the background. A caller only ever enqueues (synchronous, never throws), so a slow or dead
 * SMTP server can delay mails but never a VRRP transition. Failures are logged and counted.
 *
 * Mail goes out only when global notification_email is non-empty and smtp_server is set (as in
 * keepalived); which events mail is decided by the smtp_alert keys (resolved at config load).
 */
import type { Logger } from 'pino';
import type { GlobalConfig } from '../config/index.js';
import { errorMessage } from '../util/errors.js';
import { sendMail, type Mail, type SendOptions } from './smtp.js';

export interface AlertText {
  subject: string;
  body: string;
}

export type VrrpAlertState = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP';

/** keepalived's VRRP instance / group alert; null for states keepalived does not mail (INIT). */
export function vrrpAlertText(routerId: string, kind: 'INSTANCE' | 'GROUP', name: string, state: string): AlertText | null {
  const what = kind === 'INSTANCE' ? `VRRP Instance ${name}` : `VRRP Group ${name}`;
  const texts: Record<string, [string, string, string]> = {
    MASTER: ['Entering MASTER state', '=> VRRP Instance is now owning VRRP VIPs <=', '=> All VRRP group instances are now in MASTER state <='],
    BACKUP: ['Entering BACKUP state', '=> VRRP Instance is no longer owning VRRP VIPs <=', '=> All VRRP group instances are now in BACKUP state <='],
    FAULT: ['Entering FAULT state', '=> VRRP Instance is no longer owning VRRP VIPs <=', '=> All VRRP group instances are now in FAULT state <='],
    STOP: ['Stopping', '=> VRRP Instance stopping <=', '=> All VRRP group instances are now stopping <='],
  };
  const t = texts[state];
  if (!t) return null;
  return { subject: `[${routerId}] ${what} - ${t[0]}`, body: kind === 'INSTANCE' ? t[1] : t[2] };
}

/** The mail for a VRRP state change under the global settings: none for FAULT with no_email_faults. */
export function vrrpAlertFor(g: Pick<GlobalConfig, 'router_id' | 'no_email_faults'>, kind: 'INSTANCE' | 'GROUP', name: string, state: string): AlertText | null {
  if (state === 'FAULT' && g.no_email_faults) return null;
  return vrrpAlertText(g.router_id, kind, name, state);
}

/** keepalived's real-server alert: "[router] Realserver RS of virtual server VS - UP". */
export function realServerAlertText(routerId: string, virtualServer: string, realServer: string, up: boolean, detail: string): AlertText {
  return {
    subject: `[${routerId}] Realserver ${realServer} of virtual server ${virtualServer} - ${up ? 'UP' : 'DOWN'}`,
    body: `=> ${detail} <=`,
  };
}

/** keepalived's virtual-server quorum alert. */
export function virtualServerAlertText(routerId: string, virtualServer: string, up: boolean, quorum: number, hysteresis: number, weightSum: number): AlertText {
  return {
    subject: `[${routerId}] Virtualserver ${virtualServer} - ${up ? 'UP' : 'DOWN'}`,
    body: `=> ${up ? 'Gained quorum' : 'Lost quorum'} ${quorum}+${hysteresis} <= ${weightSum} <=`,
  };
}

export interface MailerCounters {
  /** Accepted by the SMTP server. */
  sent: number;
  /** Refused, timed out or unreachable. */
  failed: number;
  /** Not sent because the queue was full (the oldest waiting mail is dropped). */
  dropped: number;
}

export interface MailerOptions {
  /** The current global settings (read at send time, so a reload applies to queued mails). */
  global: () => GlobalConfig;
  log: Logger;
  /** Replaceable in tests. */
  send?: (mail: Mail, opts: SendOptions) => Promise<void>;
  /** Waiting mails beyond this drop the oldest. */
  maxQueue?: number;
}

export class Mailer {
  readonly counters: MailerCounters = { sent: 0, failed: 0, dropped: 0 };
  readonly #opts: MailerOptions;
  readonly #queue: { text: AlertText; date: Date }[] = [];
  #running: Promise<void> | undefined;

  constructor(opts: MailerOptions) {
    this.#opts = opts;
  }

  /** Whether mail is configured at all (recipients and a server). */
  get enabled(): boolean {
    const g = this.#opts.global();
    return g.notification_email.length > 0 && g.smtp !== null;
  }

  /** Mails waiting or in flight. */
  get pending(): number {
    return this.#queue.length + (this.#running ? 1 : 0);
  }

  /** Queues a mail; returns at once. Does nothing when mail is not configured. */
  enqueue(text: AlertText): void {
    if (!this.enabled) return;
    const max = this.#opts.maxQueue ?? 100;
    if (this.#queue.length >= max) {
      this.#queue.shift();
      this.counters.dropped++;
      this.#opts.log.warn({ max }, 'alert mail queue full; dropped the oldest mail');
    }
    this.#queue.push({ text, date: new Date() });
    this.#kick();
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = this.#drainQueue().finally(() => {
      this.#running = undefined;
      // A mail queued between the loop's last look and here still goes out.
      if (this.#queue.length > 0) this.#kick();
    });
  }

  async #drainQueue(): Promise<void> {
    let item: { text: AlertText; date: Date } | undefined;
    while ((item = this.#queue.shift())) {
      const g = this.#opts.global();
      if (g.smtp === null || g.notification_email.length === 0) continue;
      const mail: Mail = { from: g.notification_email_from, to: g.notification_email, subject: item.text.subject, body: item.text.body, date: item.date };
      const opts: SendOptions = { host: g.smtp.host, port: g.smtp.port, helo: g.smtp_helo_name, timeoutMs: g.smtp_connect_timeout * 1000 };
      try {
        await (this.#opts.send ?? sendMail)(mail, opts);
        this.counters.sent++;
        this.#opts.log.info({ subject: mail.subject, to: mail.to }, 'alert mail sent');
      } catch (err) {
        this.counters.failed++;
        this.#opts.log.warn({ subject: mail.subject, err: errorMessage(err) }, 'alert mail failed');
      }
    }
  }

  /** Resolves when the queue is empty, or after `timeoutMs` (daemon stop: a last "Stopping" mail). */
  async flush(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), timeoutMs); });
    while (this.#running) if ((await Promise.race([this.#running, deadline])) === 'timeout') break;
    clearTimeout(timer);
  }
}
