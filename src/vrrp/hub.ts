/**
 * Shares one VRRP socket per (interface, address family) between every instance on it, as keepalived
 * does, and demultiplexes received adverts by VRID. Structural checks (decode, checksum, TTL) happen
 * here; drops that belong to no instance are counted per socket.
 */
import { decodeAdvert, encodeAdvert } from './packet.js';
import type { DropReason } from './drop.js';
import type { VrrpInstance } from './instance.js';
import type { VrrpPacketIn, VrrpTransport } from './transport.js';
import type { Advert, IpFamily } from './types.js';
import type { AdvertFrames } from '../net/native.js';

export interface HubMember {
  instance: VrrpInstance;
  vrid: number;
  family: IpFamily;
  ifname: string;
  ifindex: number;
  /** Source address of our adverts. */
  src: string;
  /** Where adverts go: the multicast group, or each unicast peer. */
  destinations: string[];
  v3ChecksumAsV2: boolean;
  /** unicast_peer mode: adverts go to (and come from) configured peers, not the group. */
  unicast: boolean;
  /** The last advert encoded for this member, per destination (see VrrpHub.send). */
  encoded?: { advert: Advert; src: string; v3ChecksumAsV2: boolean; payloads: Map<string, Buffer> };
}

function sameAdvert(a: Advert, b: Advert): boolean {
  if (a.version !== b.version || a.vrid !== b.vrid || a.priority !== b.priority || a.advertIntCs !== b.advertIntCs) return false;
  if (a.authType !== b.authType) return false;
  if ((a.authData === undefined) !== (b.authData === undefined) || (a.authData && b.authData && !a.authData.equals(b.authData))) return false;
  if (a.addresses.length !== b.addresses.length) return false;
  for (let i = 0; i < a.addresses.length; i++) if (a.addresses[i] !== b.addresses[i]) return false;
  return true;
}

export type TransportFactory = (ifname: string, ifindex: number, family: IpFamily, groups: string[]) => VrrpTransport;

interface Socket {
  key: string;
  transport: VrrpTransport;
  members: Map<number, HubMember>;
  drops: Partial<Record<DropReason, number>>;
}

export class VrrpHub {
  readonly #sockets = new Map<string, Socket>();

  constructor(
    private readonly factory: TransportFactory,
    private readonly onError: (err: Error, where: string) => void,
  ) {}

  /** Registers an instance; opens the shared socket for its interface and family on first use. */
  add(m: HubMember, groups: string[]): void {
    const key = `${m.ifname}/v${m.family}`;
    let sock = this.#sockets.get(key);
    if (!sock) {
      const transport = this.factory(m.ifname, m.ifindex, m.family, groups);
      const s: Socket = { key, transport, members: new Map(), drops: {} };
      transport.onPacket((pkt) => this.#receive(s, pkt), (reason) => this.#count(s, reason));
      transport.onError((err) => this.onError(err, key));
      this.#sockets.set(key, s);
      sock = s;
    }
    sock.members.set(m.vrid, m);
  }

  remove(m: HubMember): void {
    const key = `${m.ifname}/v${m.family}`;
    const sock = this.#sockets.get(key);
    if (!sock || sock.members.get(m.vrid) !== m) return;
    sock.members.delete(m.vrid);
    if (sock.members.size === 0) {
      sock.transport.close();
      this.#sockets.delete(key);
    }
  }

  /**
   * Sends one advert of `m` to each of its destinations. A master sends the same advert every
   * interval: it is encoded once and reused until something in it (or the member) changes.
   */
  send(m: HubMember, advert: Advert): void {
    const sock = this.#sockets.get(`${m.ifname}/v${m.family}`);
    if (!sock) return;
    const payloads = this.#payloads(m, advert);
    for (const dst of m.destinations) sock.transport.send(payloads.get(dst)!, m.src, dst);
  }

  /** Encodes (and lets the transport prepare) `advert` without sending it: the first send is then as quick as the next. */
  prepare(m: HubMember, advert: Advert): void {
    const sock = this.#sockets.get(`${m.ifname}/v${m.family}`);
    let payloads: Map<string, Buffer>;
    try {
      payloads = this.#payloads(m, advert);
    } catch {
      // Only a head start: an advert that cannot be encoded yet (no source address of its family
      // so far) is reported by send(), where it matters.
      return;
    }
    for (const dst of m.destinations) sock?.transport.prepare?.(payloads.get(dst)!, m.src, dst);
  }

  /**
   * What send(m, advert) would write, for the advert sender thread: the packets per destination and
   * the socket they go out on. Undefined when the transport cannot hand them over (IPv6, tests).
   */
  frames(m: HubMember, advert: Advert): AdvertFrames | undefined {
    const sock = this.#sockets.get(`${m.ifname}/v${m.family}`);
    if (!sock?.transport.frame) return undefined;
    const payloads = this.#payloads(m, advert);
    const packets: Buffer[] = [];
    let fd = -1;
    for (const dst of m.destinations) {
      const f = sock.transport.frame(payloads.get(dst)!, m.src, dst);
      if (!f) return undefined;
      fd = f.fd;
      packets.push(f.packet);
    }
    return { fd, ifindex: m.ifindex, vrid: m.vrid, packets, dsts: [...m.destinations] };
  }

  #payloads(m: HubMember, advert: Advert): Map<string, Buffer> {
    const e = m.encoded;
    if (e && e.src === m.src && e.v3ChecksumAsV2 === m.v3ChecksumAsV2 && sameAdvert(e.advert, advert) && m.destinations.every((d) => e.payloads.has(d))) return e.payloads;
    const payloads = new Map<string, Buffer>();
    for (const dst of m.destinations) {
      // v3 checksums cover the pseudo-header, so each destination gets its own encoding.
      payloads.set(dst, encodeAdvert(advert, { family: m.family, src: m.src, dst, v3ChecksumAsV2: m.v3ChecksumAsV2 }));
    }
    m.encoded = { advert, src: m.src, v3ChecksumAsV2: m.v3ChecksumAsV2, payloads };
    return payloads;
  }

  /** Drops that no instance could be blamed for, per socket ("eth0/v4"). */
  socketDrops(): Record<string, Partial<Record<DropReason, number>>> {
    return Object.fromEntries([...this.#sockets.values()].map((s) => [s.key, { ...s.drops }]));
  }

  #count(s: Socket, reason: DropReason): void {
    s.drops[reason] = (s.drops[reason] ?? 0) + 1;
  }

  #receive(s: Socket, pkt: VrrpPacketIn): void {
    // The VRID byte sits at offset 1 in both versions; peek it to know whose checksum rules apply.
    const member = pkt.payload.length >= 2 ? s.members.get(pkt.payload[1]!) : undefined;
    // keepalived does not insist on TTL 255 for unicast peers: a routed path may lower it.
    const ttl = member?.unicast ? 255 : pkt.ttl;
    const decoded = decodeAdvert(pkt.payload, { family: pkt.family, src: pkt.src, dst: pkt.dst, ttl, v3ChecksumAsV2: member?.v3ChecksumAsV2 ?? false });
    if (!decoded.ok) {
      if (member) member.instance.countDrop(decoded.reason);
      else this.#count(s, decoded.reason);
      return;
    }
    if (!member) {
      this.#count(s, 'wrong_vrid');
      return;
    }
    member.instance.receive({ ...decoded.advert, family: pkt.family, source: pkt.src, ttl: pkt.ttl, ifindex: pkt.ifindex }, pkt.receivedAt);
  }

  close(): void {
    for (const s of this.#sockets.values()) s.transport.close();
    this.#sockets.clear();
  }
}
