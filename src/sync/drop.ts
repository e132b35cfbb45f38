/**
 * Why a received connection-sync datagram was not applied. The values are stable strings
 * (metrics label values `sync_messages_dropped_total{reason=...}`, and tests match on them);
 * renaming one is a breaking change for dashboards.
 *
 * Order of the checks on the receive path (first failing check wins; docs/sync-protocol.md):
 * too_short / bad_version (header) -> foreign_sync_id -> too_short / malformed (size, kind)
 * -> bad_hmac -> own_message -> replayed -> malformed (body).
 */
export const SYNC_DROP_REASONS = [
  /** Fewer bytes than the 8-byte header, or than header `size` + the 48-byte trailer. */
  'too_short',
  /** Header `reserved` byte is not 0 or `version` is not 1 (IPVS sync v0 or an unknown version). */
  'bad_version',
  /** Well-formed header whose sync id differs from ours (another director pair on the segment). */
  'foreign_sync_id',
  /** Any other structural error: size field, message kind, entry type/version/size, padding, values. */
  'malformed',
  /** The HMAC-SHA256 does not verify: forged, corrupted, or sent with another key. */
  'bad_hmac',
  /** Sequence number already seen, or too old for a known boot of that sender. */
  'replayed',
  /**
   * A boot not proven live yet: no snapshot-ack of it answered one of our snapshot-requests, and it
   * is not newer than a proven boot of that address. A captured stream replayed into a restarted
   * receiver lands here; so does a real master's traffic until the handshake (which it triggers).
   */
  'unverified',
  /** Our own message (same boot id), e.g. looped back by multicast. Not an error; counted apart. */
  'own_message',
] as const;

export type SyncDropReason = (typeof SYNC_DROP_REASONS)[number];

const REASONS: ReadonlySet<string> = new Set(SYNC_DROP_REASONS);

export function isSyncDropReason(value: unknown): value is SyncDropReason {
  return typeof value === 'string' && REASONS.has(value);
}

/** A zeroed counter per reason. */
export function emptyDropCounters(): Record<SyncDropReason, number> {
  const out = {} as Record<SyncDropReason, number>;
  for (const r of SYNC_DROP_REASONS) out[r] = 0;
  return out;
}
