/**
 * The thin shell around the pure state machine: feeds it events with the current time, executes the
 * actions it returns (advert out, VIPs, announcements, the one timer, notifications) and keeps the
 * counters that status and metrics report. No VRRP decisions are made here.
 */
import { checkAdvert, type AdvertExpectation } from './packet.js';
import type { DropReason } from './drop.js';
import { initialState, reconfigure, step, type VrrpAction, type VrrpEvent, type VrrpParams, type VrrpState, type VrrpStateName, type TransitionReason } from './state.js';
import type { ReceivedAdvert } from './types.js';

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Node arms timers from the event loop's cached, whole-millisecond time, so a timer can fire up to
 * a millisecond or more *early*; re-arming then costs at least another full millisecond (Node's
 * minimum delay). The last stretch before a deadline is therefore covered with setImmediate turns,
 * which keeps the master-down timer within a fraction of a millisecond of its deadline. The daemon
 * uses the timerfd clock of precise-clock.ts instead; this one is its fallback without the addon.
 */
const SPIN_MS = 1.5;

export const spinClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const at = performance.now() + ms;
    const handle: { t?: NodeJS.Timeout; i?: NodeJS.Immediate } = {};
    const check = (): void => {
      const rem = at - performance.now();
      if (rem <= 0) fn();
      else if (rem > SPIN_MS) handle.t = setTimeout(check, rem - SPIN_MS / 2);
      else handle.i = setImmediate(check);
    };
    if (ms > SPIN_MS) handle.t = setTimeout(check, ms - SPIN_MS / 2);
    else handle.i = setImmediate(check);
    return handle;
  },
  clearTimeout: (h) => {
    const handle = h as { t?: NodeJS.Timeout; i?: NodeJS.Immediate };
    if (handle.t) clearTimeout(handle.t);
    if (handle.i) clearImmediate(handle.i);
  },
};

/** What the instance asks of the world. VIP operations may be slow; the shell serialises them. */
export interface InstanceEffects {
  sendAdvert(priority: number): void;
  addVips(): Promise<void>;
  removeVips(): Promise<void>;
  /** Start the gratuitous ARP / unsolicited NA bursts (after the VIPs are in place). */
  announce(): void;
  /** Cancel pending bursts (on leaving MASTER). */
  stopAnnounce(): void;
  /** One extra burst while MASTER (a lower-priority master was heard); the effect rate-limits it. */
  reannounce(): void;
  notify(state: VrrpStateName, priority: number): void;
  onTransition(from: VrrpStateName, to: VrrpStateName, reason: TransitionReason): void;
  onError(err: unknown, what: string): void;
}

export interface InstanceCounters {
  advertsSent: number;
  advertsReceived: number;
  transitions: number;
  drops: Partial<Record<DropReason, number>>;
}

export class VrrpInstance {
  #state: VrrpState;
  #timer: unknown = undefined;
  #vipChain: Promise<void> = Promise.resolve();
  #vipsOwned = false;
  readonly #peerWaiters = new Set<() => void>();
  readonly counters: InstanceCounters = { advertsSent: 0, advertsReceived: 0, transitions: 0, drops: {} };
  /** Listeners for every step (sync groups reconcile here). */
  readonly #observers: ((before: VrrpState, after: VrrpState) => void)[] = [];

  constructor(
    readonly name: string,
    params: VrrpParams,
    private expect: AdvertExpectation,
    private readonly effects: InstanceEffects,
    private readonly clock: Clock = spinClock,
  ) {
    this.#state = initialState(params);
  }

  get state(): VrrpState { return this.#state; }
  get vipsOwned(): boolean { return this.#vipsOwned; }
  /** Resolves when every queued VIP add/remove has been applied. */
  get settled(): Promise<void> { return this.#vipChain; }

  /** Reload: new parameters and advert expectations; state and timers are kept. */
  reconfigure(params: VrrpParams, expect: AdvertExpectation): void {
    this.#state = reconfigure(this.#state, params);
    this.expect = expect;
  }

  observe(fn: (before: VrrpState, after: VrrpState) => void): void { this.#observers.push(fn); }

  countDrop(reason: DropReason): void {
    this.counters.drops[reason] = (this.counters.drops[reason] ?? 0) + 1;
  }

  /** An advert for our VRID that decoded cleanly: apply the per-instance checks, then the machine. */
  /** `receivedAt`: when the packet reached the process (clock time), if known; the step happens at that time. */
  receive(advert: ReceivedAdvert, receivedAt?: number): void {
    const reason = checkAdvert(advert, this.expect, advert.source, advert.ttl);
    if (reason) {
      this.countDrop(reason);
      return;
    }
    this.counters.advertsReceived++;
    if (advert.priority > 0 && this.#peerWaiters.size > 0) {
      for (const w of this.#peerWaiters) w();
      this.#peerWaiters.clear();
    }
    this.dispatch({ type: 'advert', advert }, receivedAt);
  }

  /** Feeds one event to the state machine at `at` (default: now; never later than now). */
  dispatch(event: VrrpEvent, at?: number): void {
    const before = this.#state;
    const now = this.clock.now();
    const { state, actions } = step(before, event, at !== undefined && at < now ? at : now);
    this.#state = state;
    for (const a of actions) this.#execute(a);
    for (const o of this.#observers) o(before, state);
  }

  #execute(a: VrrpAction): void {
    switch (a.type) {
      case 'send_advert':
        this.counters.advertsSent++;
        this.effects.sendAdvert(a.priority);
        return;
      case 'add_vips':
        this.#vipsOwned = true;
        this.#queueVips(() => this.effects.addVips(), 'add VIPs');
        return;
      case 'announce':
        // Only once the addresses exist: a GARP for an address we do not answer for is a lie.
        this.#vipChain = this.#vipChain.then(() => { if (this.#vipsOwned) this.effects.announce(); });
        return;
      case 'reannounce':
        if (this.#vipsOwned) this.#vipChain = this.#vipChain.then(() => { if (this.#vipsOwned) this.effects.reannounce(); });
        return;
      case 'remove_vips':
        this.#vipsOwned = false;
        this.effects.stopAnnounce();
        this.#queueVips(() => this.effects.removeVips(), 'remove VIPs');
        return;
      case 'set_timer':
        this.#arm(a.at);
        return;
      case 'cancel_timer':
        this.#disarm();
        return;
      case 'notify':
        this.effects.notify(a.state, this.#state.effectivePriority);
        return;
      case 'transition':
        this.counters.transitions++;
        this.effects.onTransition(a.from, a.to, a.reason);
        return;
    }
  }

  #queueVips(op: () => Promise<void>, what: string): void {
    this.#vipChain = this.#vipChain.then(op).catch((err: unknown) => this.effects.onError(err, what));
  }

  #arm(at: number): void {
    this.#disarm();
    const delay = Math.max(0, at - this.clock.now());
    this.#timer = this.clock.setTimeout(() => {
      this.#timer = undefined;
      this.dispatch({ type: 'timer' });
    }, delay);
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  start(): void { this.dispatch({ type: 'start' }); }

  /**
   * Runs the state machine through start, takeover and an advert on a scratch state (step is pure:
   * nothing is executed), so that a BACKUP's first takeover does not also pay for compiling that
   * code on the failover's clock.
   */
  warmUp(): void {
    let s = initialState(this.#state.params);
    let t = 0;
    s = step(s, { type: 'start' }, t).state;
    for (let i = 0; i < 3; i++) s = step(s, { type: 'timer' }, (t += 10_000)).state;
    step(s, { type: 'shutdown' }, (t += 10_000));
  }

  /** Priority-0 advert if MASTER, VIPs removed, timer cancelled. Resolves once the VIPs are gone. */
  /**
   * Priority-0 advert if MASTER, VIPs removed, timer cancelled. Resolves once the VIPs are gone.
   * `holdVips`: the VIPs stay until it settles (graceful stop: connections on them drain first; the
   * priority-0 advert still goes out at once so the peer takes over after Skew_Time).
   */
  async shutdown(holdVips?: Promise<unknown>): Promise<void> {
    if (holdVips) this.#vipChain = this.#vipChain.then(() => holdVips.then(() => undefined, () => undefined));
    if (this.#state.name !== 'STOP' && this.#state.name !== 'INIT') this.dispatch({ type: 'shutdown' });
    this.#disarm();
    this.effects.stopAnnounce();
    await this.#vipChain;
  }

  /** Resolves when another router advertises a non-zero priority for our VRID (it has taken over). */
  peerAdvert(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => { this.#peerWaiters.delete(done); resolve(false); }, timeoutMs);
      const done = () => { this.clock.clearTimeout(timer); resolve(true); };
      this.#peerWaiters.add(done);
    });
  }
}
