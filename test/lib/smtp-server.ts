// A real SMTP server for alert-mail tests: Debian's python3-aiosmtpd inside a lab host, saving
// every message it accepts into a Maildir (aiosmtpd.handlers.Mailbox), which the test reads back.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab, LabHost, LabProcess } from './netns.js';
import { waitUntilListening } from './servers.js';

export interface ReceivedMail {
  /** Header name (lower case) -> value (continuation lines joined). */
  headers: Record<string, string>;
  body: string;
  raw: string;
}

export interface SmtpSink {
  proc: LabProcess;
  address: string;
  port: number;
  /** Every message received so far, oldest first. */
  mails(): Promise<ReceivedMail[]>;
}

export function parseMail(raw: string): ReceivedMail {
  const text = raw.replace(/\r\n/g, '\n');
  const split = text.indexOf('\n\n');
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? '' : text.slice(split + 2);
  const headers: Record<string, string> = {};
  let last: string | undefined;
  for (const line of head.split('\n')) {
    if (/^\s/.test(line) && last) headers[last] += ` ${line.trim()}`;
    else {
      const m = /^([^:]+):\s*(.*)$/.exec(line);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      headers[last] = m[2]!;
    }
  }
  return { headers, body, raw };
}

/** Starts aiosmtpd on host:port (the Debian package's, not a pyenv python's). */
export async function startSmtpSink(lab: Lab, host: LabHost, port = 2525): Promise<SmtpSink> {
  const dir = join(lab.tmpDir, `maildir-${host.name}-${port}`);
  // A complete Maildir: mailbox.Maildir only creates one when the directory does not exist at all.
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true });
  // -d logs each command received (">> b'HELO ...'") to stderr, i.e. proc.output().
  const proc = host.spawn(['/usr/bin/python3', '-m', 'aiosmtpd', '-n', '-d', '-l', `${host.ipv4}:${port}`, '-c', 'aiosmtpd.handlers.Mailbox', dir]);
  await waitUntilListening(host, port, proc, 10_000, `aiosmtpd on ${host.name}:${port}`);
  return {
    proc,
    address: host.ipv4!,
    port,
    async mails() {
      const out: Array<{ name: string; mail: ReceivedMail }> = [];
      for (const sub of ['new', 'cur']) {
        let names: string[] = [];
        try {
          names = await readdir(join(dir, sub));
        } catch {
          continue;
        }
        for (const name of names) out.push({ name, mail: parseMail(await readFile(join(dir, sub, name), 'utf8')) });
      }
      // Maildir names start with the delivery time in seconds; keep the server's order within one.
      return out.sort((x, y) => x.name.localeCompare(y.name, 'en', { numeric: true })).map((x) => x.mail);
    },
  };
}
