/**
 * Gratuitous ARP / unsolicited NA bursts with keepalived's timing semantics:
 *  - on becoming MASTER, `garpMasterRepeat` rounds over all VIPs are sent at once;
 *  - `garpMasterDelay` seconds later, a second burst of the same size (0 disables it);
 *  - while MASTER, every `garpMasterRefresh` seconds (0 disables) `garpMasterRefreshRepeat` rounds;
 *  - consecutive frames of one family are spaced by `garpInterval` (ARP) / `gnaInterval` (NA)
 *    seconds, as keepalived's per-interface garp_next_time / gna_next_time do; 0 = back to back.
 * Time comes from an injected scheduler so the behaviour can be tested on a fake clock.
 */
import { buildGarp, buildUnsolicitedNa } from './frames.js';

export interface Scheduler {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realScheduler: Scheduler = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** keepalived's names and defaults (seconds). */
/** An instance's announcement timing from its config and [global] (the pacing keys are global only). */
export function announcerTiming(
  cfg: { garp_master_repeat: number; garp_master_delay: number; garp_master_refresh: number; garp_master_refresh_repeat: number },
  global: { vrrp_garp_interval: number; vrrp_gna_interval: number },
): AnnouncerTiming {
  return {
    garpMasterRepeat: cfg.garp_master_repeat,
    garpMasterDelay: cfg.garp_master_delay,
    garpMasterRefresh: cfg.garp_master_refresh,
    garpMasterRefreshRepeat: cfg.garp_master_refresh_repeat,
    garpInterval: global.vrrp_garp_interval,
    gnaInterval: global.vrrp_gna_interval,
  };
}

export interface AnnouncerTiming {
  garpMasterRepeat: number;
  garpMasterDelay: number;
  garpMasterRefresh: number;
  garpMasterRefreshRepeat: number;
  garpInterval: number;
  gnaInterval: number;
}

export const DEFAULT_TIMING: AnnouncerTiming = {
  garpMasterRepeat: 5,
  garpMasterDelay: 5,
  garpMasterRefresh: 0,
  garpMasterRefreshRepeat: 1,
  garpInterval: 0,
  gnaInterval: 0,
};

export interface AnnouncerOptions {
  /** MAC the frames claim the VIPs for (the interface's, or the VMAC). */
  mac: string;
  /** VIPs, bare or in CIDR notation; family is taken from the address. */
  vips: readonly string[];
  /** Puts one complete Ethernet frame on the wire; may throw (counted in `failed`). */
  send: (frame: Buffer) => void;
  timing?: Partial<AnnouncerTiming>;
  /** NA Router flag (keepalived sets it when IPv6 forwarding is on). */
  router?: boolean;
  scheduler?: Scheduler;
  onError?: (err: unknown, vip: string) => void;
}

interface VipFrame {
  vip: string;
  family: 4 | 6;
  frame: Buffer;
}

/** Serializes the frames of one family so they leave at most one per `intervalMs`. */
class PacedQueue<T> {
  #pending: T[] = [];
  #pacing: unknown = undefined;
  #paced = false;

  constructor(
    private readonly intervalMs: number,
    private readonly scheduler: Scheduler,
    private readonly emit: (item: T) => void,
  ) {}

  push(item: T): void {
    if (this.intervalMs <= 0) {
      this.emit(item);
      return;
    }
    this.#pending.push(item);
    if (!this.#paced) this.#next();
  }

  #next(): void {
    const item = this.#pending.shift();
    if (item === undefined) {
      this.#paced = false;
      return;
    }
    this.#paced = true;
    this.emit(item);
    this.#pacing = this.scheduler.setTimeout(() => this.#next(), this.intervalMs);
  }

  clear(): void {
    this.#pending = [];
    if (this.#paced) this.scheduler.clearTimeout(this.#pacing);
    this.#paced = false;
  }
}

export class Announcer {
  readonly #timing: AnnouncerTiming;
  readonly #scheduler: Scheduler;
  readonly #frames: VipFrame[];
  readonly #send: (frame: Buffer) => void;
  readonly #onError: ((err: unknown, vip: string) => void) | undefined;
  readonly #queues: Record<4 | 6, PacedQueue<VipFrame>>;
  #delayTimer: unknown = undefined;
  #refreshTimer: unknown = undefined;
  #active = false;
  #sent = 0;
  #failed = 0;

  constructor(opts: AnnouncerOptions) {
    this.#timing = { ...DEFAULT_TIMING, ...opts.timing };
    this.#scheduler = opts.scheduler ?? realScheduler;
    this.#send = opts.send;
    this.#onError = opts.onError;
    // Frames are immutable per VIP, so build them once (this also validates mac and VIPs early).
    this.#frames = opts.vips.map((cidr) => {
      const vip = cidr.split('/')[0]!;
      const family: 4 | 6 = vip.includes(':') ? 6 : 4;
      const frame = family === 4 ? buildGarp(opts.mac, vip) : buildUnsolicitedNa(opts.mac, vip, vip, { router: opts.router ?? false });
      return { vip, frame, family } satisfies VipFrame;
    });
    const emit = (f: VipFrame): void => this.#emit(f);
    this.#queues = {
      4: new PacedQueue(this.#timing.garpInterval * 1000, this.#scheduler, emit),
      6: new PacedQueue(this.#timing.gnaInterval * 1000, this.#scheduler, emit),
    };
  }

  /** Frames handed to the sender without error (vrrp_garp_sent_total). */
  get sent(): number {
    return this.#sent;
  }

  /** Frames the sender rejected. */
  get failed(): number {
    return this.#failed;
  }

  get active(): boolean {
    return this.#active;
  }

  /**
   * The first burst's gratuitous ARPs, for a sender that puts them on the wire before start() can
   * (the advert sender thread, right after the VIPs of a takeover): garp_master_repeat rounds of
   * the IPv4 frames, or none when vrrp_garp_interval paces them (only this class paces). Unsolicited
   * NAs are never in it: start() sends them.
   */
  firstGarps(): Buffer[] {
    if (this.#timing.garpInterval > 0) return [];
    const v4 = this.#frames.filter((f) => f.family === 4).map((f) => f.frame);
    return Array.from({ length: this.#timing.garpMasterRepeat }, () => v4).flat();
  }

  /**
   * Becoming MASTER: immediate burst, delayed second burst, periodic refresh. No-op if active.
   * `garpsSent`: that many of firstGarps() are on the wire already (counted in `sent`); all of them:
   * the first burst sends only the NAs, fewer: the whole burst goes again. `sinceMs`: how long ago
   * they left — the second burst is garp_master_delay after them, not after this call.
   */
  start(opts: { garpsSent?: number; sinceMs?: number } = {}): void {
    if (this.#active) return;
    this.#active = true;
    const t = this.#timing;
    const already = opts.garpsSent ?? 0;
    this.#sent += already;
    const skipV4 = already > 0 && already === this.firstGarps().length;
    for (let r = 0; r < t.garpMasterRepeat; r++) {
      for (const f of this.#frames) if (!(skipV4 && f.family === 4)) this.#queues[f.family].push(f);
    }
    if (t.garpMasterDelay > 0) {
      this.#delayTimer = this.#scheduler.setTimeout(() => {
        this.#delayTimer = undefined;
        this.burst(t.garpMasterRepeat);
      }, Math.max(0, t.garpMasterDelay * 1000 - (skipV4 ? Math.max(0, opts.sinceMs ?? 0) : 0)));
    }
    if (t.garpMasterRefresh > 0) this.#scheduleRefresh();
  }

  #scheduleRefresh(): void {
    this.#refreshTimer = this.#scheduler.setTimeout(() => {
      this.#refreshTimer = undefined;
      this.burst(this.#timing.garpMasterRefreshRepeat);
      if (this.#active) this.#scheduleRefresh();
    }, this.#timing.garpMasterRefresh * 1000);
  }

  /** Queues `rounds` rounds of one frame per VIP (also usable on demand while MASTER). */
  burst(rounds: number): void {
    for (let r = 0; r < rounds; r++) {
      for (const f of this.#frames) this.#queues[f.family].push(f);
    }
  }

  /** Leaving MASTER: cancels every pending frame and timer. Idempotent. */
  stop(): void {
    this.#active = false;
    if (this.#delayTimer !== undefined) this.#scheduler.clearTimeout(this.#delayTimer);
    if (this.#refreshTimer !== undefined) this.#scheduler.clearTimeout(this.#refreshTimer);
    this.#delayTimer = undefined;
    this.#refreshTimer = undefined;
    this.#queues[4].clear();
    this.#queues[6].clear();
  }

  #emit(f: VipFrame): void {
    try {
      this.#send(f.frame);
      this.#sent++;
    } catch (err) {
      // A failed announcement must not take the VRRP instance down; the next round retries.
      this.#failed++;
      this.#onError?.(err, f.vip);
    }
  }
}
