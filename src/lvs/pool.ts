/**
 * Virtual-server pool logic (pure): from the real servers' health and weights and the
 * virtual server's parameters, compute the destination list handed to the scheduler,
 * whether the sorry server is in service, and the events for notify scripts.
 *
 * It follows keepalived's check/ipwrapper.c:
 *
 * - A real server is "alive" while its checks pass. Before its first check result, it is
 *   alive unless `alpha` is set (alpha: start pessimistic, as init_service_rs()).
 * - Weight: the dynamic weight (MISC_CHECK misc_dynamic) when set, else the configured
 *   one, clamped to 0..INT_MAX (real_weight()).
 * - A server that is not alive is removed from the destination list, or kept at weight 0
 *   when it has inhibit_on_failure (ipvs_cmd turns DEL_DEST into a weight-0 edit), so its
 *   established connections and persistence templates survive.
 * - Quorum (update_quorum_state()): weightSum = sum of the weights of alive servers. The
 *   quorum is gained when weightSum >= quorum + hysteresis and lost when weightSum <
 *   quorum - hysteresis (or weightSum = 0). In between the previous state holds, which
 *   is why the state is carried between calls.
 * - Sorry server: while quorum is down, if one is configured, it replaces the pool: alive
 *   servers are removed (inhibit_on_failure ones set to weight 0) and the sorry server
 *   added. Without a sorry server a quorum loss only fires notifications. With
 *   sorry_server_inhibit the sorry server stays in the list at weight 0 when not needed.
 * - Start-up: the quorum starts down (set_quorum_states() runs before any server is
 *   alive); the first evaluation is keepalived's init pass: "Starting with quorum up"
 *   (quorum_up, initial) if the alive weight reaches quorum + hysteresis, else, if there
 *   is a sorry server, "Starting with quorum down" (quorum_down, initial) and the sorry
 *   server goes in. Without a sorry server, starting down is silent.
 * - Config sanity as check_data.c: a quorum above the total configured weight is lowered to
 *   it, and a hysteresis >= quorum becomes quorum - 1 (see effectiveQuorum).
 * - omega: only affects shutdown. With omega, stopping fires the rs_down notifications of
 *   alive servers and quorum_down (see stopPool); without it, stopping is silent.
 *
 * Plus PyBal's depool threshold (coordinator.py canDepool()): a server whose checks start
 * failing is depooled only if the number of servers still up would stay >= threshold * N
 * (N = all real servers); otherwise it stays in the pool at full weight, "kept despite
 * failing", and is depooled later once enough servers are up again (oldest first). This
 * guards against a monitoring fault emptying the pool. Kept servers are not alive: they do
 * not count towards the quorum and their rs_down notification fires normally, because a
 * configured quorum + sorry server is an explicit operator decision that should win.
 *
 * Runtime overrides (keepalive-ts weight / drain / disable / enable, the operator's commands on
 * this director) and slow start are inputs too:
 * - `weight N` replaces the weight (configured or dynamic) of a server that is up; `drain` is
 *   weight 0: it stays in the list, takes no new connections, its established ones finish (the
 *   LVS HOWTO's maintenance recipe, IPVS quiescent server). Both count with that weight towards
 *   the quorum (a drained server adds nothing).
 * - `disable` takes the server out of the pool as a failed server would be (removed, or weight 0
 *   with inhibit_on_failure; PyBal's depool, HAProxy's maint). Its health is still tracked (rs_up
 *   / rs_down still fire: they report the checks), it does not count towards the quorum and the
 *   depool threshold ignores it (N counts the servers not disabled).
 * - Slow start (`slowStartMs` > 0; HAProxy's slowstart): a server that starts taking new
 *   connections after the first evaluation (it recovered, was added by a reload, was enabled or
 *   un-drained) has its weight ramped linearly from 1 to its weight over slowStartMs, so that a
 *   returning server under lc-like schedulers does not get every new connection (the LVS HOWTO's
 *   "thundering herd"). Weights are integers, so while a server ramps every weight of the pool is
 *   multiplied by a factor that gives the ramp at least RAMP_STEPS steps (the ratios between
 *   the other servers are unchanged; IPVS schedulers compare weights only relatively). The
 *   quorum counts full weights (a ramp is not a capacity loss). Callers evaluate again at
 *   `nextEvaluationAt` while a ramp lasts.
 *
 * One evaluation applies all changes at once; keepalived reacts to each checker result
 * separately, so callers should evaluate after every health/weight change to see every
 * intermediate quorum transition. Several servers failing in one evaluation are handled
 * one by one in list order for the depool threshold, as PyBal would.
 */

export type CheckHealth = 'up' | 'down' | 'unknown';

/** A real server of the virtual server, with its current health. */
export interface RealServerStatus {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** Configured weight. */
  readonly weight: number;
  /** MISC_CHECK dynamic weight (misc_dynamic); replaces `weight` when set. */
  readonly dynamicWeight?: number;
  /** Aggregated check result; 'unknown' until the first check completes. */
  readonly health: CheckHealth;
  /** inhibit_on_failure: on failure set weight 0 instead of removing the server. */
  readonly inhibitOnFailure?: boolean;
  /** The operator's runtime override on this director, if any. */
  readonly override?: RuntimeOverride;
}

/** keepalive-ts weight / drain / disable (enable clears the override). */
export type RuntimeOverride =
  | { readonly action: 'weight'; readonly weight: number }
  | { readonly action: 'drain' }
  | { readonly action: 'disable' };

export const OVERRIDE_ACTIONS = ['weight', 'drain', 'disable'] as const;

export interface SorryServer {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** Default 1, as keepalived's real-server default weight. */
  readonly weight?: number;
}

export interface PoolParams {
  /** Minimum total weight of alive servers for the pool to be up (>= 1). */
  readonly quorum: number;
  readonly hysteresis: number;
  /** Servers are down until their first successful check. */
  readonly alpha: boolean;
  /** On shutdown, fire the quorum_down and rs_down notifications. */
  readonly omega: boolean;
  readonly sorryServer?: SorryServer;
  /** Keep the sorry server in the list at weight 0 while it is not needed. */
  readonly sorryServerInhibit: boolean;
  /** PyBal depool threshold: fraction (0..1) of servers that must stay up; 0 = off. */
  readonly depoolThreshold: number;
  /** Slow start: ramp a server that starts taking connections over this many ms; 0 or absent = off. */
  readonly slowStartMs?: number;
}

/** A slow-start ramp in progress (times in the caller's clock, ms). */
export interface Ramp {
  readonly id: string;
  readonly since: number;
  readonly until: number;
}

/** State carried from one evaluation to the next. Treat as opaque; it is plain data. */
export interface PoolState {
  readonly quorumUp: boolean;
  /** Ids of all servers evaluated (to tell a new server from a known one). */
  readonly known: readonly string[];
  /** Ids of alive servers. */
  readonly alive: readonly string[];
  /** Ids of servers kept in the pool despite failing, oldest first. */
  readonly kept: readonly string[];
  /** Ids of servers taking new connections (in the pool with a weight > 0), for slow start. */
  readonly taking?: readonly string[];
  /** Slow-start ramps in progress. */
  readonly ramps?: readonly Ramp[];
}

export interface PoolDestination {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** The weight for the data plane (ramped and scaled during slow start). */
  readonly weight: number;
  /** The weight it settles at: configured / dynamic / override, 0 when out of service. */
  readonly targetWeight: number;
  readonly kind: 'real' | 'sorry';
  /** Present while the server ramps up (slow start). */
  readonly ramp?: Ramp;
}

export type PoolEvent =
  | {
      readonly type: 'quorum_up' | 'quorum_down';
      /** Start-up notification ("Starting with quorum up/down"). */
      readonly initial: boolean;
      /** Daemon shutdown (omega). */
      readonly stopping: boolean;
      readonly weightSum: number;
      readonly threshold: number;
    }
  | { readonly type: 'rs_up' | 'rs_down'; readonly id: string; readonly stopping: boolean }
  /** The depool threshold refused to depool a failing server. */
  | { readonly type: 'kept_despite_failing'; readonly id: string }
  /** A server kept despite failing has now been depooled. */
  | { readonly type: 'kept_released'; readonly id: string };

export interface PoolResult {
  readonly state: PoolState;
  /** The destinations for the scheduler, real servers in input order, then the sorry server. */
  readonly destinations: readonly PoolDestination[];
  readonly sorryActive: boolean;
  readonly quorumUp: boolean;
  readonly weightSum: number;
  readonly keptDespiteFailing: readonly string[];
  readonly events: readonly PoolEvent[];
  /** Evaluate again at this time (caller's clock) to advance a slow-start ramp; null when none runs. */
  readonly nextEvaluationAt: number | null;
}

/** A ramp goes through at least this many weight steps (weights are scaled up to allow it). */
export const RAMP_STEPS = 20;
/** Re-evaluation period during a ramp: slowStartMs / RAMP_STEPS, at least this. */
const RAMP_MIN_PERIOD_MS = 100;

/** IPVS weights are ints; keepalived's IPVS_WEIGHT_LIMIT. */
const WEIGHT_LIMIT = 2147483647;

/** keepalived real_weight(): the weight IPVS can take. */
export function realWeight(effective: number): number {
  if (!(effective > 0)) return 0;
  return Math.min(Math.floor(effective), WEIGHT_LIMIT);
}

/** The weight a server in the pool takes: the override's, else the dynamic one, else the configured one. */
function effectiveWeight(s: RealServerStatus): number {
  if (s.override?.action === 'drain') return 0;
  if (s.override?.action === 'weight') return realWeight(s.override.weight);
  return realWeight(s.dynamicWeight ?? s.weight);
}

const disabled = (s: RealServerStatus): boolean => s.override?.action === 'disable';

/**
 * The ramped weight of a server of weight `target` `elapsed` ms into a ramp of `total` ms, on the
 * scale `scale`: linear from 1 to target x scale. Pure; exported for tests and docs.
 */
export function rampWeight(target: number, scale: number, elapsed: number, total: number): number {
  const full = target * scale;
  if (total <= 0 || elapsed >= total) return full;
  return Math.max(1, Math.min(full, Math.ceil((full * Math.max(0, elapsed)) / total)));
}

/** The factor giving a ramp of a server of weight `minTarget` at least RAMP_STEPS steps. */
export function rampScale(minTarget: number): number {
  return minTarget >= RAMP_STEPS ? 1 : Math.ceil(RAMP_STEPS / Math.max(1, minTarget));
}

/**
 * The quorum and hysteresis actually used, corrected as keepalived's check_data.c does:
 * quorum lowered to the total configured weight (else the pool could never come up,
 * but never below 1), then hysteresis lowered to quorum - 1.
 */
export function effectiveQuorum(
  params: Pick<PoolParams, 'quorum' | 'hysteresis'>,
  servers: readonly Pick<RealServerStatus, 'weight'>[],
): { quorum: number; hysteresis: number } {
  const total = servers.reduce((sum, s) => sum + realWeight(s.weight), 0);
  const quorum = Math.max(1, Math.min(params.quorum, total));
  const hysteresis = params.hysteresis >= quorum ? quorum - 1 : params.hysteresis;
  return { quorum, hysteresis };
}

function validate(params: PoolParams, servers: readonly RealServerStatus[]): void {
  if (!Number.isInteger(params.quorum) || params.quorum < 1) {
    throw new RangeError(`quorum must be an integer >= 1, got ${params.quorum}`);
  }
  if (!Number.isInteger(params.hysteresis) || params.hysteresis < 0) {
    throw new RangeError(`hysteresis must be an integer >= 0, got ${params.hysteresis}`);
  }
  if (!(params.depoolThreshold >= 0 && params.depoolThreshold <= 1)) {
    throw new RangeError(`depoolThreshold must be within 0..1, got ${params.depoolThreshold}`);
  }
  if (params.slowStartMs !== undefined && !(params.slowStartMs >= 0)) {
    throw new RangeError(`slowStartMs must be >= 0, got ${params.slowStartMs}`);
  }
  const ids = new Set<string>();
  for (const s of servers) {
    if (ids.has(s.id)) throw new RangeError(`duplicate real server ${s.id}`);
    ids.add(s.id);
  }
}

/**
 * Evaluate the pool. `prev` is the state returned by the previous evaluation, or null for
 * the first one (start-up: keepalived's init pass). `now` (ms, any monotonic clock) times
 * slow-start ramps.
 */
export function evaluatePool(
  params: PoolParams,
  servers: readonly RealServerStatus[],
  prev: PoolState | null,
  now = 0,
): PoolResult {
  validate(params, servers);
  const init = prev === null;
  const prevAlive = new Set(prev?.alive ?? []);
  const prevKept = new Set(prev?.kept ?? []);
  const prevKnown = new Set(prev?.known ?? []);
  const known = (id: string): boolean => prevKnown.has(id);
  const events: PoolEvent[] = [];

  // 1. Health -> alive. 'unknown' keeps the previous state, or for a server seen for the
  //    first time: alive unless alpha.
  const alive = new Set<string>();
  for (const s of servers) {
    const up = s.health === 'up' || (s.health === 'unknown' && (known(s.id) ? prevAlive.has(s.id) : !params.alpha));
    if (up) alive.add(s.id);
    if (!init && known(s.id) && up !== prevAlive.has(s.id)) {
      events.push({ type: up ? 'rs_up' : 'rs_down', id: s.id, stopping: false });
    }
  }

  // 2. Depool threshold (PyBal). Servers that were pooled and now fail are depooled one by
  //    one while the up count stays >= threshold * N; the others are kept.
  //    Disabled servers are the operator's decision: not counted, never kept.
  const enabled = servers.filter((s) => !disabled(s));
  const need = params.depoolThreshold * enabled.length;
  const present = new Set(enabled.map((s) => s.id));
  const kept = (prev?.kept ?? []).filter((id) => present.has(id) && !alive.has(id));
  const newlyFailing = enabled.filter((s) => !alive.has(s.id) && prevAlive.has(s.id) && !prevKept.has(s.id));
  let upCount = enabled.filter((s) => alive.has(s.id)).length + newlyFailing.length;
  for (const s of newlyFailing) {
    upCount--;
    if (upCount < need) {
      kept.push(s.id);
      events.push({ type: 'kept_despite_failing', id: s.id });
    }
  }
  while (kept.length > 0 && upCount >= need) {
    events.push({ type: 'kept_released', id: kept.shift()! });
  }
  const keptSet = new Set(kept);

  // 3. Quorum with hysteresis (update_quorum_state()).
  const { quorum, hysteresis } = effectiveQuorum(params, servers);
  const weightSum = servers.reduce((sum, s) => sum + (alive.has(s.id) && !disabled(s) ? effectiveWeight(s) : 0), 0);
  let quorumUp = prev?.quorumUp ?? false;
  const threshold = quorum + (quorumUp ? -hysteresis : hysteresis);
  if (!quorumUp && weightSum >= threshold) {
    quorumUp = true;
    events.push({ type: 'quorum_up', initial: init, stopping: false, weightSum, threshold });
  } else if ((quorumUp && (weightSum === 0 || weightSum < threshold)) || (init && !quorumUp && params.sorryServer)) {
    quorumUp = false;
    events.push({ type: 'quorum_down', initial: init, stopping: false, weightSum, threshold });
  }

  // 4. Destination list (target weights), and who takes new connections.
  const sorry = params.sorryServer;
  const sorryActive = !quorumUp && sorry !== undefined;
  const listed: Array<Omit<PoolDestination, 'weight'>> = [];
  for (const s of servers) {
    if (sorry && s.id === sorry.id && (sorryActive || params.sorryServerInhibit)) continue;
    const pooled = (alive.has(s.id) || keptSet.has(s.id)) && !disabled(s);
    const entry = { id: s.id, address: s.address, port: s.port, kind: 'real' as const };
    if (!sorryActive && pooled) listed.push({ ...entry, targetWeight: effectiveWeight(s) });
    else if (s.inhibitOnFailure) listed.push({ ...entry, targetWeight: 0 });
  }
  const taking = listed.filter((d) => d.targetWeight > 0).map((d) => d.id);

  // 5. Slow start: a server that starts taking connections after the init pass ramps up.
  const slowMs = params.slowStartMs ?? 0;
  const prevTaking = new Set(prev?.taking ?? []);
  const ramps: Ramp[] = [];
  if (slowMs > 0) {
    const prevRamps = new Map((prev?.ramps ?? []).map((r) => [r.id, r]));
    for (const id of taking) {
      const was = prevRamps.get(id);
      if (was && prevTaking.has(id)) {
        if (now < was.since + slowMs) ramps.push({ id, since: was.since, until: was.since + slowMs });
      } else if (!init && !prevTaking.has(id)) {
        ramps.push({ id, since: now, until: now + slowMs });
      }
    }
  }
  const rampOf = new Map(ramps.map((r) => [r.id, r]));
  const scale = ramps.length === 0 ? 1 : rampScale(Math.min(...listed.filter((d) => rampOf.has(d.id)).map((d) => d.targetWeight)));
  const destinations: PoolDestination[] = listed.map((d) => {
    const ramp = rampOf.get(d.id);
    const weight = ramp ? rampWeight(d.targetWeight, scale, now - ramp.since, slowMs) : d.targetWeight * scale;
    return { ...d, weight: Math.min(weight, WEIGHT_LIMIT), ...(ramp ? { ramp } : {}) };
  });
  if (sorry && (sorryActive || params.sorryServerInhibit)) {
    const w = sorryActive ? realWeight(sorry.weight ?? 1) : 0;
    destinations.push({ id: sorry.id, address: sorry.address, port: sorry.port, weight: w, targetWeight: w, kind: 'sorry' });
  }
  const nextEvaluationAt = ramps.length === 0 ? null : Math.min(now + Math.max(RAMP_MIN_PERIOD_MS, slowMs / RAMP_STEPS), ...ramps.map((r) => r.until));

  return {
    state: {
      quorumUp,
      known: servers.map((s) => s.id),
      alive: servers.filter((s) => alive.has(s.id)).map((s) => s.id),
      kept,
      taking,
      ramps,
    },
    destinations,
    sorryActive,
    quorumUp,
    weightSum,
    keptDespiteFailing: kept,
    events,
    nextEvaluationAt,
  };
}

/**
 * Notifications on daemon shutdown (clear_services()): with omega, rs_down for every
 * alive server, then quorum_down, which keepalived fires even if the quorum was already
 * down (update_vs_notifies() with stopping) and reports with the servers already
 * removed (weightSum 0, threshold quorum - hysteresis). Without omega, none.
 */
export function stopPool(params: PoolParams, servers: readonly RealServerStatus[], state: PoolState): PoolEvent[] {
  if (!params.omega) return [];
  const { quorum, hysteresis } = effectiveQuorum(params, servers);
  return [
    ...state.alive.map((id): PoolEvent => ({ type: 'rs_down', id, stopping: true })),
    { type: 'quorum_down', initial: false, stopping: true, weightSum: 0, threshold: quorum - hysteresis },
  ];
}
