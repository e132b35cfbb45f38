/**
 * Why a received VRRP packet was dropped. The values are stable strings: they become metrics
 * label values (`vrrp_packets_dropped_total{reason=...}`) and tests match on them, so renaming
 * one is a breaking change for dashboards.
 *
 * Structural reasons come from parseIpv4Packet / decodeAdvert (the packet is not a well-formed
 * advert); the others from checkAdvert or the receive path (a well-formed advert that this
 * router must not act on).
 */
export const DROP_REASONS = [
  // --- structural: parseIpv4Packet / decodeAdvert ---
  /** Fewer bytes than the fixed headers need (or than the IPv4 total length announces). */
  'too_short',
  /** IPv4 header malformed (version, IHL, total length, header checksum) or unusable addresses. */
  'bad_ip_header',
  /** IP protocol is not 112 (e.g. IPsec AH, which we do not implement). */
  'not_vrrp_protocol',
  /** VRRP version nibble is neither 2 nor 3. */
  'bad_version',
  /** VRRP type is not 1 (ADVERTISEMENT). */
  'bad_type',
  /** Length does not match the address count (plus v2 authentication data). */
  'bad_length',
  /** VRRP checksum does not verify. */
  'bad_checksum',
  /** IPv4 TTL / IPv6 hop limit is not 255: the packet may have crossed a router. */
  'bad_ttl',
  // --- per instance: checkAdvert and the receive path ---
  /** No instance is configured for the VRID (or the advert is for another instance's VRID). */
  'wrong_vrid',
  /** Well-formed advert of the other VRRP version than the instance runs. */
  'version_mismatch',
  /** v2: authentication type differs from the configured one. */
  'auth_type_mismatch',
  /** v2 PASS: the password differs. */
  'auth_failure',
  /** The number of virtual addresses differs from the configured one. */
  'address_count_mismatch',
  /** Same number of virtual addresses, but a configured one is missing. */
  'address_list_mismatch',
  /** v2: advertisement interval differs from ours (RFC 3768 §7.1 says drop). */
  'interval_mismatch',
  /** The packet is our own advert (source is one of our addresses), looped back. */
  'own_address',
  /** unicast_peer mode with check_unicast_src: the source is not a configured peer (keepalived check_unicast_src). */
  'unknown_unicast_source',
  /** unicast_peer mode: the TTL / hop limit is outside the peer's min_ttl..max_ttl. */
  'ttl_out_of_range',
  /** v3: the advertisement interval is 0 (a backup would declare the master dead at once). */
  'zero_interval',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

const REASON_SET: ReadonlySet<string> = new Set(DROP_REASONS);

export function isDropReason(value: unknown): value is DropReason {
  return typeof value === 'string' && REASON_SET.has(value);
}
