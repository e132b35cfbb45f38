import { Raw6Socket, VRRP_PROTOCOL } from '../net/native.js';
import type { DropReason } from './drop.js';
import type { VrrpPacketIn, VrrpTransport } from './transport.js';

/**
 * IPv6 VRRP over the addon's raw IPv6 socket: Linux never hands the IPv6 header to a raw socket,
 * so hop limit and destination come from ancillary data (IPV6_HOPLIMIT, IPV6_PKTINFO), which the
 * raw-socket package cannot read.
 */
export class RawIpv6Transport implements VrrpTransport {
  readonly family = 6 as const;
  readonly #sock: Raw6Socket;
  #packetCb: (pkt: VrrpPacketIn) => void = () => undefined;
  #errorCb: (err: Error) => void = () => undefined;

  constructor(readonly ifindex: number, groups: string[]) {
    this.#sock = Raw6Socket.open(
      { ifindex, protocol: VRRP_PROTOCOL, group: groups[0] ?? null, bindToDevice: true },
      (msg) => this.#packetCb({ family: 6, src: msg.src, dst: msg.dst, ttl: msg.hopLimit, ifindex: msg.ifindex, payload: msg.payload, receivedAt: performance.now() }),
      (err) => this.#errorCb(err),
    );
  }

  send(payload: Buffer, src: string, dst: string): void {
    try {
      this.#sock.send(payload, dst, src);
    } catch (err) {
      this.#errorCb(err as Error);
    }
  }

  onPacket(cb: (pkt: VrrpPacketIn) => void, _onMalformed: (reason: DropReason) => void): void {
    // The kernel strips and validates the IPv6 header, so nothing arrives malformed at this layer.
    this.#packetCb = cb;
  }

  onError(cb: (err: Error) => void): void { this.#errorCb = cb; }

  close(): void { this.#sock.close(); }
}
