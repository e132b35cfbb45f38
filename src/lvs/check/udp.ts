/**
 * UDP_CHECK (keepalived check_udp.c): a connected UDP socket (from bind_to when set) sends one
 * datagram to the target, then
 *
 * - require_reply = true: success = any datagram comes back within connect_timeout (its content
 *   is not checked: keepalive-ts has no reply pattern, like keepalived's bare `require_reply`);
 * - require_reply = false: success = no ICMP error (port/host unreachable, surfaced by Linux
 *   as ECONNREFUSED / EHOSTUNREACH on the connected socket) within connect_timeout; a reply
 *   ends the wait early with success.
 *
 * Payload: `payload` is sent as UTF-8 text (keepalived's `payload` is a hex string; the
 * keepalive-ts key is text, e.g. "ping"). With payload = "" one zero byte is sent (keepalived
 * sends a filler buffer when no payload is configured; a one-byte datagram is the smallest
 * that every UDP stack hands to the application).
 */
import { createSocket, type Socket } from 'node:dgram';
import type { UdpCheck } from '../../config/types.js';
import { formatTarget, localFailure, sendConnected, timeoutMs, withDeadline, type CheckResult, type Checker, type CheckTarget } from './types.js';

export function createUdpChecker(cfg: UdpCheck, target: CheckTarget): Checker {
  const ms = timeoutMs(cfg.connect_timeout);
  const where = formatTarget(target);
  const payload = cfg.payload === '' ? Buffer.from([0]) : Buffer.from(cfg.payload, 'utf8');
  return {
    type: 'UDP_CHECK',
    run: (signal) => withDeadline(signal, ms, (sig) => new Promise<CheckResult>((resolve) => {
      let settled = false;
      const sock: Socket = createSocket({ type: target.family === 6 ? 'udp6' : 'udp4' });
      const done = (r: CheckResult): void => {
        if (settled) return;
        settled = true;
        sig.removeEventListener('abort', onDeadline);
        try { sock.close(); } catch { /* already closed */ }
        resolve(r);
      };
      // The deadline (or an abort, which withDeadline reports as such) ends the wait.
      const onDeadline = (): void => done(cfg.require_reply
        ? { ok: false, detail: `no reply from ${where}` }
        : { ok: true, detail: `no ICMP error from ${where}` });
      sig.addEventListener('abort', onDeadline, { once: true });
      sock.on('error', (err: NodeJS.ErrnoException) => done(localFailure(err.code, `${where}: ${err.code ?? err.message}`)));
      sock.on('message', (msg) => done({ ok: true, detail: `reply of ${msg.length} bytes from ${where}` }));
      sendConnected(sock, target, cfg.bind_to, payload, () => settled, (detail, code) => done(localFailure(code, detail)));
    })),
  };
}
