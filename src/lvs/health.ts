/**
 * The per-real-server check runner: runs each of the server's checkers on its own schedule
 * and folds their states into the server's health, the input of src/lvs/pool.ts.
 *
 * Per checker, as keepalived's checker threads do (check_udp.c udp_epilog() is the model):
 * - the first attempt runs after a random delay in [0, warmup] seconds (injected RNG);
 * - after every attempt the next one is scheduled from the attempt's END: delay_loop
 *   seconds, or delay_before_retry while retrying;
 * - success: the checker is up at once (first success), the retry count resets;
 * - failure while the checker is up or not yet known: retried `retry` times, each after
 *   delay_before_retry; only when the last retry fails too is the checker down. So with
 *   retry = N a checker goes down after N + 1 consecutive failed attempts;
 * - failure while already down: no retries, next attempt after delay_loop;
 * - FILE_CHECK has no retries (keepalived reacts to the file at once; the value is a state,
 *   not a probe), whatever `retry` says.
 * - an attempt whose result is `unknown` (this director ran out of descriptors, or the script was
 *   refused) is no failure: the checker becomes 'unknown' (the pool keeps the server's previous
 *   state), the retry count is kept, and the next attempt follows after delay_loop.
 *
 * The server's health: 'down' as soon as any checker is down, else 'unknown' while any
 * checker has not reported yet, else 'up' (keepalived: a real server is alive only while all
 * its checkers are up). A server without checks is always 'up'.
 *
 * Weight (keepalived update_svr_wgt() arithmetic): effective = configured weight
 *   + sum over MISC_CHECK misc_dynamic checkers that have set a weight w: (w - configured)
 *   + sum over FILE_CHECK checkers that are up: their weightOffset.
 * With a single misc_dynamic checker that is exactly "weight = exit status - 2". A MISC
 * weight persists through exit 0 and through failures (keepalived leaves it); a FILE offset
 * is removed while that checker is down. `dynamicWeight` is undefined until some checker
 * asks for a weight (or while the file offsets sum to 0 and no MISC weight was set).
 *
 * Native schedule: a checker that offers `native` (TCP_CHECK, HTTP_GET without digest / regex:
 * one exchange of the check engine, verdict from the status alone) has its whole schedule run by
 * the engine's thread (native/check_engine.c jobs): the same warmup delay (drawn here), the same
 * steps (checkStep() below, mirrored there), next attempt from the attempt's end. The engine hands
 * an attempt over only when it may change something here (mustReport() below: the checker's state
 * or retry count changed, or the outcome differs from the last one handed over), so a steady
 * successful check costs this event loop nothing. The state here stays authoritative: every
 * handed-over attempt goes through checkStep() again, and an attempt that was not handed over
 * could not have changed it. Counters (attempts, failures, unknowns, last duration) are read
 * from the engine by stats(); onAttempt is called for the handed-over attempts only. Used with
 * the real clock only (an injected clock keeps every checker on this event loop).
 *
 * Changes of (health, dynamicWeight) are reported through onChange, only when they change;
 * nothing is reported for the initial 'unknown'. A server without checks reports 'up' once
 * at start(). stop() aborts the in-flight attempts (AbortSignal), clears the timers and
 * suppresses any later report; it is idempotent.
 */
import type { CheckConfig } from '../config/types.js';
import { CheckEngine, type CheckJob } from '../net/native.js';
import { checkTarget, createChecker } from './check/index.js';
import type { Checker, CheckerOptions, CheckResult } from './check/types.js';
import type { CheckHealth } from './pool.js';

export type { CheckHealth };
export type CheckerState = CheckHealth;

/** Time source and timers (structurally the same as src/vrrp/instance.ts Clock). */
export interface HealthClock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Granularity of the shared check timer, ms: attempts due in the same slot start together. */
export const CHECK_TIMER_SLOT_MS = 10;

interface SlotTimer { fn: (() => void) | undefined }

/**
 * One timer for all checks, in slots of CHECK_TIMER_SLOT_MS: an attempt due at t starts at the end
 * of t's slot (within Node's timer precision, at most one slot late). With 1,000 checks a second the event loop
 * then wakes about 100 times a second for them instead of 1,000, and the attempts of one slot
 * reach the check engine in one hand-over.
 */
export function slottedHealthClock(slotMs: number = CHECK_TIMER_SLOT_MS): HealthClock {
  const slots = new Map<number, SlotTimer[]>();
  const fire = (slot: number): void => {
    const due = slots.get(slot);
    slots.delete(slot);
    if (!due) return;
    for (const t of due) {
      const fn = t.fn;
      t.fn = undefined;
      fn?.();
    }
  };
  return {
    now: () => performance.now(),
    setTimeout: (fn, ms) => {
      const now = performance.now();
      const slot = Math.ceil((now + Math.max(0, ms)) / slotMs);
      const t: SlotTimer = { fn };
      const list = slots.get(slot);
      if (list) list.push(t);
      else {
        slots.set(slot, [t]);
        setTimeout(fire, Math.max(0, slot * slotMs - now), slot);
      }
      return t;
    },
    clearTimeout: (h) => {
      (h as SlotTimer).fn = undefined;
    },
  };
}

export const realHealthClock: HealthClock = slottedHealthClock();

/** One checker's retry position: its state and the retries done in the current failure sequence. */
export interface CheckPosition {
  state: CheckerState;
  retryIt: number;
}

/** What one finished attempt does to its checker (keepalived's retry semantics, see the top). */
export interface CheckStep extends CheckPosition {
  /** Delay before the next attempt, from this attempt's end. */
  nextMs: number;
  /** The attempt counts as a failure (check_failures_total). */
  failed: boolean;
}

/**
 * The pure step of one checker: from its position and an attempt's result to the next position
 * and delay. `retries`: the checker's `retry` (0 for FILE_CHECK). native/check_engine.c job_step()
 * does the same steps for the native schedule.
 */
export function checkStep(prev: CheckPosition, result: Pick<CheckResult, 'ok' | 'unknown'>, retries: number, delayLoopMs: number, retryDelayMs: number): CheckStep {
  if (result.unknown) return { state: 'unknown', retryIt: prev.retryIt, nextMs: delayLoopMs, failed: false };
  if (result.ok) return { state: 'up', retryIt: 0, nextMs: delayLoopMs, failed: false };
  if (prev.state !== 'down' && prev.retryIt < retries) return { state: prev.state, retryIt: prev.retryIt + 1, nextMs: retryDelayMs, failed: true };
  return { state: 'down', retryIt: 0, nextMs: delayLoopMs, failed: true };
}

/** An attempt's outcome as the engine compares them: the exchange's code and HTTP status. */
export interface CheckOutcome {
  code: number;
  status: number;
}

/**
 * The engine's filter (native/check_engine.c job_done()), stated here: an attempt is handed over
 * when it is the checker's first, when it moved the checker (state or retry count), or when its
 * outcome differs from the last one handed over. An attempt that is not handed over leaves the
 * position as it was and has the outcome (so the result and its detail) of the last one handed over.
 */
export function mustReport(lastReported: CheckOutcome | undefined, before: CheckPosition, after: CheckPosition, outcome: CheckOutcome): boolean {
  return lastReported === undefined || before.state !== after.state || before.retryIt !== after.retryIt
    || outcome.code !== lastReported.code || outcome.status !== lastReported.status;
}

export type HealthChangeHandler = (health: CheckHealth, dynamicWeight: number | undefined, detail: string) => void;

/** One finished attempt, for logs and metrics (check_duration_seconds, check_failures_total). */
export interface CheckAttempt {
  /** Index of the check in the real server's `check` array. */
  index: number;
  type: CheckConfig['type'];
  result: CheckResult;
  durationMs: number;
  /** The checker's state after this attempt. */
  state: CheckerState;
  /** Retries done so far in the current failure sequence (0 when not retrying). */
  retrying: number;
}

export interface HealthRunnerOptions {
  /** The real server's checks (defaults filled by the config loader). */
  checks: readonly CheckConfig[];
  /** The real server's configured weight (base of the dynamic weight). */
  weight: number;
  onChange: HealthChangeHandler;
  /** Called after every attempt. */
  onAttempt?: (attempt: CheckAttempt) => void;
  clock?: HealthClock;
  /** Uniform [0, 1), for the warmup delay. Default Math.random. */
  random?: () => number;
  /** Builds the checker of check `index`. Default: createChecker(cfg, checkTarget(cfg), checkerOptions). */
  checkerFactory?: (cfg: CheckConfig, index: number) => Checker;
  checkerOptions?: CheckerOptions;
  /**
   * Hand the schedule of the checkers that offer it to the native check engine (see the top).
   * Default: true unless `clock` is given.
   */
  nativeSchedule?: boolean;
}

export interface CheckerStats {
  type: CheckConfig['type'];
  state: CheckerState;
  checksRun: number;
  failures: number;
  /** Attempts that could not be made (result unknown: no descriptor, script refused). */
  unknowns: number;
  /** Duration of the last finished attempt, ms; null before the first. */
  lastDurationMs: number | null;
  lastDetail: string | null;
  retrying: number;
}

export interface HealthStats {
  health: CheckHealth;
  dynamicWeight: number | undefined;
  /** Attempts finished, all checkers. */
  checksRun: number;
  /** Failed attempts (retries included), all checkers. */
  failures: number;
  /** Duration of the most recently finished attempt of any checker, ms. */
  lastDurationMs: number | null;
  checkers: CheckerStats[];
}

interface Slot {
  readonly index: number;
  readonly cfg: CheckConfig;
  readonly checker: Checker;
  state: CheckerState;
  retryIt: number;
  timer: unknown;
  hasTimer: boolean;
  miscWeight: number | undefined;
  fileOffset: number | undefined;
  checksRun: number;
  failures: number;
  unknowns: number;
  lastDurationMs: number | null;
  lastDetail: string | null;
  /** clock.now() when the last attempt ended (JS schedule). */
  finishedAt: number | null;
  /** The engine runs this checker's schedule. */
  job: CheckJob | undefined;
}

export class HealthRunner {
  readonly #opts: HealthRunnerOptions;
  readonly #clock: HealthClock;
  readonly #random: () => number;
  readonly #slots: Slot[];
  readonly #abort = new AbortController();
  #started = false;
  #stopped = false;
  #health: CheckHealth;
  #dynamicWeight: number | undefined = undefined;

  constructor(opts: HealthRunnerOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realHealthClock;
    this.#random = opts.random ?? Math.random;
    const factory = opts.checkerFactory
      ?? ((cfg: CheckConfig) => createChecker(cfg, checkTarget(cfg), opts.checkerOptions ?? {}));
    this.#slots = opts.checks.map((cfg, index) => ({
      index,
      cfg,
      checker: factory(cfg, index),
      state: 'unknown',
      retryIt: 0,
      timer: undefined,
      hasTimer: false,
      miscWeight: undefined,
      fileOffset: undefined,
      checksRun: 0,
      failures: 0,
      unknowns: 0,
      lastDurationMs: null,
      lastDetail: null,
      finishedAt: null,
      job: undefined,
    }));
    this.#health = 'unknown';
  }

  get health(): CheckHealth { return this.#health; }
  get dynamicWeight(): number | undefined { return this.#dynamicWeight; }
  get running(): boolean { return this.#started && !this.#stopped; }

  /** Starts the checkers (first attempts after their warmup). Idempotent; no-op after stop(). */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    if (this.#slots.length === 0) {
      this.#health = 'up';
      this.#opts.onChange('up', undefined, 'no checks configured');
      return;
    }
    const nativeOk = this.#opts.nativeSchedule ?? this.#opts.clock === undefined;
    for (const slot of this.#slots) {
      const warmup = Math.max(0, slot.cfg.warmup);
      const delay = warmup > 0 ? Math.floor(this.#random() * warmup * 1000) : 0;
      if (nativeOk && slot.checker.native && this.#startJob(slot, delay)) continue;
      this.#schedule(slot, delay);
    }
  }

  /** Hands the slot's schedule to the engine; false when the engine refused (then JS schedules it). */
  #startJob(slot: Slot, firstDelayMs: number): boolean {
    const native = slot.checker.native!;
    try {
      slot.job = CheckEngine.get().job(native.spec, {
        firstDelayMs,
        delayLoopMs: slot.cfg.delay_loop * 1000,
        retryDelayMs: slot.cfg.delay_before_retry * 1000,
        retries: this.#retries(slot),
        okStatuses: native.okStatuses,
      }, (code, status, elapsedUs) => {
        if (this.#stopped) return;
        this.#record(slot, native.judge(code, status), elapsedUs / 1000);
      });
      return true;
    } catch {
      return false;
    }
  }

  #retries(slot: Slot): number {
    return slot.cfg.type === 'FILE_CHECK' ? 0 : slot.cfg.retry;
  }

  /** Aborts in-flight attempts and clears the timers; no report follows. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const slot of this.#slots) {
      if (slot.hasTimer) this.#clock.clearTimeout(slot.timer);
      slot.hasTimer = false;
      slot.job?.stop();
    }
    this.#abort.abort();
  }

  stats(): HealthStats {
    let checksRun = 0;
    let failures = 0;
    let lastDurationMs: number | null = null;
    let latest = Infinity;
    const now = this.#clock.now();
    const checkers = this.#slots.map((s): CheckerStats => {
      let c = { checksRun: s.checksRun, failures: s.failures, unknowns: s.unknowns, lastDurationMs: s.lastDurationMs };
      let since = s.finishedAt === null ? null : now - s.finishedAt;
      if (s.job) {
        // The engine counts every attempt, handed over or not.
        const j = s.job.stats();
        c = { checksRun: j.attempts, failures: j.failures, unknowns: j.unknowns, lastDurationMs: j.lastDurationMs };
        since = j.sinceLastMs;
      }
      checksRun += c.checksRun;
      failures += c.failures;
      if (since !== null && since < latest) { latest = since; lastDurationMs = c.lastDurationMs; }
      return { type: s.cfg.type, state: s.state, ...c, lastDetail: s.lastDetail, retrying: s.retryIt };
    });
    return { health: this.#health, dynamicWeight: this.#dynamicWeight, checksRun, failures, lastDurationMs, checkers };
  }

  #schedule(slot: Slot, ms: number): void {
    if (this.#stopped) return;
    slot.hasTimer = true;
    slot.timer = this.#clock.setTimeout(() => {
      slot.hasTimer = false;
      void this.#attempt(slot);
    }, ms);
  }

  async #attempt(slot: Slot): Promise<void> {
    if (this.#stopped) return;
    const started = this.#clock.now();
    let result: CheckResult;
    try {
      result = await slot.checker.run(this.#abort.signal);
    } catch (err) {
      // Checkers never reject; a bug in one must not stop the loop.
      result = { ok: false, detail: `checker error: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (this.#stopped) return;
    const now = this.#clock.now();
    const durationMs = Math.max(0, now - started);
    slot.checksRun++;
    slot.lastDurationMs = durationMs;
    slot.finishedAt = now;
    this.#schedule(slot, this.#step(slot, result));
    this.#report(slot, result, durationMs);
  }

  /** A handed-over attempt of the native schedule (the engine has scheduled the next one). */
  #record(slot: Slot, result: CheckResult, durationMs: number): void {
    this.#step(slot, result);
    this.#report(slot, result, durationMs);
  }

  /** Applies a finished attempt to its checker (checkStep); returns the delay before the next attempt. */
  #step(slot: Slot, result: CheckResult): number {
    slot.lastDetail = result.detail;
    const step = checkStep(slot, result, this.#retries(slot), slot.cfg.delay_loop * 1000, slot.cfg.delay_before_retry * 1000);
    slot.state = step.state;
    slot.retryIt = step.retryIt;
    if (result.unknown) slot.unknowns++;
    else if (step.failed) slot.failures++;
    if (result.ok && !result.unknown) {
      if (result.weight !== undefined) slot.miscWeight = result.weight;
      if (slot.cfg.type === 'FILE_CHECK') slot.fileOffset = result.weightOffset;
    } else if (step.state === 'down' && slot.cfg.type === 'FILE_CHECK') slot.fileOffset = undefined;
    return step.nextMs;
  }

  #report(slot: Slot, result: CheckResult, durationMs: number): void {
    this.#opts.onAttempt?.({ index: slot.index, type: slot.cfg.type, result, durationMs, state: slot.state, retrying: slot.retryIt });
    this.#update(slot, result);
  }

  /** Folds the checkers' states; reports (and only then builds the detail text) on a change. */
  #update(slot: Slot, result: CheckResult): void {
    let health: CheckHealth = 'up';
    for (const s of this.#slots) {
      if (s.state === 'down') { health = 'down'; break; }
      if (s.state === 'unknown') health = 'unknown';
    }
    const base = this.#opts.weight;
    let anyMisc = false;
    let sum = 0;
    for (const s of this.#slots) {
      if (s.miscWeight !== undefined) { anyMisc = true; sum += s.miscWeight - base; }
      if (s.fileOffset !== undefined && s.state === 'up') sum += s.fileOffset;
    }
    const dynamicWeight = anyMisc || sum !== 0 ? base + sum : undefined;
    if (health === this.#health && dynamicWeight === this.#dynamicWeight) return;
    this.#health = health;
    this.#dynamicWeight = dynamicWeight;
    this.#opts.onChange(health, dynamicWeight, `${slot.cfg.type}[${slot.index}]: ${result.detail}`);
  }
}
