/**
 * PING_CHECK (keepalived check_ping.c): one ICMP echo request (ICMPv6 for an IPv6 target) to
 * connect_ip; success = the matching echo reply arrives within connect_timeout.
 *
 * keepalived uses an unprivileged "ping socket" (SOCK_DGRAM/IPPROTO_ICMP, widening
 * net.ipv4.ping_group_range for that); keepalive-ts opens a raw ICMP socket (the raw-socket package,
 * CAP_NET_RAW, which the daemon has anyway) for each attempt, so no sysctl is touched. A raw socket
 * sees every ICMP packet of the host, hence each checker has its own random identifier and a
 * sequence number that grows per attempt, and only a reply from the target carrying both counts.
 *
 * - echo reply from connect_ip with our identifier and sequence = success;
 * - an ICMP error (destination unreachable, time exceeded) quoting our echo request = failure at
 *   once (keepalived: any non-reply ICMP on its socket fails the attempt);
 * - nothing within connect_timeout = failure.
 *
 * IPv4 uses the raw-socket package; IPv6 uses the addon's raw IPv6 socket (src/net/native.ts),
 * whose per-packet IPV6_PKTINFO can set the source address (Linux raw sockets ignore a sticky
 * IPV6_PKTINFO, and raw-socket cannot bind).
 *
 * bind_to sets the source address: for IPv4 the request is sent with its own IPv4 header
 * (IP_HDRINCL; the kernel fills id, length and checksum), for IPv6 in the packet's
 * IPV6_PKTINFO. connect_port has no meaning (the config loader refuses one that differs from
 * the real server's port).
 */
import { createRequire } from 'node:module';
import { isIPv4 } from 'node:net';
import type { PingCheck } from '../../config/types.js';
import { Raw6Socket } from '../../net/native.js';
import { canonicalIp, formatIp, internetChecksum, parseIp } from '../../util/inet.js';
import { timeoutMs, withDeadline, type CheckResult, type Checker, type CheckerOptions, type CheckTarget } from './types.js';

const require = createRequire(import.meta.url);

const ICMP_ECHO_REPLY = 0;
const ICMP_DEST_UNREACH = 3;
const ICMP_ECHO = 8;
const ICMP_TIME_EXCEEDED = 11;
const ICMP6_DEST_UNREACH = 1;
const ICMP6_TIME_EXCEEDED = 3;
const ICMP6_ECHO_REQUEST = 128;
const ICMP6_ECHO_REPLY = 129;

const IPPROTO_IP = 0;
const IP_HDRINCL = 3;
const IPPROTO_ICMPV6 = 58;
/** The addon's raw IPv6 socket wants an interface for multicast; the loopback one is harmless here. */
const LOOPBACK_IFINDEX = 1;

/** Bytes of payload after the 8-byte echo header. */
export const PING_PAYLOAD_BYTES = 56;

/**
 * An echo request: type, code 0, checksum, identifier, sequence, payload. The IPv4 checksum is
 * computed here; for ICMPv6 the kernel always computes it on raw sockets (it covers a pseudo
 * header only the kernel knows), so it is left 0.
 */
export function encodeEchoRequest(family: 4 | 6, id: number, seq: number, payload: Buffer = Buffer.alloc(PING_PAYLOAD_BYTES)): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b[0] = family === 4 ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
  b.writeUInt16BE(id & 0xffff, 4);
  b.writeUInt16BE(seq & 0xffff, 6);
  payload.copy(b, 8);
  if (family === 4) b.writeUInt16BE(internetChecksum(b), 2);
  return b;
}

/** The IPv4 header sent ahead of the request when bind_to is set (IP_HDRINCL). */
export function ipv4Header(src: string, dst: string, payloadLength: number): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payloadLength, 2);
  h[8] = 64;
  h[9] = 1; // ICMP
  parseIp(src, 4)?.copy(h, 12);
  parseIp(dst, 4)?.copy(h, 16);
  return h;
}

export type IcmpMessage =
  | { kind: 'reply'; id: number; seq: number }
  /** An ICMP error quoting an echo request we may have sent: `to` is that request's destination. */
  | { kind: 'error'; type: number; code: number; id: number; seq: number; to: string }
  | { kind: 'other' };

/**
 * Parses what a raw ICMP socket delivers: for IPv4 the whole packet (IPv4 header first), for
 * IPv6 the ICMPv6 message alone (Linux never hands the IPv6 header to raw sockets).
 */
export function parseIcmp(family: 4 | 6, buf: Buffer): IcmpMessage {
  let icmp = buf;
  if (family === 4) {
    if (buf.length < 20 || buf[0]! >> 4 !== 4) return { kind: 'other' };
    icmp = buf.subarray((buf[0]! & 0x0f) * 4);
  }
  if (icmp.length < 8) return { kind: 'other' };
  const type = icmp[0]!;
  const code = icmp[1]!;
  if ((family === 4 && type === ICMP_ECHO_REPLY) || (family === 6 && type === ICMP6_ECHO_REPLY)) {
    return { kind: 'reply', id: icmp.readUInt16BE(4), seq: icmp.readUInt16BE(6) };
  }
  const isError = family === 4
    ? type === ICMP_DEST_UNREACH || type === ICMP_TIME_EXCEEDED
    : type === ICMP6_DEST_UNREACH || type === ICMP6_TIME_EXCEEDED;
  if (!isError) return { kind: 'other' };
  const quoted = icmp.subarray(8);
  if (family === 4) {
    if (quoted.length < 20 || quoted[0]! >> 4 !== 4 || quoted[9] !== 1) return { kind: 'other' };
    const inner = quoted.subarray((quoted[0]! & 0x0f) * 4);
    if (inner.length < 8 || inner[0] !== ICMP_ECHO) return { kind: 'other' };
    return { kind: 'error', type, code, id: inner.readUInt16BE(4), seq: inner.readUInt16BE(6), to: formatIp(quoted.subarray(16, 20)) };
  }
  // IPv6 header (40 bytes, next header ICMPv6 = 58; extension headers are not followed).
  if (quoted.length < 48 || quoted[0]! >> 4 !== 6 || quoted[6] !== 58) return { kind: 'other' };
  const inner = quoted.subarray(40);
  if (inner[0] !== ICMP6_ECHO_REQUEST) return { kind: 'other' };
  return { kind: 'error', type, code, id: inner.readUInt16BE(4), seq: inner.readUInt16BE(6), to: formatIp(quoted.subarray(24, 40)) };
}

const ERROR_NAMES4: Record<number, string> = { [ICMP_DEST_UNREACH]: 'destination unreachable', [ICMP_TIME_EXCEEDED]: 'time exceeded' };
const ERROR_NAMES6: Record<number, string> = { [ICMP6_DEST_UNREACH]: 'destination unreachable', [ICMP6_TIME_EXCEEDED]: 'time exceeded' };

interface RawSocket {
  setOption(level: number, option: number, value: number | Buffer, length?: number): void;
  send(buf: Buffer, offset: number, length: number, address: string, cb: (err: Error | null) => void): void;
  on(ev: 'message', cb: (buf: Buffer, source: string) => void): void;
  on(ev: 'error' | 'close', cb: (err?: Error) => void): void;
  close(): void;
}
type RawModule = { createSocket(o: { addressFamily: number; protocol: number; bufferSize?: number }): RawSocket };

/**
 * raw-socket's wrap is only weakly held by its poll handle: while an attempt waits for a reply
 * nothing else may refer to the socket, so the open ones are kept here (see
 * test/netns/fixtures/vrrp-sender.ts for the failure this avoids).
 */
const openSockets = new Set<RawSocket>();

export function createPingChecker(cfg: PingCheck, target: CheckTarget, opts: CheckerOptions = {}): Checker {
  const ms = timeoutMs(cfg.connect_timeout);
  const family = target.family;
  const dst = canonicalIp(target.address, family) ?? target.address;
  const random = opts.random ?? Math.random;
  const id = Math.floor(random() * 0x10000) & 0xffff;
  let seq = Math.floor(random() * 0x10000) & 0xffff;
  const names = family === 4 ? ERROR_NAMES4 : ERROR_NAMES6;
  return {
    type: 'PING_CHECK',
    run: (signal) => withDeadline(signal, ms, (sig) => new Promise<CheckResult>((resolve) => {
      seq = (seq + 1) & 0xffff;
      const mySeq = seq;
      let settled = false;
      let close = (): void => undefined;
      const done = (r: CheckResult): void => {
        if (settled) return;
        settled = true;
        sig.removeEventListener('abort', onAbort);
        close();
        resolve(r);
      };
      const onAbort = (): void => done({ ok: false, detail: `no echo reply from ${dst}` });
      sig.addEventListener('abort', onAbort, { once: true });
      const onMessage = (buf: Buffer, source: string): void => {
        const msg = parseIcmp(family, buf);
        if (msg.kind === 'other' || msg.id !== id || msg.seq !== mySeq) return;
        if (msg.kind === 'reply') {
          if ((canonicalIp(source, family) ?? source) === dst) done({ ok: true, detail: `echo reply from ${dst} (seq ${mySeq})` });
          return;
        }
        if (msg.to === dst) done({ ok: false, detail: `${names[msg.type] ?? `ICMP type ${msg.type}`} (code ${msg.code}) from ${source} for ${dst}` });
      };
      const request = encodeEchoRequest(family, id, mySeq);
      try {
        if (family === 6) {
          const sock = Raw6Socket.open(
            { ifindex: LOOPBACK_IFINDEX, protocol: IPPROTO_ICMPV6, group: null, bindToDevice: false },
            (m) => onMessage(m.payload, m.src),
            (err) => done({ ok: false, detail: `ICMPv6 socket: ${err.message}` }),
          );
          close = () => sock.close();
          if (cfg.bind_to !== undefined && canonicalIp(cfg.bind_to, 6) === null) throw new Error(`bind_to ${cfg.bind_to} is not an IPv6 address`);
          sock.send(request, dst, cfg.bind_to, 0);
          return;
        }
        const raw = require('raw-socket') as RawModule;
        const sock = raw.createSocket({ addressFamily: 1, protocol: 1, bufferSize: 2048 });
        openSockets.add(sock);
        close = () => {
          openSockets.delete(sock);
          try { sock.close(); } catch { /* already closed */ }
        };
        sock.on('error', (err) => done({ ok: false, detail: `ICMP socket: ${err?.message ?? 'error'}` }));
        sock.on('message', onMessage);
        let packet = request;
        if (cfg.bind_to !== undefined) {
          if (!isIPv4(cfg.bind_to)) throw new Error(`bind_to ${cfg.bind_to} is not an IPv4 address`);
          sock.setOption(IPPROTO_IP, IP_HDRINCL, 1);
          packet = Buffer.concat([ipv4Header(cfg.bind_to, dst, request.length), request]);
        }
        sock.send(packet, 0, packet.length, dst, (err) => {
          if (err) done({ ok: false, detail: `send to ${dst}: ${(err as NodeJS.ErrnoException).code ?? err.message}` });
        });
      } catch (err) {
        done({ ok: false, detail: `ICMP${family === 6 ? 'v6' : ''} to ${dst}: ${err instanceof Error ? err.message : String(err)}` });
      }
    })),
  };
}
