/**
 * Authentication of sync messages (docs/sync-protocol.md, "Authentication" and "Replay").
 *
 * Every datagram ends with a 48-byte trailer:
 *   boot id  be64  identifies one run of the sending daemon: (ms since the epoch at start << 16)
 *                  | 16 random bits. Later runs have larger ids (unless the clock went back).
 *   sequence be64  1, 2, 3, ... per boot id, over all messages of that daemon (sender and
 *                  receiver of one director share a SyncAuth, hence one counter).
 *   hmac     32    HMAC-SHA256(key, header | entries | boot id | sequence).
 *
 * The key comes from `auth_key` (the string's UTF-8 bytes) or `auth_key_file` (the file's
 * content, surrounding whitespace trimmed), and has at least MIN_SYNC_KEY_BYTES (16) bytes. A key
 * file that other users can read or write (any of the mode bits 0o007), or that is owned by
 * someone other than root or the daemon's user, is refused with E_CONFIG_INVALID, as ssh refuses
 * a private key readable by others: a leaked key lets anyone on the segment rewrite the backup's
 * table. Group access is allowed (root:keepalived 0640 is a common layout); `keepalive-ts check`
 * warns about it (src/daemon/preflight.ts).
 */

import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { SyncConfig } from '../config/types.js';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { BOOT_ID_LEN, HMAC_LEN, SEQ_LEN, TRAILER_LEN } from './codec.js';
import { MIN_SYNC_KEY_BYTES } from '../config/schema.js';

function checkLength(key: Buffer, what: string): Buffer {
  if (key.length === 0) throw new KeepaliveError('E_CONFIG_INVALID', `sync: ${what} is empty`);
  if (key.length < MIN_SYNC_KEY_BYTES) {
    throw new KeepaliveError('E_CONFIG_INVALID', `sync: ${what} has ${key.length} bytes; at least ${MIN_SYNC_KEY_BYTES} are needed (e.g. openssl rand -hex 32)`);
  }
  return key;
}

/** Reads and checks the shared key. Throws KeepaliveError (E_CONFIG_INVALID / E_CONFIG_READ). */
export function readSyncKey(cfg: Pick<SyncConfig, 'auth_key' | 'auth_key_file'>): Buffer {
  if (cfg.auth_key !== undefined && cfg.auth_key_file !== undefined) {
    throw new KeepaliveError('E_CONFIG_INVALID', 'sync: auth_key and auth_key_file are mutually exclusive; set exactly one');
  }
  if (cfg.auth_key !== undefined) return checkLength(Buffer.from(cfg.auth_key, 'utf8'), 'auth_key');
  const file = cfg.auth_key_file;
  if (file === undefined) {
    throw new KeepaliveError('E_CONFIG_INVALID', 'sync: one of auth_key or auth_key_file is required (sync messages are always authenticated)');
  }
  let mode: number;
  let owner: number;
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new KeepaliveError('E_CONFIG_INVALID', `sync: auth_key_file ${file} is not a regular file`);
    mode = st.mode & 0o777;
    owner = st.uid;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof KeepaliveError) throw err;
    throw new KeepaliveError('E_CONFIG_READ', `sync: cannot read auth_key_file ${file}: ${errorMessage(err)}`, { cause: err });
  }
  if ((mode & 0o007) !== 0) {
    const m = mode.toString(8).padStart(4, '0');
    throw new KeepaliveError(
      'E_CONFIG_INVALID',
      `sync: auth_key_file ${file} is accessible by other users (mode ${m}); run "chmod 600 ${file}" ` +
        '(or 640 with a dedicated group): anyone who can read the key can forge connection-sync messages',
    );
  }
  const self = process.getuid?.() ?? 0;
  if (owner !== 0 && owner !== self) {
    throw new KeepaliveError('E_CONFIG_INVALID', `sync: auth_key_file ${file} is owned by uid ${owner}, not root or the daemon's user (uid ${self}): whoever owns it can change the key`);
  }
  return checkLength(Buffer.from(text.trim(), 'utf8'), `auth_key_file ${file}`);
}

/** A fresh boot id: start time in ms in the top 48 bits, 16 random bits below. */
export function newBootId(nowMs: number = Date.now()): bigint {
  return ((BigInt(Math.floor(nowMs)) & 0xffff_ffff_ffffn) << 16n) | BigInt(randomInt(0, 0x10000));
}

export interface SyncAuthOptions {
  /** Override the boot id (tests). Must be non-zero. */
  readonly bootId?: bigint;
}

/** One director's signing identity: key, boot id and message counter. */
export class SyncAuth {
  readonly bootId: bigint;
  readonly #key: Buffer;
  #seq = 0n;

  constructor(key: Uint8Array, options: SyncAuthOptions = {}) {
    if (key.length === 0) throw new RangeError('sync key must not be empty');
    this.#key = Buffer.from(key);
    this.bootId = options.bootId ?? newBootId();
    if (this.bootId <= 0n || this.bootId > 0xffff_ffff_ffff_ffffn) throw new RangeError('boot id must be a non-zero u64');
  }

  static fromConfig(cfg: Pick<SyncConfig, 'auth_key' | 'auth_key_file'>, options?: SyncAuthOptions): SyncAuth {
    return new SyncAuth(readSyncKey(cfg), options);
  }

  /** The last sequence number used (0 before the first message). */
  get lastSeq(): bigint {
    return this.#seq;
  }

  /**
   * Fills the trailer (last TRAILER_LEN bytes) of an encoded datagram in place: boot id,
   * next sequence number, HMAC. Returns the buffer.
   */
  seal(buf: Buffer): Buffer {
    if (buf.length < TRAILER_LEN + 8) throw new RangeError('datagram too short to seal');
    const t = buf.length - TRAILER_LEN;
    this.#seq += 1n;
    buf.writeBigUInt64BE(this.bootId, t);
    buf.writeBigUInt64BE(this.#seq, t + BOOT_ID_LEN);
    const mac = createHmac('sha256', this.#key).update(buf.subarray(0, t + BOOT_ID_LEN + SEQ_LEN)).digest();
    mac.copy(buf, t + BOOT_ID_LEN + SEQ_LEN);
    return buf;
  }

  /** Constant-time check of the trailing HMAC over everything before it. */
  verify(buf: Uint8Array): boolean {
    if (buf.length < TRAILER_LEN) return false;
    const macAt = buf.length - HMAC_LEN;
    const expected = createHmac('sha256', this.#key).update(buf.subarray(0, macAt)).digest();
    return timingSafeEqual(expected, buf.subarray(macAt));
  }
}

// --------------------------------------------------------------------------------------
// Replay protection
// --------------------------------------------------------------------------------------

export interface ReplayGuardOptions {
  /** Sliding window of accepted-but-older sequence numbers (reordering tolerance). Default 64. */
  readonly window?: number;
  /** Boot ids remembered per sender address. Default 4. */
  readonly bootsPerSender?: number;
  /** Sender addresses remembered (least recently accepted forgotten first). Default 1024. */
  readonly maxSenders?: number;
  readonly now?: () => number;
}

interface BootWindow {
  highest: bigint;
  /** Bit i set: sequence (highest - i) was accepted. */
  seen: bigint;
}

interface SenderState {
  maxBoot: bigint;
  boots: Map<bigint, BootWindow>;
  lastAccept: number;
}

/** What the replay check says of an authenticated message. */
export type ReplayVerdict = 'ok' | 'replayed' | 'unverified';

export interface ReplayCheck {
  /**
   * The message is a snapshot-ack echoing a snapshot-request this receiver sent in this run (its
   * own boot id and one of its request sequence numbers): proof that the sender's boot is live now.
   */
  readonly proof?: boolean;
  /** The message is a snapshot-request: passed on from any boot (it starts a handshake), proves nothing. */
  readonly request?: boolean;
}

/**
 * Anti-replay state, keyed by sender address and boot id (see docs/sync-protocol.md):
 *  - a known boot: accept a sequence newer than the highest seen, or an unseen one at most
 *    `window - 1` behind it (IPsec-style window, so UDP reordering is not a loss); reject
 *    duplicates and anything older ('replayed');
 *  - an unknown boot is only accepted with proof that it is live: a snapshot-ack echoing one of
 *    this receiver's own snapshot-requests (per-boot nonce challenge; the window starts at the
 *    ack, nothing older is accepted), or by being newer than a boot already proven from the same
 *    address (a restarted sender). Anything else is 'unverified' (the receiver then asks for a
 *    snapshot, which starts the handshake). So a captured stream replays neither into a restarted
 *    receiver (its state is empty: nothing is proven) nor after any silence (nothing is forgotten
 *    by time; a sender whose clock went back proves its new boot by the handshake).
 * Only call `check` for messages whose HMAC verified, or a forger could advance the state.
 */
export class ReplayGuard {
  readonly #window: bigint;
  readonly #mask: bigint;
  readonly #bootsPerSender: number;
  readonly #maxSenders: number;
  readonly #now: () => number;
  readonly #senders = new Map<string, SenderState>();
  /**
   * Boot id -> the address whose state holds its window. The source address is not
   * authenticated, the boot id is: a captured message re-sent from another address is
   * checked against the window of the address that first used its boot id.
   */
  readonly #bootOwner = new Map<bigint, string>();

  constructor(options: ReplayGuardOptions = {}) {
    const w = options.window ?? 64;
    if (!Number.isInteger(w) || w < 1 || w > 1024) throw new RangeError('window must be 1..1024');
    this.#window = BigInt(w);
    this.#mask = (1n << this.#window) - 1n;
    this.#bootsPerSender = options.bootsPerSender ?? 4;
    this.#maxSenders = options.maxSenders ?? 1024;
    this.#now = options.now ?? Date.now;
  }

  get senders(): number {
    return this.#senders.size;
  }

  /** check() === 'ok'. */
  accept(address: string, bootId: bigint, seq: bigint, how: ReplayCheck = {}): boolean {
    return this.check(address, bootId, seq, how) === 'ok';
  }

  /** The verdict for (address, bootId, seq); an 'ok' is recorded. */
  check(address: string, bootId: bigint, seq: bigint, how: ReplayCheck = {}): ReplayVerdict {
    const now = this.#now();
    const owner = this.#bootOwner.get(bootId);
    if (owner !== undefined && owner !== address && this.#senders.get(owner)?.boots.has(bootId)) address = owner;
    const s = this.#senders.get(address);
    const w = s?.boots.get(bootId);
    if (s && w) return this.#inWindow(address, s, w, seq, now);
    if (how.proof) {
      // A fresh window at the ack: everything the boot sent before it stays rejected.
      this.#newBoot(address, s, bootId, { highest: seq, seen: this.#mask }, now);
      return 'ok';
    }
    if (s && bootId > s.maxBoot) {
      // A restarted sender: a newer boot than one proven live from the same address.
      this.#newBoot(address, s, bootId, { highest: seq, seen: 1n }, now);
      return 'ok';
    }
    if (how.request) return 'ok';
    return 'unverified';
  }

  #inWindow(address: string, s: SenderState, w: BootWindow, seq: bigint, now: number): ReplayVerdict {
    if (seq > w.highest) {
      const shift = seq - w.highest;
      w.seen = shift >= this.#window ? 1n : ((w.seen << shift) | 1n) & this.#mask;
      w.highest = seq;
      this.#touch(address, s, now);
      return 'ok';
    }
    const back = w.highest - seq;
    if (back >= this.#window) return 'replayed';
    const bit = 1n << back;
    if ((w.seen & bit) !== 0n) return 'replayed';
    w.seen |= bit;
    this.#touch(address, s, now);
    return 'ok';
  }

  #newBoot(address: string, existing: SenderState | undefined, bootId: bigint, w: BootWindow, now: number): void {
    const s = existing ?? { maxBoot: bootId, boots: new Map<bigint, BootWindow>(), lastAccept: now };
    if (bootId > s.maxBoot) s.maxBoot = bootId;
    s.boots.set(bootId, w);
    if (s.boots.size > this.#bootsPerSender) {
      let oldest = bootId;
      for (const b of s.boots.keys()) if (b < oldest) oldest = b;
      s.boots.delete(oldest);
    }
    this.#bootOwner.delete(bootId);
    this.#bootOwner.set(bootId, address);
    while (this.#bootOwner.size > this.#maxSenders * this.#bootsPerSender) {
      this.#bootOwner.delete(this.#bootOwner.keys().next().value as bigint);
    }
    this.#touch(address, s, now);
    while (this.#senders.size > this.#maxSenders) {
      const first = this.#senders.keys().next().value as string;
      this.#senders.delete(first);
    }
  }

  #touch(address: string, s: SenderState, now: number): void {
    s.lastAccept = now;
    // Map order = recency: re-insert.
    this.#senders.delete(address);
    this.#senders.set(address, s);
  }
}
