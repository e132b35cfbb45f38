/**
 * DNS_CHECK (keepalived check_dns.c), over UDP: one query for `name` / `query_type`, class IN,
 * RD set, random id, sent from a connected socket (bind_to when set). As keepalived:
 *
 * - datagrams shorter than a header, with another id, or without the QR bit are ignored and
 *   the wait goes on;
 * - the first real reply decides: RCODE 0 (NOERROR) = success, any other RCODE = failure.
 *   The answer section is NOT required to be non-empty (keepalived does not look at ANCOUNT);
 * - no usable reply within connect_timeout (for the whole exchange, as keepalived passes the
 *   remaining time on from connect to send to receive) = failure; an ICMP error = failure.
 */
import { createSocket } from 'node:dgram';
import type { DnsCheck, DnsQueryType } from '../../config/types.js';
import { formatTarget, localFailure, sendConnected, timeoutMs, withDeadline, type CheckResult, type Checker, type CheckerOptions, type CheckTarget } from './types.js';

export const DNS_TYPE_CODES: Readonly<Record<DnsQueryType, number>> = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, RRSIG: 46, DNSKEY: 48,
};

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** Encodes the query as keepalived's dns_make_query(): header, QNAME, QTYPE, QCLASS IN. */
export function encodeDnsQuery(id: number, name: string, type: DnsQueryType): Buffer {
  const labels = name.split('.').filter((l) => l.length > 0);
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id & 0xffff, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // QDCOUNT
  parts.push(header);
  for (const label of labels) {
    const bytes = Buffer.from(label, 'ascii');
    if (bytes.length > 63) throw new RangeError(`DNS label longer than 63 bytes: ${label}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  const tail = Buffer.alloc(5);
  tail.writeUInt8(0, 0); // root label
  tail.writeUInt16BE(DNS_TYPE_CODES[type], 1);
  tail.writeUInt16BE(1, 3); // IN
  parts.push(tail);
  return Buffer.concat(parts);
}

export function createDnsChecker(cfg: DnsCheck, target: CheckTarget, opts: CheckerOptions = {}): Checker {
  const ms = timeoutMs(cfg.connect_timeout);
  const where = formatTarget(target);
  const random = opts.random ?? Math.random;
  return {
    type: 'DNS_CHECK',
    run: (signal) => withDeadline(signal, ms, (sig) => new Promise<CheckResult>((resolve) => {
      let settled = false;
      const id = Math.floor(random() * 0x10000) & 0xffff;
      let query: Buffer;
      try {
        query = encodeDnsQuery(id, cfg.name, cfg.query_type);
      } catch (err) {
        resolve({ ok: false, detail: err instanceof Error ? err.message : String(err) });
        return;
      }
      const sock = createSocket({ type: target.family === 6 ? 'udp6' : 'udp4' });
      const done = (r: CheckResult): void => {
        if (settled) return;
        settled = true;
        sig.removeEventListener('abort', onDeadline);
        try { sock.close(); } catch { /* already closed */ }
        resolve(r);
      };
      const onDeadline = (): void => done({ ok: false, detail: `no reply from ${where}` });
      sig.addEventListener('abort', onDeadline, { once: true });
      sock.on('error', (err: NodeJS.ErrnoException) => done(localFailure(err.code, `${where}: ${err.code ?? err.message}`)));
      sock.on('message', (msg: Buffer) => {
        if (msg.length < 12) return;
        if (msg.readUInt16BE(0) !== id) return;
        const flags = msg.readUInt16BE(2);
        if ((flags & 0x8000) === 0) return; // not a response
        const rcode = flags & 0x000f;
        const name = RCODE_NAMES[rcode] ?? `RCODE ${rcode}`;
        const answers = msg.readUInt16BE(6);
        done(rcode === 0
          ? { ok: true, detail: `${cfg.query_type} ${cfg.name}: NOERROR, ${answers} answer(s) from ${where}` }
          : { ok: false, detail: `${cfg.query_type} ${cfg.name}: ${name} from ${where}` });
      });
      sendConnected(sock, target, cfg.bind_to, query, () => settled, (detail, code) => done(localFailure(code, detail)));
    })),
  };
}
