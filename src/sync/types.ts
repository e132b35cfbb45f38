/**
 * Connection-sync entries: what the MASTER director tells the BACKUP about its connection
 * table so that, after a failover, persistent clients keep their real server and UDP flows
 * keep going. The model follows IPVS sync protocol v1 (net/netfilter/ipvs/ip_vs_sync.c,
 * struct ip_vs_sync_v4/v6); the wire format is in codec.ts and docs/sync-protocol.md.
 *
 * Three kinds share one wire layout (like IPVS, where a template is a connection with
 * IP_VS_CONN_F_TEMPLATE set):
 *  - `conn`:     a TCP or UDP connection (client -> virtual service -> real server);
 *  - `template`: a persistence template (virtual service, masked client network -> real server);
 *  - `udp-flow`: a user-space UDP flow of the data plane (our extension flag SYNC_F_UDP_FLOW).
 */

import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { SyncConfig } from '../config/types.js';
import { KeepaliveError } from '../util/errors.js';

export type SyncFamily = 4 | 6;

/** IANA protocol numbers as carried in the entry's `protocol` byte. */
export const IPPROTO_IP = 0;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** IPVS TCP states (enum in include/net/ip_vs.h), in wire order: index = wire value. */
export const TCP_STATES = [
  'NONE',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'SYNACK',
] as const;
export type TcpState = (typeof TCP_STATES)[number];
/** UDP has a single IPVS state, IP_VS_UDP_S_NORMAL (wire value 0); we call it 'UDP'. */
export type SyncState = TcpState | 'UDP';

/** IPVS forwarding method (IP_VS_CONN_F_FWD_MASK bits), index = wire value. */
export const FWD_METHODS = ['masq', 'local', 'tunnel', 'droute', 'bypass'] as const;
export type FwdMethod = (typeof FWD_METHODS)[number];

/** IPVS connection flags (include/uapi/linux/ip_vs.h) we read or write. */
export const IP_VS_CONN_F_FWD_MASK = 0x0007;
export const IP_VS_CONN_F_INACTIVE = 0x0100;
export const IP_VS_CONN_F_TEMPLATE = 0x1000;
/**
 * Our extension flags. IPVS documents that "flags that are not sent to backup server start
 * from bit 16" and a kernel backup masks incoming flags with IP_VS_CONN_F_BACKUP_MASK, so the
 * top byte is free for us.
 */
export const SYNC_F_UDP_FLOW = 0x0100_0000;
export const SYNC_F_GONE = 0x0200_0000;

export interface Endpoint {
  /** IPv4 dotted quad or IPv6 text; decoded entries carry the canonical (RFC 5952) form. */
  readonly address: string;
  /** 0..65535. */
  readonly port: number;
}

interface EntryCommon {
  readonly family: SyncFamily;
  readonly client: Endpoint;
  readonly virtual: Endpoint;
  readonly real: Endpoint;
  /** Remaining lifetime in whole seconds (wire: u32). 0 = "receiver's default" as in IPVS. */
  readonly timeoutSec: number;
  /** Firewall mark of a fwmark virtual service; 0 otherwise. Default 0. */
  readonly fwmark?: number;
  /** Forwarding method. Default 'masq'. */
  readonly fwd?: FwdMethod;
  /**
   * The entry is gone on the sender (connection closed and reaped, flow expired, template
   * dropped): the receiver should delete it now. Extension flag SYNC_F_GONE. Default false.
   */
  readonly ended?: boolean;
}

/** A TCP or UDP connection. TCP carries an IPVS TCP state; UDP carries state 'UDP'. */
export interface SyncConnection extends EntryCommon {
  readonly kind: 'conn';
  readonly protocol: 'tcp' | 'udp';
  readonly state: SyncState;
}

/**
 * A persistence template (IP_VS_CONN_F_TEMPLATE): client = masked client network with
 * port 0 (or the client port for per-port persistence), virtual = the service (port 0 for
 * a port-less "all ports" service; 0.0.0.0/:: with protocol 'any' and a fwmark for a
 * fwmark service), real = the server the client network is bound to.
 */
export interface SyncTemplate extends EntryCommon {
  readonly kind: 'template';
  readonly protocol: 'tcp' | 'udp' | 'any';
}

/** A user-space UDP flow (protocol UDP, state NORMAL, flag SYNC_F_UDP_FLOW). */
export interface SyncUdpFlow extends EntryCommon {
  readonly kind: 'udp-flow';
}

export type SyncEntry = SyncConnection | SyncTemplate | SyncUdpFlow;

/** An entry with every optional field filled in, as the decoder returns it. */
export type NormalizedEntry = SyncEntry & { readonly fwmark: number; readonly fwd: FwdMethod; readonly ended: boolean };

/** Fills the defaults (fwmark 0, fwd 'masq', ended false). decode(encode(e)) equals normalizeEntry(e). */
export function normalizeEntry(e: SyncEntry): NormalizedEntry {
  return { ...e, fwmark: e.fwmark ?? 0, fwd: e.fwd ?? 'masq', ended: e.ended ?? false } as NormalizedEntry;
}

/** A UDP destination: multicast group or unicast peer, with port. */
export interface SyncTarget {
  readonly address: string;
  readonly port: number;
}

/** Where sync messages go for a config: every unicast_peer at `port`, else the group. */
export function targetsFromConfig(cfg: Pick<SyncConfig, 'group' | 'port' | 'unicast_peer'>): SyncTarget[] {
  if (cfg.unicast_peer.length > 0) return cfg.unicast_peer.map((address) => ({ address, port: cfg.port }));
  return [{ address: cfg.group, port: cfg.port }];
}

/**
 * The address to give setMulticastInterface / addMembership for an interface name: its
 * first IPv4 address, or "::%<ifname>" for IPv6 (the scope id selects the interface).
 * Throws KeepaliveError E_SOCKET when the interface has no IPv4 address.
 */
export function multicastInterfaceAddress(ifname: string, family: SyncFamily): string {
  if (family === 6) return `::%${ifname}`;
  const addrs = networkInterfaces()[ifname];
  if (!addrs) throw new KeepaliveError('E_SOCKET', `sync: no such interface: ${ifname}`);
  const v4 = addrs.find((a) => a.family === 'IPv4');
  if (!v4) throw new KeepaliveError('E_SOCKET', `sync: interface ${ifname} has no IPv4 address (needed to send to a multicast group)`);
  return v4.address;
}

export function familyOf(address: string): SyncFamily {
  return isIP(address.replace(/%.*$/, '')) === 6 ? 6 : 4;
}
