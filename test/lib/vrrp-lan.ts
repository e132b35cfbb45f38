/**
 * An in-memory LAN of VRRP instances for tests: every node runs the pure state machine from
 * src/vrrp/state.ts, a shared fake clock drives all timers, and `send_advert` actions are delivered to
 * the other nodes as received adverts. Nothing here touches a real clock or socket, so runs are exact
 * and reproducible: a takeover time can be asserted to the microsecond.
 *
 * Scheduling: pending work (advert deliveries, each node's single armed timer) sits in one queue
 * ordered by (time, insertion order). Re-arming a timer supersedes the old queue entry (lazily: a
 * popped timer whose generation is stale is skipped), exactly like the one-timer-per-instance shell.
 *
 * Failure injection: crash (the node falls silent and its VIPs disappear with it, no priority-0
 * advert), restart (fresh INIT state, then `start`), shutdown (graceful: the state machine's own
 * `shutdown`), partitions (adverts only flow inside a group), and arbitrary events (priority, fault).
 *
 * Observation: `transitions` and `vipEvents` record what happened when; `snapshots` records the set of
 * live masters and VIP holders after all work at each instant has been processed (the instants at
 * which "two masters" would be a real, not a transient, condition).
 */
import { initialState, step } from '../../src/vrrp/state.js';
import type { AdvertInput, TransitionReason, VrrpAction, VrrpEvent, VrrpParams, VrrpState, VrrpStateName } from '../../src/vrrp/state.js';

export interface LanOptions {
  /** Propagation delay of an advert in ms (default 0: delivered at the instant it is sent). */
  deliveryDelayMs?: number;
}

export interface TransitionRecord {
  t: number;
  node: string;
  from: VrrpStateName;
  to: VrrpStateName;
  reason: TransitionReason;
}

export interface VipRecord {
  t: number;
  node: string;
  held: boolean;
}

export interface Snapshot {
  t: number;
  masters: string[];
  vipHolders: string[];
}

export interface SentAdvert {
  t: number;
  node: string;
  priority: number;
}

interface Node {
  readonly name: string;
  readonly params: VrrpParams;
  state: VrrpState;
  alive: boolean;
  /** Generation of the armed timer; a queued timer entry with another generation is stale. */
  timerGen: number;
  vips: boolean;
}

type Work =
  | { at: number; kind: 'deliver'; to: string; advert: AdvertInput }
  | { at: number; kind: 'timer'; node: string; gen: number };
type QueueItem = Work & { seq: number };

export class VrrpLan {
  now = 0;
  readonly transitions: TransitionRecord[] = [];
  readonly vipEvents: VipRecord[] = [];
  readonly snapshots: Snapshot[] = [];
  readonly adverts: SentAdvert[] = [];

  private readonly nodes = new Map<string, Node>();
  private queue: QueueItem[] = [];
  private seq = 0;
  private readonly delay: number;
  /** node -> partition group; nodes absent from the map share one implicit group. */
  private partitionOf = new Map<string, number>();

  constructor(opts: LanOptions = {}) {
    this.delay = opts.deliveryDelayMs ?? 0;
  }

  add(name: string, params: VrrpParams): this {
    if (this.nodes.has(name)) throw new Error(`duplicate node ${name}`);
    this.nodes.set(name, { name, params, state: initialState(params), alive: true, timerGen: 0, vips: false });
    return this;
  }

  /** Start the named nodes (all nodes if none given), in the order given, at the current instant. */
  start(...names: string[]): this {
    for (const n of names.length > 0 ? names : [...this.nodes.keys()]) this.inject(n, { type: 'start' });
    return this;
  }

  /** Feed an event to a node now (priority, fault, fault_clear, force, ...). */
  inject(name: string, event: VrrpEvent): this {
    const node = this.node(name);
    if (node.alive) this.apply(node, event);
    this.snapshot();
    return this;
  }

  shutdown(name: string): this {
    return this.inject(name, { type: 'shutdown' });
  }

  /** The node stops dead: no more adverts or timers, and its VIPs vanish with the host. */
  crash(name: string): this {
    const node = this.node(name);
    node.alive = false;
    node.timerGen++;
    this.setVips(node, false);
    this.snapshot();
    return this;
  }

  /** Bring a crashed (or stopped) node back as a freshly started daemon. */
  restart(name: string): this {
    const node = this.node(name);
    node.alive = true;
    node.timerGen++;
    node.state = initialState(node.params);
    this.setVips(node, false);
    return this.inject(name, { type: 'start' });
  }

  /** Adverts flow only within a group; nodes not listed share one further group. */
  partition(...groups: string[][]): this {
    this.partitionOf = new Map(groups.flatMap((g, i) => g.map((n) => [n, i] as const)));
    return this;
  }

  heal(): this {
    this.partitionOf = new Map();
    return this;
  }

  /** Process everything due up to and including `until`, then leave the clock at `until`. */
  runUntil(until: number): this {
    for (;;) {
      const head = this.queue[0];
      if (head === undefined || head.at > until) break;
      const t = head.at;
      this.now = t;
      // Drain the instant completely (work scheduled for `t` while processing it included).
      while (this.queue[0] !== undefined && (this.queue[0] as QueueItem).at === t) this.dispatch(this.queue.shift() as QueueItem);
      this.snapshot();
    }
    this.now = Math.max(this.now, until);
    return this;
  }

  advance(ms: number): this {
    return this.runUntil(this.now + ms);
  }

  state(name: string): VrrpState {
    return this.node(name).state;
  }

  isAlive(name: string): boolean {
    return this.node(name).alive;
  }

  names(): string[] {
    return [...this.nodes.keys()];
  }

  /** Live nodes currently in MASTER. */
  masters(): string[] {
    return [...this.nodes.values()].filter((n) => n.alive && n.state.name === 'MASTER').map((n) => n.name);
  }

  vipHolders(): string[] {
    return [...this.nodes.values()].filter((n) => n.alive && n.vips).map((n) => n.name);
  }

  /** Transitions of one node into `to`, optionally only those at or after `since`. */
  transitionsTo(name: string, to: VrrpStateName, since = -Infinity): TransitionRecord[] {
    return this.transitions.filter((r) => r.node === name && r.to === to && r.t >= since);
  }

  private node(name: string): Node {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`unknown node ${name}`);
    return node;
  }

  private snapshot(): void {
    const snap: Snapshot = { t: this.now, masters: this.masters(), vipHolders: this.vipHolders() };
    const last = this.snapshots[this.snapshots.length - 1];
    if (last && last.t === snap.t) this.snapshots[this.snapshots.length - 1] = snap;
    else this.snapshots.push(snap);
  }

  private enqueue(item: Work): void {
    const full: QueueItem = { ...item, seq: this.seq++ };
    // Binary search for the first entry later than (at, seq); seq is increasing so ties keep FIFO.
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.queue[mid] as QueueItem).at <= full.at) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, full);
  }

  private dispatch(item: QueueItem): void {
    if (item.kind === 'deliver') {
      const node = this.node(item.to);
      if (node.alive) this.apply(node, { type: 'advert', advert: item.advert });
      return;
    }
    const node = this.node(item.node);
    if (node.alive && item.gen === node.timerGen) this.apply(node, { type: 'timer' });
  }

  private apply(node: Node, event: VrrpEvent): void {
    const { state, actions } = step(node.state, event, this.now);
    node.state = state;
    for (const a of actions) this.execute(node, a);
  }

  private setVips(node: Node, held: boolean): void {
    if (node.vips === held) return;
    node.vips = held;
    this.vipEvents.push({ t: this.now, node: node.name, held });
  }

  private execute(node: Node, a: VrrpAction): void {
    switch (a.type) {
      case 'send_advert': {
        this.adverts.push({ t: this.now, node: node.name, priority: a.priority });
        const advert: AdvertInput = { priority: a.priority, advertIntCs: node.params.advertIntCs, source: node.params.primaryAddress };
        const group = this.partitionOf.get(node.name) ?? -1;
        for (const peer of this.nodes.values()) {
          if (peer === node || (this.partitionOf.get(peer.name) ?? -1) !== group) continue;
          this.enqueue({ at: this.now + this.delay, kind: 'deliver', to: peer.name, advert });
        }
        return;
      }
      case 'set_timer':
        node.timerGen++;
        this.enqueue({ at: a.at, kind: 'timer', node: node.name, gen: node.timerGen });
        return;
      case 'cancel_timer':
        node.timerGen++;
        return;
      case 'add_vips':
        this.setVips(node, true);
        return;
      case 'remove_vips':
        this.setVips(node, false);
        return;
      case 'transition':
        this.transitions.push({ t: this.now, node: node.name, from: a.from, to: a.to, reason: a.reason });
        return;
      case 'announce':
      case 'notify':
        return;
    }
  }
}
