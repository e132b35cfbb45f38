import type { IpFamily } from './types.js';
import type { DropReason } from './drop.js';

/** One VRRP packet as a transport hands it up: IP-level facts plus the VRRP payload. */
export interface VrrpPacketIn {
  family: IpFamily;
  src: string;
  dst: string;
  ttl: number;
  ifindex: number;
  payload: Buffer;
  /**
   * When the packet reached this process (performance.now(), taken before any parsing), if the
   * transport knows: the down timer then counts from the arrival, not from the end of decoding.
   */
  receivedAt?: number;
}

/**
 * A VRRP socket bound to one interface and address family. Several instances share one transport
 * (demultiplexed by VRID above it). `send` never throws: failures are reported through onError so a
 * transient ENOBUFS cannot take an instance down.
 */
export interface VrrpTransport {
  readonly family: IpFamily;
  readonly ifindex: number;
  send(payload: Buffer, src: string, dst: string): void;
  /** Optional: build whatever `send` of this payload will need, without sending (the hub's warm-up). */
  prepare?(payload: Buffer, src: string, dst: string): void;
  /**
   * Optional: the bytes `send` would write for this payload and the descriptor it would write them
   * to, for the advert sender thread (native-sender.ts). Undefined: not possible on this transport.
   */
  frame?(payload: Buffer, src: string, dst: string): { fd: number; packet: Buffer } | undefined;
  /** `onMalformed` gets packets the transport could not even split into IP facts and payload. */
  onPacket(cb: (pkt: VrrpPacketIn) => void, onMalformed: (reason: DropReason) => void): void;
  onError(cb: (err: Error) => void): void;
  close(): void;
}
