import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import { isIPv4 } from 'node:net';
import { KeepaliveError } from '../util/errors.js';
import type { VrrpPacketIn, VrrpTransport } from './transport.js';
import { parseIpv4Packet } from './packet.js';
import type { DropReason } from './drop.js';
import { Raw4SendSocket } from '../net/native.js';

const require = createRequire(import.meta.url);

export const VRRP_PROTO = 112;
const SOL_SOCKET = 1;
const SO_BINDTODEVICE = 25;
const IPPROTO_IP = 0;
const IP_ADD_MEMBERSHIP = 35;
/** keepalived sends VRRP with IPTOS_PREC_INTERNETCONTROL. */
const TOS_INTERNETCONTROL = 0xc0;

function ip4Bytes(addr: string): Buffer {
  if (!isIPv4(addr)) throw new KeepaliveError('E_SOCKET', `not an IPv4 address: ${addr}`);
  return Buffer.from(addr.split('.').map(Number));
}

/** struct ip_mreqn { in_addr multiaddr; in_addr address; int ifindex; } in host byte order for the int. */
export function ipMreqn(group: string, ifindex: number): Buffer {
  const b = Buffer.alloc(12);
  ip4Bytes(group).copy(b, 0);
  if (endianness() === 'LE') b.writeInt32LE(ifindex, 8); else b.writeInt32BE(ifindex, 8);
  return b;
}

/**
 * The IPv4 header we send with IP_HDRINCL, as keepalived does, so the source address is exactly the
 * configured one (a VIP on the same interface must never become the advert's source) and TTL is 255.
 * The kernel fills in total length, id and header checksum.
 */
export function buildIpv4Header(src: string, dst: string, payloadLength: number): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h[1] = TOS_INTERNETCONTROL;
  h.writeUInt16BE(20 + payloadLength, 2);
  h[8] = 255;
  h[9] = VRRP_PROTO;
  ip4Bytes(src).copy(h, 12);
  ip4Bytes(dst).copy(h, 16);
  return h;
}

interface RawSocket {
  setOption(level: number, option: number, value: number | Buffer, length?: number): void;
  on(ev: 'message', cb: (buf: Buffer, source: string) => void): void;
  on(ev: 'error' | 'close', cb: (err?: Error) => void): void;
  close(): void;
}

/**
 * IPv4 VRRP on one interface: received through a raw socket of the raw-socket package (joined to
 * the group, IP header included so TTL is visible), sent through the addon's send-only raw socket,
 * whose sendto() runs immediately instead of waiting a loop turn for raw-socket's send queue (that
 * wait showed up as ~2 ms of extra takeover latency).
 */
export class RawIpv4Transport implements VrrpTransport {
  readonly family = 4 as const;
  private readonly sock: RawSocket;
  private readonly out: Raw4SendSocket;
  private packetCb: (pkt: VrrpPacketIn) => void = () => undefined;
  private malformedCb: (reason: DropReason) => void = () => undefined;
  private errorCb: (err: Error) => void = () => undefined;
  private closed = false;

  constructor(readonly ifname: string, readonly ifindex: number, groups: string[]) {
    let raw: { createSocket(o: object): RawSocket };
    try {
      raw = require('raw-socket') as typeof raw;
    } catch (err) {
      throw new KeepaliveError('E_NATIVE', 'raw-socket native module is not built (run npm ci)', { cause: err });
    }
    // Every socket opened before a failure is closed again: a failed open leaks no descriptor.
    let sock: RawSocket | undefined;
    try {
      sock = raw.createSocket({ addressFamily: 1, protocol: VRRP_PROTO, bufferSize: 65535 });
      sock.setOption(SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${ifname}\0`), ifname.length + 1);
      for (const g of groups) {
        const m = ipMreqn(g, ifindex);
        sock.setOption(IPPROTO_IP, IP_ADD_MEMBERSHIP, m, m.length);
      }
      this.out = Raw4SendSocket.open(ifindex);
    } catch (err) {
      try { sock?.close(); } catch { /* not open */ }
      if (err instanceof KeepaliveError) throw err;
      throw new KeepaliveError('E_SOCKET', `cannot open VRRP IPv4 socket on ${ifname}: ${(err as Error).message}`, { cause: err });
    }
    this.sock = sock;
    this.sock.on('message', (buf) => {
      const receivedAt = performance.now();
      // raw-socket reuses its receive buffer: copy the payload before it escapes this callback.
      const ip = parseIpv4Packet(buf);
      if (!ip.ok) this.malformedCb(ip.reason);
      else this.packetCb({ family: 4, ifindex: this.ifindex, src: ip.src, dst: ip.dst, ttl: ip.ttl, payload: Buffer.from(ip.payload), receivedAt });
    });
    this.sock.on('error', (err) => this.errorCb(err ?? new Error('raw socket error')));
  }

  send(payload: Buffer, src: string, dst: string): void {
    if (this.closed) return;
    try {
      this.out.send(this.#packet(payload, src, dst), dst);
    } catch (err) {
      this.errorCb(err as Error);
    }
  }

  prepare(payload: Buffer, src: string, dst: string): void {
    if (!this.closed) this.#packet(payload, src, dst);
  }

  frame(payload: Buffer, src: string, dst: string): { fd: number; packet: Buffer } | undefined {
    if (this.closed || this.out.fd < 0) return undefined;
    return { fd: this.out.fd, packet: this.#packet(payload, src, dst) };
  }

  /** Packets (IPv4 header + payload) by payload: the hub hands the same payload Buffer while the advert is unchanged. */
  readonly #packets = new WeakMap<Buffer, { src: string; dst: string; packet: Buffer }>();

  #packet(payload: Buffer, src: string, dst: string): Buffer {
    const hit = this.#packets.get(payload);
    if (hit && hit.src === src && hit.dst === dst) return hit.packet;
    const packet = Buffer.concat([buildIpv4Header(src, dst, payload.length), payload]);
    this.#packets.set(payload, { src, dst, packet });
    return packet;
  }

  onPacket(cb: (pkt: VrrpPacketIn) => void, onMalformed: (reason: DropReason) => void): void {
    this.packetCb = cb;
    this.malformedCb = onMalformed;
  }
  onError(cb: (err: Error) => void): void { this.errorCb = cb; }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try { this.sock.close(); } catch { /* already closed */ }
    this.out.close();
  }
}
