/** Shared VRRP types used by the codec, the state machine, the transports and the instance shell. */

export type IpFamily = 4 | 6;
export type VrrpVersion = 2 | 3;

/** The VRRP advertisement as carried on the wire, independent of version and family. */
export interface Advert {
  version: VrrpVersion;
  vrid: number;
  priority: number;
  /** Advertisement interval in centiseconds. v2 carries whole seconds on the wire (x100 here). */
  advertIntCs: number;
  /** Virtual addresses in canonical text form (IPv4 dotted quad, IPv6 compressed lower-case). */
  addresses: string[];
  /** v2 only: 0 = none, 1 = simple text password (PASS). */
  authType?: number;
  /** v2 only: the 8-byte authentication data (PASS password, NUL padded). */
  authData?: Buffer;
}

/** An advert as received, with the IP-level facts the receiver must check. */
export interface ReceivedAdvert extends Advert {
  family: IpFamily;
  /** Source address of the IP packet (the sender's primary address). */
  source: string;
  /** IPv4 TTL or IPv6 hop limit. */
  ttl: number;
  /** Interface index the packet arrived on (0 if unknown). */
  ifindex: number;
}
