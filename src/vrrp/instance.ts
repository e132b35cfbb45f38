/**
 * The thin shell around the pure state machine: feeds it events with the current time, executes the
 * actions it returns (advert out, VIPs, announcements, the one timer, notifications) and keeps the
 * counters that status and metrics report. No VRRP decisions are made here.
 */
import { checkAdvert, type AdvertExpectation } from './packet.js';
import type { DropReason } from './drop.js';
import { initialState, reconfigure, samePlan, step, timerPlan, type TimerPlan, type VrrpAction, type VrrpEvent, type VrrpParams, type VrrpState, type VrrpStateName, type TransitionReason } from './state.js';
import type { ReceivedAdvert } from './types.js';
import { advertIntervalMs } from './timing.js';

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

/**
 * What the executor's thread did right after a takeover's advert, when the shell handed it the
 * takeover's VIPs and gratuitous ARPs: the VIPs were in at `vipsAt` (clock time; undefined: not
 * added, `vipsErrno` says why when non-zero) and `garps` frames left after them.
 */
export interface NativeTakeover {
  vipsAt: number | undefined;
  vipsErrno: number;
  garps: number;
}

/**
 * Runs an instance's timer plan (state.ts timerPlan) off the event loop: native/vrrp_sender.c through
 * native-sender.ts. The state machine stays the authority: the shell hands over each plan as the
 * machine produces it and cancels it as soon as the machine's output changes.
 */
export interface TimerExecutor {
  /**
   * Runs `plan`, replacing the previous one. `keepPhase`: a periodic plan of the same interval keeps
   * its next deadline (new frame only). A takeover calls `fired` once it expired: with the clock time
   * its advert left, or undefined when the executor did not send it (left to the state machine).
   * Returns false when it cannot run the plan (the shell then arms its own timer).
   */
  run(plan: TimerPlan, keepPhase: boolean, fired: (sentAt: number | undefined, done?: NativeTakeover) => void): boolean;
  cancel(): void;
  /**
   * When (clock time) the executor's thread last saw a packet of this instance's VRID arrive, if it
   * watches the interface: an advert the event loop reads late then counts from its arrival.
   */
  heardAt?(): number | undefined;
  /** Adverts it has sent so far. */
  readonly sent: number;
  /**
   * The largest lateness (µs) of an advert it sent, and of that how late its thread woke up
   * (the rest: sending the adverts due before it), since the instance started.
   */
  readonly lateness?: { maxLateUs: number; maxWakeLateUs: number };
}

/**
 * The receive time of an advert: the loop's (`loopAt`, when its callback ran) or, if the executor's
 * thread saw the packet arrive earlier, that (`threadAt`: when it read the latest packet of the VRID,
 * having just read everything queued, so never an earlier packet's time than this one's while its
 * socket drops nothing). A loop that stalled reads the advert late; counting the down timer from
 * the arrival keeps the takeover on time. Bounded: a time after the loop's is not this packet's, and
 * one older than an advert interval is not trusted (the loop is then a whole advert behind anyway).
 */
export function arrivalTime(loopAt: number | undefined, threadAt: number | undefined, intervalMs: number): number | undefined {
  if (loopAt === undefined || threadAt === undefined) return loopAt;
  return threadAt <= loopAt && threadAt >= loopAt - intervalMs ? threadAt : loopAt;
}

/** A takeover the executor ran: its advert left at advertAt, the loop heard of it at wokeAt (clock time). */
export interface TakeoverRecord {
  advertAt: number | undefined;
  wokeAt: number;
  /** What its thread did after the advert (VIPs, GARPs), if the shell handed that over. */
  done?: NativeTakeover | undefined;
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
  readonly counters: InstanceCounters;
  /** The executor's lateness figures (TimerExecutor.lateness), if it has any. */
  get senderLateness(): { maxLateUs: number; maxWakeLateUs: number } | undefined {
    return this.executor?.lateness;
  }

  /** Adverts sent from this thread (the executor counts its own). */
  #sentHere = 0;
  /** The plan the executor runs (null: none; the JS timer, if any, is the clock). */
  #plan: TimerPlan | null = null;
  /** The takeover advert at this priority already left through the executor: the next send_advert is it. */
  #present: number | undefined;
  /** The last takeover the executor ran: when its advert left and when the loop heard of it (clock time). */
  #takeover: TakeoverRecord | undefined;
  /** Listeners for every step (sync groups reconcile here). */
  readonly #observers: ((before: VrrpState, after: VrrpState) => void)[] = [];

  constructor(
    readonly name: string,
    params: VrrpParams,
    private expect: AdvertExpectation,
    private readonly effects: InstanceEffects,
    private readonly clock: Clock = spinClock,
    private readonly executor?: TimerExecutor,
  ) {
    this.#state = initialState(params);
    const sent = (): number => this.#sentHere + (this.executor?.sent ?? 0);
    this.counters = { advertsSent: 0, advertsReceived: 0, transitions: 0, drops: {} };
    Object.defineProperty(this.counters, 'advertsSent', { get: sent, enumerable: true });
  }

  get state(): VrrpState { return this.#state; }
  get vipsOwned(): boolean { return this.#vipsOwned; }
  /** Resolves when every queued VIP add/remove has been applied. */
  get settled(): Promise<void> { return this.#vipChain; }
  /**
   * The executor's latest takeover (advert sent at advertAt, the loop woke at wokeAt), taken once:
   * the shell's takeover timeline (manager.ts) reads it when the VIPs of that takeover are in.
   */
  takeTakeover(): TakeoverRecord | undefined {
    const t = this.#takeover;
    this.#takeover = undefined;
    return t;
  }

  /** Reload: new parameters and advert expectations; state and timers are kept. */
  reconfigure(params: VrrpParams, expect: AdvertExpectation): void {
    this.#state = reconfigure(this.#state, params);
    this.expect = expect;
    // The frames may have changed (addresses, authentication, destinations): hand them over again.
    if (this.#plan) {
      const plan = timerPlan(this.#state);
      const previous = this.#plan;
      this.#plan = null;
      if (plan) this.#runPlan(plan, previous.kind === 'periodic' && plan.kind === 'periodic');
      else {
        this.executor?.cancel();
        if (this.#state.timerAt !== null) this.#arm(this.#state.timerAt);
      }
    }
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
    const at = this.executor?.heardAt ? arrivalTime(receivedAt ?? this.clock.now(), this.executor.heardAt(), advertIntervalMs(advert.advertIntCs)) : receivedAt;
    this.dispatch({ type: 'advert', advert }, at);
  }

  /** Feeds one event to the state machine at `at` (default: now; never later than now). */
  dispatch(event: VrrpEvent, at?: number): void {
    const before = this.#state;
    const now = this.clock.now();
    const { state, actions } = step(before, event, at !== undefined && at < now ? at : now);
    this.#state = state;
    const plan = this.executor ? timerPlan(state) : null;
    const changed = !samePlan(plan, this.#plan);
    if (changed && this.#plan) {
      // Before any action: the executor must not send an advert of the old plan after one of the new
      // state (a priority-0 advert at shutdown, say). A MASTER whose priority changed keeps its phase.
      const keep = plan?.kind === 'periodic' && this.#plan.kind === 'periodic' && plan.at === this.#plan.at && plan.intervalMs === this.#plan.intervalMs;
      if (keep) this.#runPlan(plan, true);
      // A BACKUP's refreshed down timer: the new job replaces the old one (no advert goes out meanwhile).
      else if (plan?.kind === 'takeover' && this.#plan.kind === 'takeover') this.#plan = null;
      else {
        this.executor!.cancel();
        this.#plan = null;
      }
    }
    for (const a of actions) this.#execute(a, plan);
    this.#present = undefined;
    if (plan && !samePlan(plan, this.#plan)) this.#runPlan(plan, false);
    for (const o of this.#observers) o(before, state);
  }

  /** Hands `plan` to the executor; falls back to the JS timer if it cannot take it. */
  #runPlan(plan: TimerPlan, keepPhase: boolean): void {
    this.#disarm();
    this.#plan = plan;
    let ok = false;
    try {
      ok = this.executor!.run(plan, keepPhase, (sentAt, done) => this.#fired(plan, sentAt, done));
    } catch (err) {
      this.effects.onError(err, 'hand the timer to the advert sender');
    }
    if (!ok) {
      this.executor!.cancel();
      this.#plan = null;
      this.#arm(plan.at);
    }
  }

  /** The executor's takeover expired (and, if sentAt is set, its advert left at sentAt). */
  #fired(plan: TimerPlan, sentAt: number | undefined, done?: NativeTakeover): void {
    if (this.#plan !== plan) {
      // Replaced meanwhile: the machine has moved on (an advert the loop read after the thread's send
      // refreshed the timer). VIPs the thread already added are not the machine's: they go again.
      if (done?.vipsAt !== undefined) this.#revertNative();
      return;
    }
    if (sentAt !== undefined) {
      this.#expire(plan, sentAt, done);
      return;
    }
    // The thread held the advert back: a packet of our VRID arrived after the plan was handed over
    // and the loop may not have read it yet. The socket's turn first: an advert read there replaces
    // the plan, and the machine never sees a down timer that a live master refreshed. That turn is
    // the NEXT loop iteration's poll phase, not this one's: this report may run in a poll phase whose
    // epoll_wait returned before the packet arrived (behind a long callback of the same pass over the
    // loop's async handles, e.g. a batch of check results on a busy director), so the socket is not
    // polled again before this phase's setImmediate callbacks. An immediate queued from an immediate
    // runs in the next iteration, after its poll (timeout 0) has read every readable socket. Seen on
    // the wire without it: a busy backup taking over from a live master (bench/failover.ts busy).
    setImmediate(() => setImmediate(() => {
      if (this.#plan === plan) this.#expire(plan, undefined);
    }));
  }

  #expire(plan: TimerPlan, sentAt: number | undefined, done?: NativeTakeover): void {
    this.#plan = null;
    this.#takeover = { advertAt: sentAt, wokeAt: this.clock.now(), done };
    // Its advert is out (and counted by the executor): the machine's send_advert below skips it.
    if (sentAt !== undefined) this.#present = plan.priority;
    // The step happens when the timer was due at the earliest, so the machine never sees it early.
    this.dispatch({ type: 'timer' }, Math.max(plan.at, sentAt ?? plan.at));
    // The machine decides: a takeover plan becomes MASTER, whose add_vips reconciles what the thread
    // did. Should it not have, the thread's VIPs are not the machine's and go.
    if (done?.vipsAt !== undefined && !this.#vipsOwned) {
      this.#takeover = undefined;
      this.#revertNative();
    }
  }

  /** Takes out VIPs the executor's thread added for a takeover the machine did not make. */
  #revertNative(): void {
    if (this.#vipsOwned) return;
    this.#queueVips(async () => { if (!this.#vipsOwned) await this.effects.removeVips(); }, 'remove the VIPs of a takeover that did not happen');
  }

  #execute(a: VrrpAction, plan: TimerPlan | null): void {
    switch (a.type) {
      case 'send_advert':
        if (this.#present === a.priority) {
          this.#present = undefined;
          return;
        }
        this.#sentHere++;
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
        // With a plan the executor is the timer (armed after the actions, see dispatch).
        if (plan) this.#disarm();
        else this.#arm(a.at);
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
    if (this.#plan) this.executor?.cancel();
    this.#plan = null;
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
