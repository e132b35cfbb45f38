import type { DropReason } from './drop.js';
import type { VrrpPacketIn, VrrpTransport } from './transport.js';
import type { IpFamily } from './types.js';

/**
 * An in-memory segment for tests of the shell and hub: every transport attached to it receives what
 * the others send (not its own packets, like IP_MULTICAST_LOOP off), with TTL 255.
 */
export class MemorySegment {
  readonly #ports = new Set<MemoryTransport>();
  /** Every packet put on the segment, for assertions. */
  readonly log: { src: string; dst: string; payload: Buffer }[] = [];

  attach(t: MemoryTransport): void { this.#ports.add(t); }
  detach(t: MemoryTransport): void { this.#ports.delete(t); }

  deliver(from: MemoryTransport, src: string, dst: string, payload: Buffer, ttl = 255): void {
    this.log.push({ src, dst, payload });
    for (const p of this.#ports) if (p !== from) p.receive({ family: p.family, src, dst, ttl, ifindex: p.ifindex, payload: Buffer.from(payload) });
  }

  /** Injects a packet as if from a foreign host (hostile-input tests). */
  inject(src: string, dst: string, payload: Buffer, ttl = 255): void {
    for (const p of this.#ports) p.receive({ family: p.family, src, dst, ttl, ifindex: p.ifindex, payload: Buffer.from(payload) });
  }
}

export class MemoryTransport implements VrrpTransport {
  #packet: (pkt: VrrpPacketIn) => void = () => undefined;
  #closed = false;

  constructor(private readonly segment: MemorySegment, readonly family: IpFamily, readonly ifindex = 1) {
    segment.attach(this);
  }

  send(payload: Buffer, src: string, dst: string): void {
    if (!this.#closed) this.segment.deliver(this, src, dst, payload);
  }

  receive(pkt: VrrpPacketIn): void {
    if (!this.#closed) this.#packet(pkt);
  }

  onPacket(cb: (pkt: VrrpPacketIn) => void, _onMalformed: (reason: DropReason) => void): void { this.#packet = cb; }
  onError(_cb: (err: Error) => void): void { /* memory never fails */ }

  close(): void {
    this.#closed = true;
    this.segment.detach(this);
  }
}
