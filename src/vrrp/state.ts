/**
 * The VRRP state machine as a pure step function: `step(state, event, now) -> { state, actions }`.
 *
 * Nothing here reads a clock or touches the network: `now` is injected (milliseconds on any monotonic
 * clock, fractional values allowed; see timing.ts for why), and every side effect is returned as an
 * action for the instance shell to execute in order. The shell keeps exactly one timer per instance:
 * `set_timer` replaces any pending deadline, `cancel_timer` drops it, and when it fires the shell feeds
 * a `timer` event back in. A state change always starts with a `transition` action (for logs and
 * metrics, nothing to execute) followed by the side effects in execution order, e.g. entering MASTER:
 * send_advert, add_vips, announce, set_timer, notify; leaving MASTER for BACKUP: remove_vips, notify,
 * set_timer(Master_Down_Interval).
 *
 * Behaviour follows keepalived 2.2 (vrrp.c, vrrp_scheduler.c) rather than the bare RFC where they
 * differ, because we must interoperate with keepalived peers and operators expect its semantics:
 *  - a MASTER that hears a lower-priority advert answers at once with its own advert (unless
 *    `lowerPrioNoAdvert`), so a lower-priority router that wrongly became master yields quickly;
 *  - a BACKUP compares the advert priority with `>=` only (no address tie-break): an equal-priority
 *    backup never preempts a live master; the address tie-break only applies between two MASTERs;
 *  - VRRPv3 backups learn Master_Adver_Interval from the master's adverts, and the skew uses the
 *    learned interval and the *effective* (tracked) priority;
 *  - `preempt_delay` starts when a backup first accepts an advert from a lower-priority master (it is
 *    reset whenever the instance (re-)enters BACKUP or hears an advert of priority >= its own); until
 *    it expires such adverts still refresh the down timer, afterwards they are ignored and the
 *    already-running down timer expires (keepalived 2.2 no longer starts the delay at config load);
 *  - `state MASTER` on a non-owner does not mean "start as master": keepalived starts it in BACKUP with
 *    a shortened down timer (Adver_Interval + minimum skew), and clears nopreempt/preempt_delay for it;
 *  - the address owner (priority 255, `state MASTER` by default) goes straight to MASTER at start, its
 *    priority is never changed by tracking, and if another router also claims 255 keepalived reports a
 *    configuration error and drops its own priority to 254.
 *
 * One addition of ours, the start-up hold (`hold` event): the daemon starts the VRRP engine before
 * its data plane, health checks and connection sync are ready, and holds every *takeover from a live
 * master* until they are (the precedent is keepalived's preempt_delay, here with "services ready" as
 * its end instead of a fixed time). While held:
 *  - every advert of a live master (priority > 0) is accepted as from a master we do not preempt:
 *    it refreshes the down timer, whatever its priority;
 *  - the owner / `state MASTER` instance does not go straight to MASTER: it starts in BACKUP with
 *    keepalived's short start-up down timer (Adver_Interval + minimum skew: one advert of a live
 *    master is enough to hear it);
 *  - the down timer still fires as always: a lone router (nothing heard within its down interval)
 *    or one whose master died or left (priority 0, Skew_Time) takes over as before the hold.
 * Release (the services are ready) lifts it: an owner / `state MASTER` instance that is still BACKUP
 * and heard no master of higher priority becomes MASTER at once (what its start would have done);
 * any other instance preempts the usual way (the next lower-priority advert is ignored, the down
 * timer expires), preempt_delay and nopreempt included.
 */
import { isIP } from 'node:net';
import { parseIp } from '../util/inet.js';
import { KeepaliveError } from '../util/errors.js';
import type { ReceivedAdvert, VrrpVersion } from './types.js';
import {
  DEFAULT_DOWN_TIMER_ADVERTS,
  advertIntervalMs,
  masterDownIntervalMs,
  skewTimeMs,
  startupMasterDownMs,
} from './timing.js';

export const VRRP_PRIO_OWNER = 255;
/** Priority carried by the advert a master sends when it stops (RFC 5798 §6.4.3 "Shutdown"). */
export const VRRP_PRIO_STOP = 0;

/** keepalived's state names. INIT: not started yet; STOP: shut down (can be started again). */
export type VrrpStateName = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT' | 'STOP';

/** Instance configuration, already parsed (not the TOML shape). */
export interface VrrpParams {
  vrid: number;
  version: VrrpVersion;
  /** Base priority 1..255 (255 = address owner). Tracking adjusts it through `priority` events. */
  priority: number;
  /** Our configured advertisement interval in centiseconds (v2: a multiple of 100). */
  advertIntCs: number;
  /** keepalived's default is to preempt; `nopreempt` is `preempt: false`. */
  preempt: boolean;
  preemptDelayMs: number;
  /** Our source address for adverts, used for the equal-priority tie-break. */
  primaryAddress: string;
  /** keepalived's `state`: a hint, see the module comment. Default: MASTER for the owner, else BACKUP. */
  initialState?: 'MASTER' | 'BACKUP';
  /** keepalived `lower_prio_no_advert` (default false). */
  lowerPrioNoAdvert?: boolean;
  /** keepalived `higher_prio_send_advert` (default false). */
  higherPrioSendAdvert?: boolean;
  /** RFC 5798 Accept_Mode; carried for the shell, it does not influence state. */
  accept?: boolean;
  /** keepalived `down_timer_adverts` (default 3). */
  downTimerAdverts?: number;
}

/** Parameters after keepalived's consistency fix-ups (vrrp_complete_instance). */
export interface ResolvedVrrpParams {
  readonly vrid: number;
  readonly version: VrrpVersion;
  readonly priority: number;
  readonly advertIntCs: number;
  readonly preempt: boolean;
  readonly preemptDelayMs: number;
  readonly primaryAddress: string;
  readonly initialState: 'MASTER' | 'BACKUP';
  readonly lowerPrioNoAdvert: boolean;
  readonly higherPrioSendAdvert: boolean;
  readonly accept: boolean;
  readonly downTimerAdverts: number;
}

export interface VrrpState {
  readonly params: ResolvedVrrpParams;
  readonly name: VrrpStateName;
  /** Normally params.priority; lowered to 254 after an owner conflict (as keepalived does). */
  readonly basePriority: number;
  /** The priority we advertise and compare with. */
  readonly effectivePriority: number;
  /** Interval used for the down timer: learned from the master in v3, our own otherwise. */
  readonly masterAdverIntCs: number;
  /** Mirror of the deadline the shell has armed (null: none). */
  readonly timerAt: number | null;
  /** keepalived `preempt_time`: when a pending preempt delay expires (null: not running). */
  readonly preemptAt: number | null;
  /** Active fault sources (track_interface names, scripts, sync group...). FAULT while non-empty. */
  readonly faults: readonly string[];
  /** Last master heard while BACKUP (for status/SNMP-like reporting). */
  readonly masterAddress: string | null;
  readonly masterPriority: number | null;
  /** Start-up hold (module comment): no takeover from a live master while true. */
  readonly held: boolean;
}

/** The fields of a received advert the state machine uses (a full ReceivedAdvert fits). */
export type AdvertInput = Pick<ReceivedAdvert, 'priority' | 'advertIntCs' | 'source'>;

export type VrrpEvent =
  | { type: 'start' }
  | { type: 'advert'; advert: AdvertInput }
  | { type: 'timer' }
  | { type: 'shutdown' }
  | { type: 'fault'; source: string }
  | { type: 'fault_clear'; source: string }
  | { type: 'priority'; priority: number }
  | { type: 'force'; to: 'MASTER' | 'BACKUP' }
  /** Start-up hold on (before `start`) or released (the daemon's services are ready). */
  | { type: 'hold'; held: boolean };

export type TransitionReason =
  | 'start'
  | 'master_down_timer'
  | 'higher_priority_advert'
  | 'fault'
  | 'fault_clear'
  | 'shutdown'
  | 'sync_group'
  | 'hold_released';

export type VrrpAction =
  | { type: 'send_advert'; priority: number }
  | { type: 'add_vips' }
  | { type: 'remove_vips' }
  | { type: 'announce' }
  /** One burst of gratuitous ARP/NA while staying MASTER (after a split brain: garp_lower_prio_repeat). */
  | { type: 'reannounce' }
  | { type: 'set_timer'; at: number }
  | { type: 'cancel_timer' }
  | { type: 'notify'; state: VrrpStateName }
  | { type: 'transition'; from: VrrpStateName; to: VrrpStateName; reason: TransitionReason };

export interface StepResult {
  state: VrrpState;
  actions: VrrpAction[];
}

function invalid(message: string): never {
  throw new KeepaliveError('E_CONFIG_INVALID', message);
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) invalid(`${name} must be an integer in ${min}..${max}, got ${value}`);
}

/** Validate and apply keepalived's fix-ups (vrrp_complete_instance). */
export function resolveParams(p: VrrpParams): ResolvedVrrpParams {
  checkInt('vrid', p.vrid, 1, 255);
  if (p.version !== 2 && p.version !== 3) invalid(`version must be 2 or 3, got ${String(p.version)}`);
  checkInt('priority', p.priority, 1, 255);
  // v3 carries 12 bits of centiseconds; v2 whole seconds in 8 bits (< 256 s).
  if (p.version === 3) checkInt('advertIntCs', p.advertIntCs, 1, 4095);
  else if (!Number.isInteger(p.advertIntCs) || p.advertIntCs % 100 !== 0 || p.advertIntCs < 100 || p.advertIntCs > 25500)
    invalid(`VRRPv2 advertIntCs must be a whole number of seconds (1..255) in centiseconds, got ${p.advertIntCs}`);
  if (!(p.preemptDelayMs >= 0) || !Number.isFinite(p.preemptDelayMs)) invalid(`preemptDelayMs must be >= 0, got ${p.preemptDelayMs}`);
  const downTimerAdverts = p.downTimerAdverts ?? DEFAULT_DOWN_TIMER_ADVERTS;
  checkInt('downTimerAdverts', downTimerAdverts, 1, 100);
  if (isIP(stripZone(p.primaryAddress)) === 0) invalid(`primaryAddress is not an IP address: ${p.primaryAddress}`);

  const owner = p.priority === VRRP_PRIO_OWNER;
  const initialState = p.initialState ?? (owner ? 'MASTER' : 'BACKUP');
  let preempt = p.preempt;
  let preemptDelayMs = p.preemptDelayMs;
  // keepalived: "nopreempt is incompatible with priority 255", and both nopreempt and preempt_delay
  // "will not work with initial state MASTER" -- it clears them with a warning.
  if (owner || initialState === 'MASTER') preempt = true;
  if (initialState === 'MASTER' || !preempt) preemptDelayMs = 0;
  return {
    vrid: p.vrid,
    version: p.version,
    priority: p.priority,
    advertIntCs: p.advertIntCs,
    preempt,
    preemptDelayMs,
    primaryAddress: p.primaryAddress,
    initialState,
    lowerPrioNoAdvert: p.lowerPrioNoAdvert ?? false,
    higherPrioSendAdvert: p.higherPrioSendAdvert ?? false,
    accept: p.accept ?? false,
    downTimerAdverts,
  };
}

/**
 * The same instance with new parameters (a reload that keeps the instance): state, timers, faults
 * and the learned master interval stay; a MASTER advertises its new interval from its next advert.
 * Effective priority follows through the usual `priority` event from tracking.
 */
export function reconfigure(state: VrrpState, params: VrrpParams): VrrpState {
  const resolved = resolveParams(params);
  return {
    ...state,
    params: resolved,
    basePriority: resolved.priority,
    masterAdverIntCs: state.name === 'MASTER' || state.masterAddress === null ? resolved.advertIntCs : state.masterAdverIntCs,
  };
}

/** A fresh instance in INIT. Tracking results may be fed (priority/fault events) before `start`. */
export function initialState(params: VrrpParams): VrrpState {
  const resolved = resolveParams(params);
  return {
    params: resolved,
    name: 'INIT',
    basePriority: resolved.priority,
    effectivePriority: resolved.priority,
    masterAdverIntCs: resolved.advertIntCs,
    timerAt: null,
    preemptAt: null,
    faults: [],
    masterAddress: null,
    masterPriority: null,
    held: false,
  };
}

// ---------------------------------------------------------------------------------------------
// Address comparison (the equal-priority tie-break)

function stripZone(addr: string): string {
  const i = addr.indexOf('%');
  return i === -1 ? addr : addr.slice(0, i);
}

/** The address as network-order bytes, or null if it is not an IP address. */
export function addressBytes(addr: string): number[] | null {
  const plain = stripZone(addr);
  const family = isIP(plain);
  const bytes = family === 4 || family === 6 ? parseIp(plain, family) : null;
  return bytes ? [...bytes] : null;
}

/**
 * Compare two addresses as unsigned big-endian byte strings (keepalived inet_inaddrcmp): <0, 0, >0.
 * Addresses of different families (or unparsable ones) compare as 0, as keepalived's vrrp_saddr_cmp
 * does, which makes an equal-priority advert neither win nor lose.
 */
export function compareAddresses(a: string, b: string): number {
  const x = addressBytes(a);
  const y = addressBytes(b);
  if (x === null || y === null || x.length !== y.length) return 0;
  for (let i = 0; i < x.length; i++) {
    const d = (x[i] as number) - (y[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Timers

/** Master_Down_Interval of this instance now (effective priority, learned interval). */
export function masterDownMs(s: VrrpState): number {
  return masterDownIntervalMs(s.params.version, s.effectivePriority, s.masterAdverIntCs, s.params.downTimerAdverts);
}

/** Skew_Time of this instance now. */
export function skewMs(s: VrrpState): number {
  return skewTimeMs(s.params.version, s.effectivePriority, s.masterAdverIntCs);
}

function isOwner(s: VrrpState): boolean {
  return s.basePriority === VRRP_PRIO_OWNER;
}

// ---------------------------------------------------------------------------------------------
// Transitions. Each returns the complete action list for entering the new state.

function transition(from: VrrpStateName, to: VrrpStateName, reason: TransitionReason): VrrpAction {
  return { type: 'transition', from, to, reason };
}

function enterMaster(s: VrrpState, now: number, reason: TransitionReason): StepResult {
  // Becoming master we advertise our own interval again (keepalived vrrp_state_become_master).
  const at = now + advertIntervalMs(s.params.advertIntCs);
  return {
    state: { ...s, name: 'MASTER', masterAdverIntCs: s.params.advertIntCs, timerAt: at, preemptAt: null, masterAddress: null, masterPriority: null },
    // The advert goes first so the previous master drops the VIPs before our GARPs arrive
    // (keepalived vrrp_state_master_tx sends before vrrp_state_become_master).
    actions: [
      transition(s.name, 'MASTER', reason),
      { type: 'send_advert', priority: s.effectivePriority },
      { type: 'add_vips' },
      { type: 'announce' },
      { type: 'set_timer', at },
      { type: 'notify', state: 'MASTER' },
    ],
  };
}

/** BACKUP with a fresh down timer; `prefix` are the actions of leaving the old state. */
function enterBackup(s: VrrpState, now: number, reason: TransitionReason, prefix: VrrpAction[], downMs: number): StepResult {
  const at = now + downMs;
  return {
    state: { ...s, name: 'BACKUP', timerAt: at, preemptAt: null },
    actions: [transition(s.name, 'BACKUP', reason), ...prefix, { type: 'notify', state: 'BACKUP' }, { type: 'set_timer', at }],
  };
}

/** MASTER -> BACKUP (higher-priority advert or sync group). Uses the current masterAdverIntCs. */
function leaveMasterToBackup(s: VrrpState, now: number, reason: TransitionReason, extra: Partial<VrrpState> = {}): StepResult {
  const next: VrrpState = { ...s, ...extra };
  const r = enterBackup(next, now, reason, [], masterDownMs(next));
  // Order required by the shell: remove_vips, notify, set_timer.
  const [t, ...rest] = r.actions;
  return { state: r.state, actions: [t as VrrpAction, { type: 'remove_vips' }, ...rest] };
}

function enterFault(s: VrrpState, faults: readonly string[]): StepResult {
  const leaving: VrrpAction[] =
    s.name === 'MASTER' ? [{ type: 'send_advert', priority: VRRP_PRIO_STOP }, { type: 'remove_vips' }] : [];
  return {
    state: { ...s, name: 'FAULT', faults, timerAt: null, preemptAt: null },
    actions: [transition(s.name, 'FAULT', 'fault'), ...leaving, { type: 'notify', state: 'FAULT' }, { type: 'cancel_timer' }],
  };
}

/** Start, or leave FAULT: the owner goes straight to MASTER, everyone else to BACKUP. */
function comeUp(s: VrrpState, now: number, reason: TransitionReason): StepResult {
  const fresh: VrrpState = { ...s, masterAdverIntCs: s.params.advertIntCs, masterAddress: null, masterPriority: null };
  if (s.params.initialState === 'MASTER' && isOwner(s) && !s.held) return enterMaster(fresh, now, reason);
  const down =
    (reason === 'start' || s.held) && s.params.initialState === 'MASTER'
      ? startupMasterDownMs(s.params.version, s.params.advertIntCs)
      : masterDownMs(fresh);
  return enterBackup(fresh, now, reason, [], down);
}

const none = (state: VrrpState): StepResult => ({ state, actions: [] });

// ---------------------------------------------------------------------------------------------
// Event handlers

function onStart(s: VrrpState, now: number): StepResult {
  if (s.name !== 'INIT' && s.name !== 'STOP') return none(s);
  if (s.faults.length > 0) {
    return {
      state: { ...s, name: 'FAULT', timerAt: null, preemptAt: null },
      actions: [transition(s.name, 'FAULT', 'start'), { type: 'notify', state: 'FAULT' }],
    };
  }
  return comeUp(s, now, 'start');
}

/** keepalived vrrp_state_backup. */
function onAdvertBackup(s: VrrpState, adv: AdvertInput, now: number): StepResult {
  if (adv.priority === VRRP_PRIO_STOP) {
    // The master is leaving: take over after Skew_Time only, so the highest backup wins the race.
    const at = now + skewMs(s);
    return { state: { ...s, timerAt: at }, actions: [{ type: 'set_timer', at }] };
  }
  const p = s.params;
  const delayRunning = p.preemptDelayMs > 0 && (s.preemptAt === null || s.preemptAt > now);
  if (s.held || !p.preempt || adv.priority >= s.effectivePriority || delayRunning) {
    // A master we accept: learn its interval (v3 only, RFC 5798 §6.4.2) and restart the down timer.
    const learned: VrrpState = { ...s, masterAdverIntCs: p.version === 3 ? adv.advertIntCs : s.masterAdverIntCs };
    let preemptAt = s.preemptAt;
    if (p.preemptDelayMs > 0) {
      if (adv.priority >= s.effectivePriority) preemptAt = null;
      else if (preemptAt === null) preemptAt = now + p.preemptDelayMs;
    }
    const at = now + masterDownMs(learned);
    return {
      state: { ...learned, timerAt: at, preemptAt, masterAddress: adv.source, masterPriority: adv.priority },
      actions: [{ type: 'set_timer', at }],
    };
  }
  // Lower priority and we may preempt: ignore the advert so the running down timer expires.
  return none({ ...s, masterAddress: adv.source, masterPriority: adv.priority });
}

/** keepalived vrrp_state_master_rx. */
function onAdvertMaster(s0: VrrpState, adv: AdvertInput, now: number): StepResult {
  let s = s0;
  const actions: VrrpAction[] = [];
  const cmp = compareAddresses(adv.source, s.params.primaryAddress);
  const theyWin = adv.priority > s.effectivePriority || (adv.priority === s.effectivePriority && cmp > 0);

  if (adv.priority === VRRP_PRIO_STOP || (s.params.higherPrioSendAdvert && theyWin)) {
    // Priority 0: another router is leaving the (misconfigured or split) mastership; re-assert ours
    // now so backups that just armed a Skew_Time timer see us before it fires.
    actions.push({ type: 'send_advert', priority: s.effectivePriority });
    if (adv.priority === VRRP_PRIO_STOP) return { state: s, actions };
  }

  if (adv.priority === s.effectivePriority && cmp !== 0 && s.effectivePriority === VRRP_PRIO_OWNER) {
    // Two address owners: keepalived logs a configuration error and steps down to 254 so that the
    // election can converge; the peer's 255 then wins below.
    s = { ...s, basePriority: VRRP_PRIO_OWNER - 1, effectivePriority: VRRP_PRIO_OWNER - 1 };
  }

  if (adv.priority < s.effectivePriority || (adv.priority === s.effectivePriority && cmp < 0)) {
    // A lower-priority router thinks it is master: answer so it sees us and yields, and re-announce
    // the VIPs (keepalived garp_lower_prio_repeat): while both were master, hosts may have learnt
    // the other router's MAC for them, and only a gratuitous ARP/NA moves them back.
    if (!s.params.lowerPrioNoAdvert) actions.push({ type: 'send_advert', priority: s.effectivePriority });
    actions.push({ type: 'reannounce' });
    return { state: s, actions };
  }

  if (adv.priority > s.effectivePriority || (adv.priority === s.effectivePriority && cmp > 0)) {
    const learnedCs = s.params.version === 3 ? adv.advertIntCs : s.masterAdverIntCs;
    const r = leaveMasterToBackup(s, now, 'higher_priority_advert', {
      masterAdverIntCs: learnedCs,
      masterAddress: adv.source,
      masterPriority: adv.priority,
    });
    return { state: r.state, actions: [...actions, ...r.actions] };
  }
  // Equal priority from our own address: a looped-back advert or a duplicate address; keepalived
  // only logs it.
  return { state: s, actions };
}

function onTimer(s: VrrpState, now: number): StepResult {
  if (s.timerAt === null) return none(s);
  // A host timer may fire marginally before the deadline on our clock; re-arm instead of acting early
  // (and instead of dropping it, which would leave the instance without a timer).
  if (now < s.timerAt) return { state: s, actions: [{ type: 'set_timer', at: s.timerAt }] };
  if (s.name === 'BACKUP') return enterMaster(s, now, 'master_down_timer');
  if (s.name === 'MASTER') {
    const at = now + advertIntervalMs(s.params.advertIntCs);
    return {
      state: { ...s, timerAt: at },
      actions: [{ type: 'send_advert', priority: s.effectivePriority }, { type: 'set_timer', at }],
    };
  }
  return none({ ...s, timerAt: null });
}

function onShutdown(s: VrrpState): StepResult {
  const stopped: VrrpState = { ...s, name: 'STOP', timerAt: null, preemptAt: null };
  switch (s.name) {
    case 'STOP':
      return none(s);
    case 'INIT':
      return { state: stopped, actions: [transition('INIT', 'STOP', 'shutdown')] };
    case 'MASTER':
      return {
        state: stopped,
        actions: [
          transition('MASTER', 'STOP', 'shutdown'),
          { type: 'send_advert', priority: VRRP_PRIO_STOP },
          { type: 'remove_vips' },
          { type: 'notify', state: 'STOP' },
          { type: 'cancel_timer' },
        ],
      };
    default:
      return {
        state: stopped,
        actions: [transition(s.name, 'STOP', 'shutdown'), { type: 'cancel_timer' }, { type: 'notify', state: 'STOP' }],
      };
  }
}

function onFault(s: VrrpState, source: string): StepResult {
  const faults = s.faults.includes(source) ? s.faults : [...s.faults, source];
  if (s.name === 'MASTER' || s.name === 'BACKUP') return enterFault(s, faults);
  return none({ ...s, faults });
}

function onFaultClear(s: VrrpState, source: string, now: number): StepResult {
  const faults = s.faults.filter((f) => f !== source);
  const cleared: VrrpState = { ...s, faults };
  if (s.name !== 'FAULT' || faults.length > 0) return none(cleared);
  return comeUp(cleared, now, 'fault_clear');
}

/** keepalived vrrp_set_effective_priority. */
function onPriority(s: VrrpState, requested: number, now: number): StepResult {
  if (isOwner(s)) return none(s);
  const priority = Math.min(VRRP_PRIO_OWNER - 1, Math.max(1, Math.round(requested)));
  if (priority === s.effectivePriority) return none(s);
  const next: VrrpState = { ...s, effectivePriority: priority };
  if (s.name !== 'BACKUP' || s.timerAt === null) return none(next);
  // The skew depends on the priority: move the pending deadline by the change in Master_Down_Interval
  // (keepalived shifts `sands` the same way). keepalived shifts by the difference from the stored
  // ms_down_timer, which after a priority-0 advert is the skew; shifting by the MDI difference
  // keeps a pending Skew_Time takeover short, which is what that advert asked for.
  const at = Math.max(now, s.timerAt + (masterDownMs(next) - masterDownMs(s)));
  return { state: { ...next, timerAt: at }, actions: [{ type: 'set_timer', at }] };
}

/** The start-up hold on or off (module comment). */
function onHold(s: VrrpState, held: boolean, now: number): StepResult {
  if (held === s.held) return none(s);
  const next: VrrpState = { ...s, held };
  if (held || s.name !== 'BACKUP' || s.params.initialState !== 'MASTER') return none(next);
  // Released: an instance that would have gone (or, for a non-owner, hurried) to MASTER at start
  // does now, unless a master of at least its priority is heard. An owner preempts at once, as
  // at start; a non-owner `state MASTER` keeps its short start-up timer (already running).
  if (!isOwner(s)) return none(next);
  if (s.masterPriority !== null && s.masterPriority >= s.effectivePriority) return none(next);
  return enterMaster(next, now, 'hold_released');
}

function onForce(s: VrrpState, to: 'MASTER' | 'BACKUP', now: number): StepResult {
  if (to === 'MASTER' && s.name === 'BACKUP') return enterMaster(s, now, 'sync_group');
  if (to === 'BACKUP' && s.name === 'MASTER') return leaveMasterToBackup(s, now, 'sync_group');
  return none(s);
}

/** Advance one instance by one event at time `now` (ms). Pure: the input state is not modified. */
export function step(state: VrrpState, event: VrrpEvent, now: number): StepResult {
  switch (event.type) {
    case 'start':
      return onStart(state, now);
    case 'advert':
      // INIT, FAULT and STOP ignore adverts (keepalived drops them in the dispatcher).
      if (state.name === 'BACKUP') return onAdvertBackup(state, event.advert, now);
      if (state.name === 'MASTER') return onAdvertMaster(state, event.advert, now);
      return none(state);
    case 'timer':
      return onTimer(state, now);
    case 'shutdown':
      return onShutdown(state);
    case 'fault':
      return onFault(state, event.source);
    case 'fault_clear':
      return onFaultClear(state, event.source, now);
    case 'priority':
      return onPriority(state, event.priority, now);
    case 'force':
      return onForce(state, event.to, now);
    case 'hold':
      return onHold(state, event.held, now);
  }
}

/**
 * What the pending timer will do when it expires before any other event, so that a timing executor
 * (native/vrrp_sender.c, driven by instance.ts) can do it on time without waiting for the event loop:
 *  - `periodic`: a MASTER sends its advert at `at` and, as onTimer re-arms one interval after each
 *    send, every `intervalMs` after that, for as long as no other event arrives;
 *  - `takeover`: a BACKUP's down timer; at `at` it becomes MASTER, whose first action is its advert
 *    at `priority` (enterMaster).
 * null: no timer, or one whose expiry only the state machine can handle.
 */
export type TimerPlan =
  | { readonly kind: 'periodic'; readonly at: number; readonly priority: number; readonly intervalMs: number }
  | { readonly kind: 'takeover'; readonly at: number; readonly priority: number };

export function timerPlan(s: VrrpState): TimerPlan | null {
  if (s.timerAt === null) return null;
  if (s.name === 'MASTER') return { kind: 'periodic', at: s.timerAt, priority: s.effectivePriority, intervalMs: advertIntervalMs(s.params.advertIntCs) };
  if (s.name === 'BACKUP') return { kind: 'takeover', at: s.timerAt, priority: s.effectivePriority };
  return null;
}

export function samePlan(a: TimerPlan | null, b: TimerPlan | null): boolean {
  if (a === null || b === null) return a === b;
  return a.kind === b.kind && a.at === b.at && a.priority === b.priority && (a.kind !== 'periodic' || (b.kind === 'periodic' && a.intervalMs === b.intervalMs));
}
