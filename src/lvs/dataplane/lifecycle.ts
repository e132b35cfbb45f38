/**
 * The life-cycle base every data-plane implementation extends: desired-state bookkeeping
 * (services, pools, which services are served), argument checks with coded errors, and the
 * closed state. An implementation only does its own I/O in the apply* hooks; it can read the
 * desired state back (e.g. to re-apply it after its worker restarted, or to rebuild a whole
 * nftables table in one transaction).
 *
 * Ordering: every public call runs synchronously up to its apply* hook, so two calls made one
 * after the other reach the implementation in that order (the proxy relies on it: its worker
 * processes messages in order). Calls are not serialised beyond that: an unserve() that drains
 * for 30 s does not hold up a setPool() of another service. An implementation whose I/O must
 * not overlap (one nftables transaction at a time) queues it itself (see serialize()).
 *
 * Bookkeeping follows what the caller wants, not what succeeded: configure() and unserve()
 * record before the I/O (a removed service is gone even if its drain fails), setPool() and
 * serve() after it (a serve that failed, e.g. while the VIP is not there yet, is retried by the
 * caller and must not be re-applied by a restart in between).
 */
import { EventEmitter } from 'node:events';
import { isDeepStrictEqual } from 'node:util';
import { KeepaliveError } from '../../util/errors.js';
import type { ServiceKey } from '../../util/endpoint.js';
import { endpointText } from '../../util/endpoint.js';
import type { Dataplane, DataplaneStats, LbKind, PoolSpec, ServiceSpec } from './contract.js';

function invalid(message: string): KeepaliveError {
  return new KeepaliveError('E_CONFIG_INVALID', message);
}

/**
 * Events an implementation may emit: 'error' (Error: something broke outside a call, e.g. a
 * worker died; emitted only when someone listens, so it never takes the daemon down).
 */
export abstract class DataplaneLifecycle extends EventEmitter implements Dataplane {
  abstract readonly name: string;
  abstract readonly kinds: readonly LbKind[];

  readonly #services = new Map<ServiceKey, ServiceSpec>();
  readonly #pools = new Map<ServiceKey, PoolSpec>();
  readonly #served = new Set<ServiceKey>();
  #closing: Promise<void> | null = null;
  #queue: Promise<unknown> = Promise.resolve();

  // ---------------------------------------------------------------- the implementation's part

  /** Why this implementation cannot take `spec` (beyond its kind), or null. */
  protected checkService(_spec: ServiceSpec): string | null {
    return null;
  }
  /**
   * The full desired set; `removed` are the services not listed any more (to drain, then drop);
   * `changed` those of `services` that are new or differ from the ones configured before (the
   * others are passed as the very objects configured before, so `===` tells them unchanged).
   */
  protected abstract applyConfigure(services: readonly ServiceSpec[], removed: readonly ServiceSpec[], changed: readonly ServiceSpec[]): Promise<void>;
  protected abstract applyPool(spec: ServiceSpec, pool: PoolSpec): Promise<void>;
  protected abstract applyServe(spec: ServiceSpec): Promise<void>;
  protected abstract applyUnserve(spec: ServiceSpec, drainMs: number): Promise<void>;
  protected abstract collectStats(): Promise<DataplaneStats>;
  /** Release everything (listeners, worker, kernel state). Called once. */
  protected abstract applyClose(): Promise<void>;

  // ---------------------------------------------------------------- desired state, for the implementation

  protected get desiredServices(): readonly ServiceSpec[] {
    return [...this.#services.values()];
  }
  protected desiredPool(key: ServiceKey): PoolSpec | undefined {
    return this.#pools.get(key);
  }
  protected isServed(key: ServiceKey): boolean {
    return this.#served.has(key);
  }
  protected get isClosed(): boolean {
    return this.#closing !== null;
  }

  /** Emits 'error' if anyone listens (an unhandled 'error' event would throw). */
  protected reportError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Runs `fn` after every earlier serialize()d call has settled (for I/O that must not overlap). */
  protected serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** The service or a coded rejection; for implementation-specific calls (restore...) too. */
  protected service(key: ServiceKey): ServiceSpec {
    const spec = this.#services.get(key);
    if (!spec) throw invalid(`${this.name} data plane: unknown virtual service ${key}`);
    return spec;
  }

  protected assertOpen(): void {
    if (this.#closing) throw new KeepaliveError('E_CLOSED', `${this.name} data plane closed`);
  }

  // ---------------------------------------------------------------- the contract

  async configure(services: readonly ServiceSpec[]): Promise<void> {
    this.assertOpen();
    const keys = new Set<string>();
    const changed: ServiceSpec[] = [];
    const desired: ServiceSpec[] = [];
    for (const spec of services) {
      if (!this.kinds.includes(spec.kind)) throw invalid(`${this.name} data plane does not forward lb_kind ${spec.kind} (${spec.key})`);
      if (keys.has(spec.key)) throw invalid(`duplicate virtual service ${spec.key}`);
      keys.add(spec.key);
      const before = this.#services.get(spec.key);
      // Unchanged: the spec configured before stands (it passed checkService then).
      if (before !== undefined && (before === spec || isDeepStrictEqual(before, spec))) {
        desired.push(before);
        continue;
      }
      const problem = this.checkService(spec);
      if (problem) throw invalid(`${spec.key}: ${problem}`);
      changed.push(spec);
      desired.push(spec);
    }
    const removed = [...this.#services.values()].filter((s) => !keys.has(s.key));
    for (const s of removed) {
      this.#services.delete(s.key);
      this.#pools.delete(s.key);
      this.#served.delete(s.key);
    }
    for (const spec of desired) this.#services.set(spec.key, spec);
    await this.applyConfigure(desired, removed, changed);
  }

  async setPool(key: ServiceKey, pool: PoolSpec): Promise<void> {
    this.assertOpen();
    const spec = this.service(key);
    const seen = new Set<string>();
    for (const d of pool.dests) {
      if (seen.has(d.key)) throw invalid(`${key}: duplicate destination ${d.key}`);
      seen.add(d.key);
      if (!Number.isInteger(d.weight) || d.weight < 0) throw invalid(`${key}: destination ${d.key} has weight ${d.weight}`);
      if (d.endpoint.family !== spec.match.family) throw invalid(`${key}: destination ${endpointText(d.endpoint)} is not IPv${spec.match.family}`);
    }
    if (pool.sorry && pool.sorry.family !== spec.match.family) throw invalid(`${key}: sorry server ${endpointText(pool.sorry)} is not IPv${spec.match.family}`);
    await this.applyPool(spec, pool);
    if (this.#services.has(key)) this.#pools.set(key, pool);
  }

  async serve(key: ServiceKey): Promise<void> {
    this.assertOpen();
    const spec = this.service(key);
    await this.applyServe(spec);
    if (this.#services.has(key)) this.#served.add(key);
  }

  async unserve(key: ServiceKey, drainMs: number): Promise<void> {
    this.assertOpen();
    const spec = this.service(key);
    this.#served.delete(key);
    await this.applyUnserve(spec, Math.max(0, Math.floor(drainMs)));
  }

  async stats(): Promise<DataplaneStats> {
    this.assertOpen();
    return this.collectStats();
  }

  close(): Promise<void> {
    this.#closing ??= this.applyClose();
    return this.#closing;
  }
}
