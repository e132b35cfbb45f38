/**
 * rtnetlink access for links and addresses, over the `netlink` package. Never spawns `ip`:
 * the daemon must keep working when the interface is flapping and must learn about changes by
 * kernel notification (RTNLGRP_LINK / IPV4_IFADDR / IPV6_IFADDR), not by polling.
 */
import { EventEmitter } from 'node:events';
import { getSystemErrorName } from 'node:util';
import { AttrStream, createRtNetlink, parseError, rt, type RtNetlinkSocket, type NetlinkMessage } from 'netlink';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { ipv4ToBuffer, ipv4ToString, ipv6ToBuffer, ipv6ToString, macToString } from './frames.js';

const AF_INET = 2;
const AF_INET6 = 10;
const NLMSG_ERROR = 2;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const RT_TABLE_UNSPEC = 0;
const RTN_UNICAST = 1;
const RT_SCOPE_LINK = 253;

export type Family = 4 | 6;

export interface LinkInfo {
  index: number;
  name: string;
  mac: string;
  /** Administratively up (IFF_UP) and operationally up (IFF_RUNNING: carrier, not dormant). */
  up: boolean;
  adminUp: boolean;
  carrier: boolean;
  mtu: number;
}

export interface AddressInfo {
  index: number;
  family: Family;
  address: string;
  prefix: number;
  label?: string;
  secondary: boolean;
  tentative: boolean;
  scope: number;
}

export interface LinkEvent {
  index: number;
  name: string;
  up: boolean;
  adminUp: boolean;
  carrier: boolean;
  /** The link itself was deleted (RTM_DELLINK). */
  removed: boolean;
}

export interface AddressEvent {
  index: number;
  family: Family;
  address: string;
  prefix: number;
  removed: boolean;
}

/** A route in one kernel table, as keepalive-ts adds them for BGP: a host route through a device. */
export interface HostRoute {
  family: Family;
  /** "10.99.0.10/32", "fd99::10/128" (canonical address). */
  dst: string;
  table: number;
  /** rtm_protocol, e.g. 200: what BIRD's kernel protocol learns. */
  protocol: number;
  /** Output interface (lo for announced VIPs). */
  ifindex: number;
}

export interface AddAddressOptions {
  /** IPv4 only: interface label (keepalived's `label`), must start with the interface name. */
  label?: string;
  /** IPv6 only: skip duplicate address detection (default true: a VIP must be usable at once). */
  noDad?: boolean;
}

/** Splits "addr/prefix" (prefix defaults to the full length) into normalized parts. */
export function parseCidr(cidr: string): { family: Family; address: string; prefix: number; bytes: Buffer } {
  const slash = cidr.indexOf('/');
  const addr = slash < 0 ? cidr : cidr.slice(0, slash);
  const family: Family = addr.includes(':') ? 6 : 4;
  let bytes: Buffer;
  try {
    bytes = family === 6 ? ipv6ToBuffer(addr) : ipv4ToBuffer(addr);
  } catch (err) {
    throw new KeepaliveError('E_NETLINK', `invalid address ${cidr}: ${errorMessage(err)}`, { cause: err });
  }
  const max = family === 6 ? 128 : 32;
  const prefixText = slash < 0 ? String(max) : cidr.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^[0-9]{1,3}$/.test(prefixText) || prefix > max) {
    throw new KeepaliveError('E_NETLINK', `invalid prefix length in ${cidr}`);
  }
  return { family, address: family === 6 ? ipv6ToString(bytes) : ipv4ToString(bytes), prefix, bytes };
}

function toLinkInfo(msg: rt.LinkMessage): LinkInfo {
  const flags = msg.data.flags ?? {};
  const adminUp = flags.up === true;
  return {
    index: msg.data.index ?? 0,
    name: msg.attrs.ifname ?? '',
    mac: msg.attrs.address && msg.attrs.address.length >= 6 ? macToString(msg.attrs.address) : '00:00:00:00:00:00',
    adminUp,
    // IFF_RUNNING mirrors RFC 2863 operstate UP, which requires carrier (and not dormant).
    up: adminUp && flags.running === true,
    carrier: msg.attrs.carrier !== undefined ? msg.attrs.carrier !== 0 : flags.lowerUp === true,
    mtu: msg.attrs.mtu ?? 0,
  };
}

function toAddressInfo(msg: rt.AddressMessage): AddressInfo | null {
  const family = msg.data.family === AF_INET ? 4 : msg.data.family === AF_INET6 ? 6 : null;
  // For IPv4, IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on p2p links).
  const raw = family === 4 ? (msg.attrs.local ?? msg.attrs.address) : msg.attrs.address;
  if (family === null || !raw) return null;
  // IFA_FLAGS (32-bit) supersedes the 8-bit ifa_flags when present.
  const flags = msg.attrs.flags ?? msg.data.flags ?? {};
  const info: AddressInfo = {
    index: msg.data.index ?? 0,
    family,
    address: family === 4 ? ipv4ToString(raw) : ipv6ToString(raw),
    prefix: msg.data.prefixlen ?? 0,
    secondary: flags.secondary === true,
    tentative: flags.tentative === true,
    scope: msg.data.scope ?? 0,
  };
  if (msg.attrs.label !== undefined) info.label = msg.attrs.label;
  return info;
}

/** rtm_protocol as a number, whether the netlink package gave the number or its enum name. */
function routeProtocolNumber(p: rt.Route['protocol']): number {
  if (typeof p === 'number') return p;
  if (typeof p === 'string') return (rt.RouteProtocol as unknown as Record<string, number>)[p] ?? -1;
  return 0;
}

function isLinkLocal(address: string): boolean {
  const b = ipv6ToBuffer(address);
  return b[0] === 0xfe && (b[1]! & 0xc0) === 0x80;
}

export interface RtnlWatcher {
  on(event: 'link', listener: (ev: LinkEvent) => void): this;
  on(event: 'address', listener: (ev: AddressEvent) => void): this;
  /** The kernel dropped notifications (receive buffer overrun) or the socket failed: resync. */
  on(event: 'error', listener: (err: KeepaliveError) => void): this;
  off(event: 'link' | 'address' | 'error', listener: (...args: any[]) => void): this;
  close(): void;
}

class Watcher extends EventEmitter implements RtnlWatcher {
  #sock: RtNetlinkSocket | undefined;
  readonly #onClose: () => void;

  constructor(onClose: () => void) {
    super();
    this.#onClose = onClose;
    const sock = createRtNetlink();
    this.#sock = sock;
    sock.addMembership(rt.MulticastGroups.LINK);
    sock.addMembership(rt.MulticastGroups.IPV4_IFADDR);
    sock.addMembership(rt.MulticastGroups.IPV6_IFADDR);
    // A watcher is a long-lived listener: keep the event loop alive until close(), like a server.
    sock.socket.ref(true);
    sock.socket.on('message', (msgs) => this.#onMessages(msgs));
    sock.socket.on('error', (err) => {
      this.emit('error', new KeepaliveError('E_NETLINK', `rtnetlink watch: ${errorMessage(err)}`, { cause: err }));
    });
  }

  #onMessages(msgs: NetlinkMessage[]): void {
    for (const m of msgs) {
      try {
        if (m.type === rt.MessageType.NEWLINK || m.type === rt.MessageType.DELLINK) {
          const info = toLinkInfo(rt.parseLinkMessage(m.data));
          const ev: LinkEvent = {
            index: info.index,
            name: info.name,
            up: info.up,
            adminUp: info.adminUp,
            carrier: info.carrier,
            removed: m.type === rt.MessageType.DELLINK,
          };
          this.emit('link', ev);
        } else if (m.type === rt.MessageType.NEWADDR || m.type === rt.MessageType.DELADDR) {
          const info = toAddressInfo(rt.parseAddressMessage(m.data));
          if (!info) continue;
          const ev: AddressEvent = {
            index: info.index,
            family: info.family,
            address: info.address,
            prefix: info.prefix,
            removed: m.type === rt.MessageType.DELADDR,
          };
          this.emit('address', ev);
        }
      } catch (err) {
        // One malformed notification must not stop the stream; surface it for a resync.
        this.emit('error', new KeepaliveError('E_NETLINK', `bad rtnetlink notification: ${errorMessage(err)}`, { cause: err }));
      }
    }
  }

  close(): void {
    const sock = this.#sock;
    if (!sock) return;
    this.#sock = undefined;
    sock.socket.close();
    this.#onClose();
  }
}

/** A request-side rtnetlink socket. */
export class Rtnl {
  #sock: RtNetlinkSocket | undefined;
  #watchers = new Set<Watcher>();
  // The netlink package matches replies by sequence number but interleaves multipart dumps of
  // concurrent requests on one socket ("Multipart message not terminated properly", EBUSY), so
  // requests go out one at a time.
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(sock: RtNetlinkSocket) {
    this.#sock = sock;
  }

  static open(): Rtnl {
    try {
      return new Rtnl(createRtNetlink());
    } catch (err) {
      throw new KeepaliveError('E_NETLINK', `cannot open rtnetlink socket: ${errorMessage(err)}`, { cause: err });
    }
  }

  #socket(): RtNetlinkSocket {
    if (!this.#sock) throw new KeepaliveError('E_CLOSED', 'rtnetlink socket is closed');
    return this.#sock;
  }

  #wrap<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => this.#attempt(what, fn));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #attempt<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof KeepaliveError) throw err;
      throw new KeepaliveError('E_NETLINK', `${what}: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** Looks a link up by name or index; rejects with E_NETLINK if it does not exist. */
  getLink(nameOrIndex: string | number): Promise<LinkInfo> {
    const sock = this.#socket();
    return this.#wrap(`get link ${nameOrIndex}`, async () => {
      const msgs =
        typeof nameOrIndex === 'number'
          ? await sock.getLink({ index: nameOrIndex })
          : await sock.getLink({}, { ifname: nameOrIndex });
      const link = msgs[0];
      if (!link) throw new Error('no such link');
      return toLinkInfo(link);
    });
  }

  listLinks(): Promise<LinkInfo[]> {
    const sock = this.#socket();
    return this.#wrap('list links', async () => (await sock.getLinks()).map(toLinkInfo));
  }

  listAddresses(ifindex?: number, family?: Family): Promise<AddressInfo[]> {
    const sock = this.#socket();
    return this.#wrap('list addresses', async () => {
      const data = family === undefined ? {} : { family: family === 4 ? AF_INET : AF_INET6 };
      const out: AddressInfo[] = [];
      for (const msg of await sock.getAddresses(data)) {
        const info = toAddressInfo(msg);
        if (info && (ifindex === undefined || info.index === ifindex) && (family === undefined || info.family === family)) {
          out.push(info);
        }
      }
      return out;
    });
  }

  /**
   * Sends one address request and returns the errno name it was rejected with (null on ACK).
   * The library's own error path only offers a message string, so the ACK is parsed here.
   */
  async #addressRequest(type: number, flags: number, msg: rt.AddressMessage): Promise<string | null> {
    const stream = new AttrStream();
    rt.formatAddressMessage(msg, stream);
    return this.#ackRequest(type, flags, stream);
  }

  async #ackRequest(type: number, flags: number, stream: AttrStream): Promise<string | null> {
    const sock = this.#socket();
    const [reply] = await sock.socket.request(type, stream.bufs, { flags, checkError: false });
    const ack = reply.find((m) => m.type === NLMSG_ERROR);
    if (!ack) return null;
    const { errno } = parseError(ack.data, ack.flags);
    if (errno === 0) return null;
    const neg = errno < 0 ? errno : -errno;
    try {
      return getSystemErrorName(neg);
    } catch {
      return `errno ${-neg}`;
    }
  }

  #addressMessage(ifindex: number, cidr: string, opts: AddAddressOptions = {}): rt.AddressMessage {
    const { family, prefix, bytes } = parseCidr(cidr);
    const attrs: rt.AddressAttrs = { address: bytes };
    if (family === 4) {
      attrs.local = bytes;
      if (opts.label !== undefined) attrs.label = opts.label;
    } else if (opts.noDad !== false) {
      attrs.flags = { nodad: true };
    }
    return {
      kind: 'address',
      data: { family: family === 4 ? AF_INET : AF_INET6, prefixlen: prefix, index: ifindex, scope: 0 },
      attrs,
    };
  }

  /** Adds `cidr` to the interface. Adding an address that is already there is not an error. */
  addAddress(ifindex: number, cidr: string, opts?: AddAddressOptions): Promise<void> {
    const msg = this.#addressMessage(ifindex, cidr, opts);
    return this.#wrap(`add ${cidr} on ifindex ${ifindex}`, async () => {
      const err = await this.#addressRequest(rt.MessageType.NEWADDR, NLM_F_CREATE | NLM_F_EXCL, msg);
      if (err !== null && err !== 'EEXIST') throw new Error(`rejected: ${err}`);
    });
  }

  /** Removes `cidr` from the interface. Removing an address that is not there is not an error. */
  deleteAddress(ifindex: number, cidr: string): Promise<void> {
    const msg = this.#addressMessage(ifindex, cidr);
    return this.#wrap(`delete ${cidr} on ifindex ${ifindex}`, async () => {
      const err = await this.#addressRequest(rt.MessageType.DELADDR, 0, msg);
      if (err !== null && err !== 'EADDRNOTAVAIL' && err !== 'ESRCH') throw new Error(`rejected: ${err}`);
    });
  }

  #routeMessage(r: HostRoute): rt.RouteMessage {
    const { family, prefix, bytes } = parseCidr(r.dst);
    if (family !== r.family) throw new KeepaliveError('E_NETLINK', `route ${r.dst} is not IPv${r.family}`);
    return {
      kind: 'route',
      data: {
        family: family === 4 ? AF_INET : AF_INET6,
        dstLen: prefix,
        // Tables above 255 only fit in RTA_TABLE; the header then says UNSPEC, as iproute2 does.
        table: r.table < 256 ? r.table : RT_TABLE_UNSPEC,
        protocol: r.protocol,
        scope: RT_SCOPE_LINK,
        type: RTN_UNICAST,
      },
      attrs: { dst: bytes, oif: r.ifindex, table: r.table },
    };
  }

  /** Adds a host route (`ip route add DST dev IF table T proto P`). Adding one that exists is not an error. */
  addRoute(r: HostRoute): Promise<void> {
    const msg = this.#routeMessage(r);
    return this.#wrap(`add route ${r.dst} table ${r.table}`, async () => {
      const stream = new AttrStream();
      rt.formatRouteMessage(msg, stream);
      const err = await this.#ackRequest(rt.MessageType.NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, stream);
      if (err !== null && err !== 'EEXIST') throw new Error(`rejected: ${err}`);
    });
  }

  /** Deletes a host route. Deleting one that is not there is not an error. */
  deleteRoute(r: HostRoute): Promise<void> {
    const msg = this.#routeMessage(r);
    return this.#wrap(`delete route ${r.dst} table ${r.table}`, async () => {
      const stream = new AttrStream();
      rt.formatRouteMessage(msg, stream);
      const err = await this.#ackRequest(rt.MessageType.DELROUTE, 0, stream);
      if (err !== null && err !== 'ESRCH' && err !== 'ENOENT') throw new Error(`rejected: ${err}`);
    });
  }

  /** Routes of one table (and protocol, when given), both families unless `family` is set. */
  listRoutes(filter: { table: number; protocol?: number; family?: Family }): Promise<HostRoute[]> {
    const sock = this.#socket();
    return this.#wrap(`list routes of table ${filter.table}`, async () => {
      const out: HostRoute[] = [];
      for (const family of filter.family === undefined ? ([4, 6] as const) : [filter.family]) {
        for (const msg of await sock.getRoutes({ family: family === 4 ? AF_INET : AF_INET6 })) {
          const table = msg.attrs.table ?? msg.data.table ?? 0;
          const protocol = routeProtocolNumber(msg.data.protocol);
          if (table !== filter.table || (filter.protocol !== undefined && protocol !== filter.protocol)) continue;
          const dst = msg.attrs.dst ? (family === 4 ? ipv4ToString(msg.attrs.dst) : ipv6ToString(msg.attrs.dst)) : family === 4 ? '0.0.0.0' : '::';
          out.push({ family, dst: `${dst}/${msg.data.dstLen ?? 0}`, table, protocol, ifindex: msg.attrs.oif ?? 0 });
        }
      }
      return out;
    });
  }

  /** The interface the kernel would send a packet to `address` through (`ip route get`), or null. */
  outputInterface(address: string): Promise<number | null> {
    const sock = this.#socket();
    const { family, bytes } = parseCidr(address);
    return this.#wrap(`route lookup of ${address}`, async () => {
      try {
        const [reply] = await sock.getRoute({ family: family === 4 ? AF_INET : AF_INET6, dstLen: family === 4 ? 32 : 128 }, { dst: bytes });
        return reply?.attrs.oif ?? null;
      } catch {
        return null; // unreachable
      }
    });
  }

  /**
   * The address VRRP adverts are sourced from: for IPv4 the first primary address that is not one
   * of `exclude` (the VIPs), for IPv6 the link-local address. Null if there is none.
   */
  async primaryAddress(ifindex: number, family: Family, exclude: readonly string[] = []): Promise<string | null> {
    const skip = new Set(exclude.map((a) => parseCidr(a).address));
    const addrs = await this.listAddresses(ifindex, family);
    const pick =
      family === 4
        ? addrs.find((a) => !a.secondary && !skip.has(a.address)) ?? addrs.find((a) => !skip.has(a.address))
        : addrs.find((a) => isLinkLocal(a.address) && !a.tentative) ?? addrs.find((a) => isLinkLocal(a.address));
    return pick ? pick.address : null;
  }

  /** Subscribes to link and address notifications on a dedicated socket. Close it when done. */
  watch(): RtnlWatcher {
    this.#socket();
    let w: Watcher;
    try {
      w = new Watcher(() => this.#watchers.delete(w));
    } catch (err) {
      throw new KeepaliveError('E_NETLINK', `cannot subscribe to rtnetlink groups: ${errorMessage(err)}`, { cause: err });
    }
    this.#watchers.add(w);
    return w;
  }

  /** Closes the request socket and every watcher opened through it. Idempotent. */
  close(): void {
    for (const w of [...this.#watchers]) w.close();
    const sock = this.#sock;
    if (!sock) return;
    this.#sock = undefined;
    sock.socket.close();
  }
}
