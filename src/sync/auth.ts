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
 * content, surrounding whitespace trimmed). A key file that other users can read or write
 * (any of the mode bits 0o007) is refused with E_CONFIG_INVALID, as ssh refuses a private key
 * readable by others: a leaked key lets anyone on the segment rewrite the backup's table.
 * Group access is allowed (root:keepalived 0640 is a common layout).
 */

import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { SyncConfig } from '../config/types.js';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { BOOT_ID_LEN, HMAC_LEN, SEQ_LEN, TRAILER_LEN } from './codec.js';

/** Reads and checks the shared key. Throws KeepaliveError (E_CONFIG_INVALID / E_CONFIG_READ). */
export function readSyncKey(cfg: Pick<SyncConfig, 'auth_key' | 'auth_key_file'>): Buffer {
  if (cfg.auth_key !== undefined && cfg.auth_key_file !== undefined) {
    throw new KeepaliveError('E_CONFIG_INVALID', 'sync: auth_key and auth_key_file are mutually exclusive; set exactly one');
  }
  if (cfg.auth_key !== undefined) {
    const key = Buffer.from(cfg.auth_key, 'utf8');
    if (key.length === 0) throw new KeepaliveError('E_CONFIG_INVALID', 'sync: auth_key is empty');
    return key;
  }
  const file = cfg.auth_key_file;
  if (file === undefined) {
    throw new KeepaliveError('E_CONFIG_INVALID', 'sync: one of auth_key or auth_key_file is required (sync messages are always authenticated)');
  }
  let mode: number;
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new KeepaliveError('E_CONFIG_INVALID', `sync: auth_key_file ${file} is not a regular file`);
    mode = st.mode & 0o777;
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
  const key = Buffer.from(text.trim(), 'utf8');
  if (key.length === 0) throw new KeepaliveError('E_CONFIG_INVALID', `sync: auth_key_file ${file} is empty`);
  return key;
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
  /**
   * Forget a sender address after this long without an accepted message, so that a sender
   * whose clock went backwards across a restart is accepted again eventually. Default 10 min.
   */
  readonly forgetAfterMs?: number;
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

/**
 * Anti-replay state, keyed by sender address and boot id (see docs/sync-protocol.md):
 *  - a known boot: accept a sequence newer than the highest seen, or an unseen one at most
 *    `window - 1` behind it (IPsec-style window, so UDP reordering is not a loss); reject
 *    duplicates and anything older;
 *  - an unknown boot larger than every boot seen from that address: a restarted sender,
 *    accepted (starts a new window);
 *  - an unknown boot smaller than that: an old run's message replayed, rejected.
 * Only call `accept` for messages whose HMAC verified, or a forger could advance the state.
 */
export class ReplayGuard {
  readonly #window: bigint;
  readonly #mask: bigint;
  readonly #bootsPerSender: number;
  readonly #maxSenders: number;
  readonly #forgetAfterMs: number;
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
    this.#forgetAfterMs = options.forgetAfterMs ?? 600_000;
    this.#now = options.now ?? Date.now;
  }

  get senders(): number {
    return this.#senders.size;
  }

  /** True (and recorded) if (address, bootId, seq) is new; false if it is a replay. */
  accept(address: string, bootId: bigint, seq: bigint): boolean {
    const now = this.#now();
    const owner = this.#bootOwner.get(bootId);
    if (owner !== undefined && owner !== address && this.#senders.get(owner)?.boots.has(bootId)) address = owner;
    else if (owner !== address) {
      this.#bootOwner.delete(bootId);
      this.#bootOwner.set(bootId, address);
      while (this.#bootOwner.size > this.#maxSenders * this.#bootsPerSender) {
        this.#bootOwner.delete(this.#bootOwner.keys().next().value as bigint);
      }
    }
    let s = this.#senders.get(address);
    if (s && now - s.lastAccept > this.#forgetAfterMs) {
      this.#senders.delete(address);
      s = undefined;
    }
    if (!s) {
      s = { maxBoot: bootId, boots: new Map([[bootId, { highest: seq, seen: 1n }]]), lastAccept: now };
      this.#remember(address, s);
      return true;
    }
    const w = s.boots.get(bootId);
    if (!w) {
      if (bootId <= s.maxBoot) return false;
      s.maxBoot = bootId;
      s.boots.set(bootId, { highest: seq, seen: 1n });
      if (s.boots.size > this.#bootsPerSender) {
        let oldest = bootId;
        for (const b of s.boots.keys()) if (b < oldest) oldest = b;
        s.boots.delete(oldest);
      }
      this.#touch(address, s, now);
      return true;
    }
    if (seq > w.highest) {
      const shift = seq - w.highest;
      w.seen = shift >= this.#window ? 1n : ((w.seen << shift) | 1n) & this.#mask;
      w.highest = seq;
      this.#touch(address, s, now);
      return true;
    }
    const back = w.highest - seq;
    if (back >= this.#window) return false;
    const bit = 1n << back;
    if ((w.seen & bit) !== 0n) return false;
    w.seen |= bit;
    this.#touch(address, s, now);
    return true;
  }

  #touch(address: string, s: SenderState, now: number): void {
    s.lastAccept = now;
    // Map order = recency: re-insert.
    this.#senders.delete(address);
    this.#senders.set(address, s);
  }

  #remember(address: string, s: SenderState): void {
    this.#senders.set(address, s);
    while (this.#senders.size > this.#maxSenders) {
      const first = this.#senders.keys().next().value as string;
      this.#senders.delete(first);
    }
  }
}
