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
 * Changes of (health, dynamicWeight) are reported through onChange, only when they change;
 * nothing is reported for the initial 'unknown'. A server without checks reports 'up' once
 * at start(). stop() aborts the in-flight attempts (AbortSignal), clears the timers and
 * suppresses any later report; it is idempotent.
 */
import type { CheckConfig } from '../config/types.js';
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
  #checksRun = 0;
  #failures = 0;
  #lastDurationMs: number | null = null;

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
    for (const slot of this.#slots) {
      const warmup = Math.max(0, slot.cfg.warmup);
      const delay = warmup > 0 ? Math.floor(this.#random() * warmup * 1000) : 0;
      this.#schedule(slot, delay);
    }
  }

  /** Aborts in-flight attempts and clears the timers; no report follows. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const slot of this.#slots) {
      if (slot.hasTimer) this.#clock.clearTimeout(slot.timer);
      slot.hasTimer = false;
    }
    this.#abort.abort();
  }

  stats(): HealthStats {
    return {
      health: this.#health,
      dynamicWeight: this.#dynamicWeight,
      checksRun: this.#checksRun,
      failures: this.#failures,
      lastDurationMs: this.#lastDurationMs,
      checkers: this.#slots.map((s) => ({
        type: s.cfg.type,
        state: s.state,
        checksRun: s.checksRun,
        failures: s.failures,
        unknowns: s.unknowns,
        lastDurationMs: s.lastDurationMs,
        lastDetail: s.lastDetail,
        retrying: s.retryIt,
      })),
    };
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
    const durationMs = Math.max(0, this.#clock.now() - started);

    slot.checksRun++;
    this.#checksRun++;
    slot.lastDurationMs = durationMs;
    this.#lastDurationMs = durationMs;
    slot.lastDetail = result.detail;

    const retries = slot.cfg.type === 'FILE_CHECK' ? 0 : slot.cfg.retry;
    let nextMs: number;
    if (result.unknown) {
      slot.state = 'unknown';
      slot.unknowns++;
      nextMs = slot.cfg.delay_loop * 1000;
    } else if (result.ok) {
      slot.state = 'up';
      slot.retryIt = 0;
      if (result.weight !== undefined) slot.miscWeight = result.weight;
      if (slot.cfg.type === 'FILE_CHECK') slot.fileOffset = result.weightOffset;
      nextMs = slot.cfg.delay_loop * 1000;
    } else {
      slot.failures++;
      this.#failures++;
      if (slot.state !== 'down' && slot.retryIt < retries) {
        slot.retryIt++;
        nextMs = slot.cfg.delay_before_retry * 1000;
      } else {
        slot.state = 'down';
        slot.retryIt = 0;
        if (slot.cfg.type === 'FILE_CHECK') slot.fileOffset = undefined;
        nextMs = slot.cfg.delay_loop * 1000;
      }
    }
    this.#schedule(slot, nextMs);
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
