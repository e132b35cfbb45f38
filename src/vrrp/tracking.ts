/**
 * Priority tracking (keepalived vrrp_track.c), pure.
 *
 * Effective priority = base priority + the contribution of every tracked object (track_interface,
 * track_script, track_file...), clamped to 1..254. keepalived's rule for an object of weight W:
 *   W > 0: +W while the object is OK, nothing while it has failed;
 *   W < 0: nothing while OK, +W (a decrease) while it has failed;
 *   `reverse` negates the contribution (keepalived's weight_multiplier of -1);
 *   W = 0: the object does not change the priority; its failure puts the instance in FAULT.
 * An object with no result yet (a script still in its initial state) contributes nothing; with
 * weight 0 it holds the instance in FAULT, as keepalived keeps such an instance out of BACKUP until
 * the script has reported (num_script_init). The address owner (base priority 255) is never changed.
 *
 * The vrrp_script rise/fall counter is a separate pure step function below.
 */
import { KeepaliveError } from '../util/errors.js';
import type { VrrpEvent } from './state.js';
import { VRRP_PRIO_OWNER } from './state.js';

/** keepalived accepts weights in -253..253. */
export const MAX_TRACK_WEIGHT = 253;

export interface TrackedObject {
  /** Unique name, used as the FAULT source for weight-0 objects (e.g. "interface:eth1", "script:chk"). */
  name: string;
  weight: number;
  reverse?: boolean;
  /** true: up / succeeded; false: down / failed; null: no result yet. */
  ok: boolean | null;
  /**
   * The object is not tracked at all: a vrrp_script refused by script security, which keepalived
   * removes from the instance. It contributes nothing and never holds the instance in FAULT.
   */
  disabled?: boolean;
}

export interface TrackingResult {
  /** Effective priority for the state machine's `priority` event. */
  priority: number;
  /** Names of weight-0 objects that hold the instance in FAULT, in input order. */
  faults: string[];
}

function checkWeight(obj: TrackedObject): void {
  if (!Number.isInteger(obj.weight) || Math.abs(obj.weight) > MAX_TRACK_WEIGHT) {
    throw new KeepaliveError('E_CONFIG_INVALID', `track weight of ${obj.name} must be an integer in -${MAX_TRACK_WEIGHT}..${MAX_TRACK_WEIGHT}, got ${obj.weight}`);
  }
}

/** What one tracked object adds to the base priority right now. */
export function trackedContribution(obj: TrackedObject): number {
  checkWeight(obj);
  if (obj.weight === 0 || obj.ok === null || obj.disabled) return 0;
  const applies = obj.weight > 0 ? obj.ok : !obj.ok;
  if (!applies) return 0;
  return obj.reverse ? -obj.weight : obj.weight;
}

export function computeTracking(basePriority: number, objects: readonly TrackedObject[]): TrackingResult {
  objects.forEach(checkWeight);
  const faults = objects.filter((o) => o.weight === 0 && o.ok !== true && !o.disabled).map((o) => o.name);
  if (basePriority === VRRP_PRIO_OWNER) return { priority: VRRP_PRIO_OWNER, faults };
  const total = objects.reduce((sum, o) => sum + trackedContribution(o), basePriority);
  // keepalived vrrp_set_effective_priority: below 1 -> 1, 255 and above -> 254 (only the configured
  // owner may advertise 255).
  const priority = Math.min(VRRP_PRIO_OWNER - 1, Math.max(1, total));
  return { priority, faults };
}

/**
 * The state-machine events that move an instance from one tracking result to the next: fault /
 * fault_clear for each weight-0 object that changed, then `priority` if it changed. Pass `prev` null
 * for the first evaluation (before `start`), when every fault and the priority are reported.
 */
export function trackingEvents(prev: TrackingResult | null, next: TrackingResult): VrrpEvent[] {
  const before = new Set(prev?.faults ?? []);
  const after = new Set(next.faults);
  const events: VrrpEvent[] = [];
  for (const f of next.faults) if (!before.has(f)) events.push({ type: 'fault', source: f });
  for (const f of prev?.faults ?? []) if (!after.has(f)) events.push({ type: 'fault_clear', source: f });
  if (prev === null || prev.priority !== next.priority) events.push({ type: 'priority', priority: next.priority });
  return events;
}

// ---------------------------------------------------------------------------------------------
// vrrp_script rise/fall

export interface ScriptConfig {
  /** Consecutive successes needed to go from failed to OK. */
  rise: number;
  /** Consecutive failures needed to go from OK to failed. */
  fall: number;
  /** keepalived `init_fail`: start in the failed state instead of "unknown". */
  initFail?: boolean;
}

/**
 * keepalived's counter: `result` in 0..rise+fall-1; the script is OK when result >= rise. Success
 * counts up to rise, then jumps to the top (so `fall` failures are needed to fail); failure counts
 * down while above rise, then drops to 0 (so `rise` successes are needed to recover).
 */
export interface ScriptState {
  readonly result: number;
  /** False until the first result (keepalived SCRIPT_INIT_STATE_INIT / _FAILED). */
  readonly initDone: boolean;
}

export interface ScriptStepResult {
  state: ScriptState;
  /** The OK/failed status after this result. */
  ok: boolean;
  /** Whether the status changed (from unknown counts as a change): tracking must be re-evaluated. */
  changed: boolean;
}

function checkScriptConfig(cfg: ScriptConfig): void {
  if (!Number.isInteger(cfg.rise) || cfg.rise < 1 || !Number.isInteger(cfg.fall) || cfg.fall < 1) {
    throw new KeepaliveError('E_CONFIG_INVALID', `script rise and fall must be integers >= 1, got rise=${cfg.rise} fall=${cfg.fall}`);
  }
}

export function initialScriptState(cfg: ScriptConfig): ScriptState {
  checkScriptConfig(cfg);
  // keepalived vrrp_init_script: "one success is enough" / "assume failed by config".
  return { result: cfg.initFail ? 0 : cfg.rise - 1, initDone: false };
}

/** true OK, false failed, null unknown (no result yet and not init_fail). */
export function scriptStatus(cfg: ScriptConfig, s: ScriptState): boolean | null {
  if (!s.initDone && !cfg.initFail) return null;
  return s.result >= cfg.rise;
}

/** Feed one script outcome (exit 0 = success; a timeout or signal counts as failure). */
export function scriptStep(cfg: ScriptConfig, s: ScriptState, success: boolean): ScriptStepResult {
  checkScriptConfig(cfg);
  const top = cfg.rise + cfg.fall - 1;
  let result: number;
  if (success) result = s.result < cfg.rise - 1 ? s.result + 1 : top;
  else result = s.result > cfg.rise ? s.result - 1 : 0;
  const state: ScriptState = { result, initDone: true };
  const before = scriptStatus(cfg, s);
  const ok = scriptStatus(cfg, state) as boolean;
  return { state, ok, changed: before !== ok };
}

// ---------------------------------------------------------------------------------------------
// vrrp_track_process: matching a process and its quorum (keepalived track_process.c)

export type ParamMatchMode = 'none' | 'exact' | 'partial' | 'initial';

export interface ProcessMatchSpec {
  /** Compared with /proc/PID/comm, or with argv[0] when fullCommand. */
  name: string;
  /** Parameters after argv[0]; only compared when paramMatch is not 'none'. */
  params: readonly string[];
  paramMatch: ParamMatchMode;
  fullCommand: boolean;
}

/** One process as /proc shows it. */
export interface ProcessEntry {
  pid: number;
  /** /proc/PID/comm (the name, at most 15 characters). */
  comm: string;
  /** /proc/PID/cmdline split at NULs; empty for kernel threads. */
  argv: readonly string[];
}

/**
 * keepalived's rules: parameters imply full_command (argv[0] must equal the name exactly) and exact
 * parameter matching unless param_match says otherwise; `param_match` without parameters means the
 * process must have none. Plain names match the comm field exactly (not a regex: like pgrep '^name$').
 */
export function processMatchSpec(cfg: { process: readonly string[]; param_match?: 'exact' | 'partial' | 'initial'; full_command: boolean }): ProcessMatchSpec {
  const [name = '', ...params] = cfg.process;
  const paramMatch: ParamMatchMode = cfg.param_match ?? (params.length > 0 ? 'exact' : 'none');
  return { name, params, paramMatch, fullCommand: cfg.full_command || paramMatch !== 'none' };
}

export function processMatches(spec: ProcessMatchSpec, p: ProcessEntry): boolean {
  if (spec.fullCommand ? p.argv[0] !== spec.name : p.comm !== spec.name) return false;
  if (spec.paramMatch === 'none') return true;
  const have = p.argv.slice(1);
  const want = spec.params;
  if (spec.paramMatch === 'exact') return have.length === want.length && want.every((w, i) => have[i] === w);
  if (have.length < want.length) return false;
  if (spec.paramMatch === 'partial') return want.every((w, i) => have[i] === w);
  // initial: the last configured parameter may be a prefix of the process's.
  return want.every((w, i) => (i === want.length - 1 ? have[i]!.startsWith(w) : have[i] === w));
}

/** Success while quorum <= matching processes <= quorum_max (unset = unlimited). */
export function processQuorumMet(count: number, quorum: number, quorumMax?: number): boolean {
  return count >= quorum && (quorumMax === undefined || count <= quorumMax);
}

/**
 * What to do when the quorum result may have changed: `{ ok }` to report now, `{ after, ok }` to
 * report after a delay if it still holds then (fork_delay when gaining, terminate_delay when
 * losing), null when nothing changes. The first result (prev null, at start) is reported at once.
 */
export function processTransition(prev: boolean | null, met: boolean, delays: { forkDelayMs: number; terminateDelayMs: number }): { ok: boolean; after?: number } | null {
  if (prev === met) return null;
  if (prev === null) return { ok: met };
  const after = met ? delays.forkDelayMs : delays.terminateDelayMs;
  return after > 0 ? { ok: met, after } : { ok: met };
}
