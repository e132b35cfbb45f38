/**
 * rtnetlink access for links and addresses, over the `netlink` package. Never spawns `ip`:
 * the daemon must keep working when the interface is flapping and must learn about changes by
 * kernel notification (RTNLGRP_LINK / IPV4_IFADDR / IPV6_IFADDR), not by polling.
 */
import { EventEmitter } from 'node:events';
import { getSystemErrorName } from 'node:util';
// The package's parts we use, not its index: the index also loads its nl80211, WireGuard and
// generic-netlink code (~70 ms of start-up before the first advert).
import { createRtNetlink, type RtNetlinkSocket } from 'netlink/dist/rt/rt.js';
import * as rt from 'netlink/dist/rt/structs.js';
import { AttrStream, formatMessage, parseError, type NetlinkMessage } from 'netlink/dist/structs.js';
import { ROUTE_TYPE_CODE, RULE_ACTION_CODE, type AddressSpec, type RouteSpec, type RuleSpec } from './route-spec.js';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { ipv4ToBuffer, ipv4ToString, ipv6ToBuffer, ipv6ToString, macToString } from './frames.js';

const AF_INET = 2;
const AF_INET6 = 10;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_REPLACE = 0x100;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLM_F_APPEND = 0x800;
const RTNH_F_ONLINK = 4;
const FIB_RULE_INVERT = 2;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_MACVLAN_MODE = 1;
const IFLA_INET6_ADDR_GEN_MODE = 8;
const IN6_ADDR_GEN_MODE_NONE = 1;

/** macvlan modes (linux/if_link.h MACVLAN_MODE_*). */
export const MACVLAN_MODE = { private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 } as const;
export type MacvlanMode = keyof typeof MACVLAN_MODE;

/** What RTM_GETLINK says about a link beyond LinkInfo: its kind and lower device (macvlan, veth...). */
export interface LinkDetails extends LinkInfo {
  /** IFLA_INFO_KIND ("macvlan", "veth", "bridge"...); undefined for plain devices. */
  kind?: string;
  /** IFLA_LINK: the lower device's ifindex. */
  parentIndex?: number;
  /** For macvlans: the mode name. */
  macvlanMode?: MacvlanMode;
}

export interface MacvlanOptions {
  name: string;
  parentIndex: number;
  mac: string;
  mode: MacvlanMode;
  /** IFLA_GROUP copied from the base interface (keepalived does, so devgroup firewall rules keep matching). */
  group?: number;
}

/** One netlink attribute (type, payload), padded to 4 bytes. */
function nla(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

/** Splits a buffer of netlink attributes into type -> payload (first occurrence wins). */
function attrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4 || off + len > buf.length) break;
    if (!out.has(type)) out.set(type, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

function macBytes(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-f]{2}$/i.test(p))) throw new KeepaliveError('E_NETLINK', `invalid MAC address ${mac}`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

function addrBytes(address: string, family: Family): Buffer {
  return family === 6 ? ipv6ToBuffer(address) : ipv4ToBuffer(address);
}

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

function toLinkDetails(msg: rt.LinkMessage): LinkDetails {
  const d: LinkDetails = toLinkInfo(msg);
  const parent = msg.attrs.link;
  if (parent && parent.length >= 4) d.parentIndex = parent.readUInt32LE(0);
  const info = msg.attrs.linkinfo ? attrs(msg.attrs.linkinfo) : undefined;
  const kind = info?.get(IFLA_INFO_KIND);
  if (kind) d.kind = kind.toString('utf8').replace(/\0+$/, '');
  const data = info?.get(IFLA_INFO_DATA);
  const mode = data ? attrs(data).get(IFLA_MACVLAN_MODE) : undefined;
  if (d.kind === 'macvlan' && mode && mode.length >= 4) {
    const m = mode.readUInt32LE(0);
    const name = (Object.keys(MACVLAN_MODE) as MacvlanMode[]).find((k) => MACVLAN_MODE[k] === m);
    if (name) d.macvlanMode = name;
  }
  return d;
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
    return this.#ackRequest(type, flags, stream.bufs);
  }

  /** Sends one request and returns the errno name it was rejected with (null on ACK). */
  async #ackRequest(type: number, flags: number, bufs: Uint8Array[]): Promise<string | null> {
    const sock = this.#socket();
    const [reply] = await sock.socket.request(type, bufs, { flags, checkError: false });
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

  /**
   * The complete rtnetlink request addAddress sends (header included: REQUEST, ACK, CREATE, EXCL),
   * for a socket other than this one — the advert sender thread adds a takeover's VIPs with it
   * (native/vrrp_sender.c). Padded to 4 bytes, so requests can be concatenated into one datagram.
   */
  addAddressRequest(ifindex: number, cidr: string, opts?: AddAddressOptions, seq = 1): Buffer {
    const stream = new AttrStream();
    rt.formatAddressMessage(this.#addressMessage(ifindex, cidr, opts), stream);
    const msg = Buffer.concat(formatMessage({ type: rt.MessageType.NEWADDR, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, port: 0, data: stream.bufs }));
    return msg.length % 4 === 0 ? msg : Buffer.concat([msg, Buffer.alloc(4 - (msg.length % 4))]);
  }

  /** Removes `cidr` from the interface. Removing an address that is not there is not an error. */
  deleteAddress(ifindex: number, cidr: string): Promise<void> {
    const msg = this.#addressMessage(ifindex, cidr);
    return this.#wrap(`delete ${cidr} on ifindex ${ifindex}`, async () => {
      const err = await this.#addressRequest(rt.MessageType.DELADDR, 0, msg);
      if (err !== null && err !== 'EADDRNOTAVAIL' && err !== 'ESRCH') throw new Error(`rejected: ${err}`);
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

  // ---------------------------------------------------------------------------------------------
  // Links: macvlans for use_vmac

  /** Looks a link up with its kind, lower device and macvlan mode; null when there is no such link. */
  linkDetails(nameOrIndex: string | number): Promise<LinkDetails | null> {
    const sock = this.#socket();
    return this.#wrap(`get link ${nameOrIndex}`, async () => {
      let msgs: rt.LinkMessage[];
      try {
        msgs = typeof nameOrIndex === 'number' ? await sock.getLink({ index: nameOrIndex }) : await sock.getLink({}, { ifname: nameOrIndex });
      } catch (err) {
        if (/ENODEV|No such device/i.test(errorMessage(err))) return null;
        throw err;
      }
      const msg = msgs[0];
      return msg ? toLinkDetails(msg) : null;
    });
  }

  /** Every link with its kind and lower device (stale-macvlan sweeps). */
  listLinkDetails(): Promise<LinkDetails[]> {
    const sock = this.#socket();
    return this.#wrap('list links', async () => (await sock.getLinks()).map(toLinkDetails));
  }

  /**
   * Creates a macvlan on `parentIndex` with `mac`, in `mode`, down. IPv6 address generation is
   * switched off separately (setAddrGenModeNone): the kernel ignores IFLA_AF_SPEC on creation.
   */
  createMacvlan(opts: MacvlanOptions): Promise<void> {
    return this.#wrap(`create macvlan ${opts.name}`, async () => {
      const info = Buffer.concat([
        nla(IFLA_INFO_KIND, Buffer.from('macvlan')),
        nla(IFLA_INFO_DATA, nla(IFLA_MACVLAN_MODE, u32(MACVLAN_MODE[opts.mode]))),
      ]);
      const stream = new AttrStream();
      rt.formatLinkMessage({
        kind: 'link',
        data: { family: 0 },
        attrs: {
          ifname: opts.name,
          link: u32(opts.parentIndex),
          address: macBytes(opts.mac),
          linkinfo: info,
          ...(opts.group === undefined ? {} : { group: opts.group }),
        },
      }, stream);
      const err = await this.#ackRequest(rt.MessageType.NEWLINK, NLM_F_CREATE | NLM_F_EXCL, stream.bufs);
      if (err !== null) throw new Error(`rejected: ${err}`);
    });
  }

  /** Deletes a link by index. A link that is already gone is not an error. */
  deleteLink(index: number): Promise<void> {
    return this.#wrap(`delete link ${index}`, async () => {
      const stream = new AttrStream();
      rt.formatLinkMessage({ kind: 'link', data: { family: 0, index }, attrs: {} }, stream);
      const err = await this.#ackRequest(rt.MessageType.DELLINK, 0, stream.bufs);
      if (err !== null && err !== 'ENODEV') throw new Error(`rejected: ${err}`);
    });
  }

  /** Sets a link administratively up or down. */
  setLinkUp(index: number, up: boolean): Promise<void> {
    return this.#wrap(`set link ${index} ${up ? 'up' : 'down'}`, async () => {
      const stream = new AttrStream();
      rt.formatLinkMessage({ kind: 'link', data: { family: 0, index, flags: up ? { up: true } : {}, change: { up: true } }, attrs: {} }, stream);
      const err = await this.#ackRequest(rt.MessageType.NEWLINK, 0, stream.bufs);
      if (err !== null) throw new Error(`rejected: ${err}`);
    });
  }

  /** No automatic IPv6 link-local address on this link (RFC 5798 7.4: VRRP's own comes from us). */
  setAddrGenModeNone(index: number): Promise<void> {
    return this.#wrap(`set addrgenmode none on link ${index}`, async () => {
      const stream = new AttrStream();
      const spec = new Map<number, Buffer>([[AF_INET6, nla(IFLA_INET6_ADDR_GEN_MODE, Buffer.from([IN6_ADDR_GEN_MODE_NONE]))]]);
      rt.formatLinkMessage({ kind: 'link', data: { family: 0, index }, attrs: { afSpec: spec } }, stream);
      const err = await this.#ackRequest(rt.MessageType.NEWLINK, 0, stream.bufs);
      if (err !== null) throw new Error(`rejected: ${err}`);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Routes and rules (virtual_routes / virtual_rules / static_routes / static_rules)

  #routeMessage(r: RouteSpec, oif: number | undefined): rt.RouteMessage {
    const big = r.table > 255;
    const a: rt.RouteAttrs = { dst: addrBytes(r.dst.address, r.family) };
    if (big) a.table = r.table;
    if (r.from) a.src = addrBytes(r.from.address, r.family);
    if (r.src) a.prefsrc = addrBytes(r.src, r.family);
    if (r.via) a.gateway = addrBytes(r.via, r.family);
    if (oif !== undefined) a.oif = oif;
    if (r.metric !== undefined) a.priority = r.metric;
    return {
      kind: 'route',
      data: {
        family: r.family === 4 ? AF_INET : AF_INET6,
        dstLen: r.dst.prefix,
        srcLen: r.from?.prefix ?? 0,
        tos: r.tos ?? 0,
        table: big ? 0 : r.table,
        protocol: r.protocol,
        scope: r.scope,
        type: ROUTE_TYPE_CODE[r.type],
        ...(r.onlink ? { flags: { __unknown: RTNH_F_ONLINK } } : {}),
      },
      attrs: a,
    };
  }

  /**
   * Adds a route the way keepalived does (prepend unless the line says add / append). `oif` is the
   * resolved ifindex of `dev`. A route that is already there is not an error.
   */
  addRoute(r: RouteSpec, oif?: number): Promise<void> {
    const flags = NLM_F_CREATE | (r.mode === 'add' ? NLM_F_EXCL : r.mode === 'append' ? NLM_F_APPEND : 0);
    return this.#wrap(`add route ${r.text}`, async () => {
      const stream = new AttrStream();
      rt.formatRouteMessage(this.#routeMessage(r, oif), stream);
      const err = await this.#ackRequest(rt.MessageType.NEWROUTE, flags, stream.bufs);
      if (err !== null && err !== 'EEXIST') throw new Error(`rejected: ${err}`);
    });
  }

  /** Deletes a route; one that is not there is not an error. */
  deleteRoute(r: RouteSpec, oif?: number): Promise<void> {
    return this.#wrap(`delete route ${r.text}`, async () => {
      const stream = new AttrStream();
      const msg = this.#routeMessage(r, oif);
      // As keepalived: scope NOWHERE matches a route of any scope on delete.
      msg.data.scope = 255;
      rt.formatRouteMessage(msg, stream);
      const err = await this.#ackRequest(rt.MessageType.DELROUTE, 0, stream.bufs);
      if (err !== null && err !== 'ESRCH' && err !== 'ENOENT') throw new Error(`rejected: ${err}`);
    });
  }

  #ruleMessage(r: RuleSpec): rt.RuleMessage {
    const a: rt.RuleAttrs = { protocol: r.protocol };
    const big = r.table !== undefined && r.table > 255;
    if (r.from) a.src = addrBytes(r.from.address, r.family);
    if (r.to) a.dst = addrBytes(r.to.address, r.family);
    if (r.table !== undefined && big) a.table = r.table;
    if (r.goto !== undefined) a.goto = r.goto;
    if (r.preference !== undefined) a.priority = r.preference;
    if (r.fwmark !== undefined) a.fwmark = r.fwmark;
    if (r.fwmask !== undefined) a.fwmask = r.fwmask;
    if (r.iif !== undefined) a.iifname = r.iif;
    if (r.oif !== undefined) a.oifname = r.oif;
    return {
      kind: 'rule',
      data: {
        family: r.family === 4 ? AF_INET : AF_INET6,
        srcLen: r.from?.prefix ?? 0,
        dstLen: r.to?.prefix ?? 0,
        tos: r.tos ?? 0,
        table: r.table !== undefined && !big ? r.table : 0,
        action: RULE_ACTION_CODE[r.action],
        ...(r.invert ? { flags: { __unknown: FIB_RULE_INVERT } } : {}),
      },
      attrs: a,
    };
  }

  /** Adds a policy rule; one that is already there is not an error. */
  addRule(r: RuleSpec): Promise<void> {
    return this.#wrap(`add rule ${r.text}`, async () => {
      const stream = new AttrStream();
      rt.formatRuleMessage(this.#ruleMessage(r), stream);
      const err = await this.#ackRequest(rt.MessageType.NEWRULE, NLM_F_CREATE | NLM_F_EXCL, stream.bufs);
      if (err !== null && err !== 'EEXIST') throw new Error(`rejected: ${err}`);
    });
  }

  /** Deletes a policy rule; one that is not there is not an error. */
  deleteRule(r: RuleSpec): Promise<void> {
    return this.#wrap(`delete rule ${r.text}`, async () => {
      const stream = new AttrStream();
      rt.formatRuleMessage(this.#ruleMessage(r), stream);
      const err = await this.#ackRequest(rt.MessageType.DELRULE, 0, stream.bufs);
      if (err !== null && err !== 'ENOENT' && err !== 'ESRCH') throw new Error(`rejected: ${err}`);
    });
  }

  /** Adds a static_ipaddress line's address to `ifindex` (its `dev`); already there is fine. */
  addStaticAddress(ifindex: number, a: AddressSpec): Promise<void> {
    return this.#wrap(`add ${a.text}`, async () => {
      const bytes = addrBytes(a.address, a.family);
      const flags: rt.AddressFlags = {};
      if (a.nodad) flags.nodad = true;
      if (a.noprefixroute) flags.noprefixroute = true;
      const attrsOut: rt.AddressAttrs = { address: bytes, ...(Object.keys(flags).length > 0 ? { flags } : {}) };
      if (a.family === 4) attrsOut.local = bytes;
      if (a.label !== undefined) attrsOut.label = a.label;
      if (a.broadcast !== undefined) attrsOut.broadcast = ipv4ToBuffer(a.broadcast);
      const msg: rt.AddressMessage = {
        kind: 'address',
        data: { family: a.family === 4 ? AF_INET : AF_INET6, prefixlen: a.prefix, index: ifindex, scope: a.scope },
        attrs: attrsOut,
      };
      const err = await this.#addressRequest(rt.MessageType.NEWADDR, NLM_F_CREATE | NLM_F_EXCL, msg);
      if (err !== null && err !== 'EEXIST') throw new Error(`rejected: ${err}`);
    });
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
