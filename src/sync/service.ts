/**
 * SyncService: connection sync tied to the VRRP role of `sync.instance` and to the data plane.
 *
 * Both directors run one sender socket and one receiver socket (bound to `sync.port`, group
 * joined on `sync.interface`) for their whole life, sharing one SyncAuth (boot id, sequence).
 * What they do depends on the role:
 *
 *  - MASTER: data-plane events (onEvent batches) become sync entries and are sent at once
 *    (the data plane already batched them; the sender packs MTU-sized messages). Snapshot
 *    requests from the peer are answered with the full table (DataPlane.snapshot(), plus the
 *    synced entries it was promoted with and has not used yet). Every `refreshMs` the live
 *    UDP flows and connections are sent again, so the backup's expiries follow the real ones.
 *    Entries received from another "master" (split brain) are ignored and counted.
 *  - BACKUP: received entries go into a SyncTable (absolute expiries, ended entries removed,
 *    swept every second). On start and on demotion it requests a snapshot, retried (1 s, doubling
 *    to 10 s) until a snapshot-end arrives.
 *
 * Lag (lag.ts, docs/sync-protocol.md "Lag"): the master stamps each entry's age (observed ->
 * sent) and its transit estimate (half the round trip its lag-acks measure) into the version-2
 * messages; the backup adds the time to write the entries into its table and keeps the lags of the
 * last entries (status `lag`: p50/p99/last).
 *
 * Promotion (`setMaster(true)`): the table's templates and UDP flows are handed to the data
 * plane (DataPlane.restore) synchronously, before setMaster returns its promise, so a serve()
 * posted to the worker after it (VirtualServerManager.setOwnership) is processed after the
 * restore (the worker handles messages in order): no client is scheduled before its template
 * is back. TCP connections cannot move (the user-space proxy terminates TCP; a client's
 * connection dies with the director), so they are kept for counts/status only.
 *
 * The data plane names services by their canonical key (ServiceKey) and endpoints as Endpoint
 * values; ServiceIndex maps them to the wire's protocol / virtual address:port / fwmark and back
 * through the configured services, never by parsing key text.
 */

import type { Logger } from 'pino';
import type { SyncConfig } from '../config/types.js';
import type { SyncStatusReport } from '../daemon/status.js';
import type { ConnectionEvent, ConnectionSnapshot, ConnectionState, ConnRef, RestoreEntry } from '../lvs/dataplane/contract.js';
import { addrMatch, matchesPort, serviceKey, singlePort, type Endpoint, type ServiceKey, type ServiceMatch, type VirtualService } from '../util/endpoint.js';
import { monotonicMs } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import { SyncAuth } from './auth.js';
import { LagWindow, PeerRtt, SentLog, entryLagMs } from './lag.js';
import type { SnapshotTotals } from './codec.js';
import { type MessageInfo, type SnapshotRequest, type SyncReceiverOptions, SyncReceiver, receiverOptionsFromConfig } from './receiver.js';
import { type SyncSenderOptions, SyncSender, senderOptionsFromConfig } from './sender.js';
import { type LiveEntry, SyncTable, entryKey } from './table.js';
import type { NormalizedEntry, SyncEntry } from './types.js';

/** IPVS tcp ESTABLISHED timeout: what a synced connection lives on the backup without refresh. */
export const CONN_TIMEOUT_SEC = 900;
/** Data-plane event batching the daemon asks for when sync is on (replication lag budget). */
export const SYNC_EVENT_BATCH_MS = 10;

export type SyncLog = Pick<Logger, 'info' | 'warn' | 'debug'>;

export interface SyncServiceOptions {
  readonly config: SyncConfig;
  readonly dataPlane: ConnectionState;
  /**
   * The configured services (each virtual server's, every member of a group): what templates
   * name, and what received entries belong to.
   */
  readonly virtualServers?: readonly VirtualService[];
  readonly log?: SyncLog;
  /** Milliseconds for table expiries. Default performance-free Date.now. */
  readonly now?: () => number;
  /** Monotonic milliseconds for lag (observation times of data-plane events use it). Default monotonicMs. */
  readonly clock?: () => number;
  /** Shared signing identity. Default SyncAuth.fromConfig(config). */
  readonly auth?: SyncAuth;
  /** Overrides of the config-derived socket options (tests: loopback ports and targets). */
  readonly sender?: Partial<SyncSenderOptions>;
  readonly receiver?: Partial<SyncReceiverOptions>;
  /** Master: resend live UDP flows and connections this often. Default 60 s; 0 = never. */
  readonly refreshMs?: number;
  /** Backup: first snapshot-request retry delay (doubles up to 10 s). Default 1000. */
  readonly snapshotRetryMs?: number;
  /** Backup: called after received entries were applied (benchmarks measure lag here). */
  readonly onApplied?: (entries: readonly NormalizedEntry[], info: MessageInfo) => void;
  /** Backup: called after a snapshot-end was processed. */
  readonly onSnapshotEnd?: (r: { complete: boolean; swept: number; totals: SnapshotTotals }) => void;
}

const secs = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));
const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const wire = (e: Endpoint) => ({ address: e.address, port: e.port });

/**
 * The configured services, both ways: a service key to what the sync wire carries for it
 * (protocol, virtual address:port, fwmark), and a received entry back to the service key.
 */
export class ServiceIndex {
  readonly #byKey = new Map<ServiceKey, ServiceMatch>();

  constructor(virtualServers: SyncServiceOptions['virtualServers'] = []) {
    for (const vs of virtualServers) this.#byKey.set(vs.key, vs.match);
  }

  match(key: ServiceKey): ServiceMatch | undefined {
    return this.#byKey.get(key);
  }

  /**
   * The service an entry belongs to: by fwmark, else the configured service of that protocol and
   * address whose ports hold the port (port 0, a port-set template: the port-set service). An
   * unconfigured single port maps to its canonical key (the data plane ignores unknown keys).
   */
  keyOf(protocol: 'tcp' | 'udp', virtual: { address: string; port: number }, fwmark: number, family: 4 | 6): ServiceKey {
    if (fwmark > 0) return serviceKey({ kind: 'fwmark', mark: fwmark, family });
    for (const [key, m] of this.#byKey) {
      if (m.kind !== 'addr' || m.protocol !== protocol || m.address !== virtual.address) continue;
      if (virtual.port === 0 ? singlePort(m) === undefined : matchesPort(m, virtual.port)) return key;
    }
    return serviceKey(addrMatch(protocol, virtual.address, virtual.port));
  }

  /** One data-plane event as a sync entry (null: a template of a service not configured here). */
  entryFromEvent(ev: ConnectionEvent): SyncEntry | null {
    if (ev.type === 'template') {
      const m = this.#byKey.get(ev.service);
      if (!m) return null;
      const base = { kind: 'template' as const, family: ev.family, client: { address: ev.client, port: 0 }, real: wire(ev.dest), timeoutSec: secs(ev.expiresInMs) };
      if (m.kind === 'fwmark') return { ...base, protocol: 'any', virtual: { address: m.family === 4 ? '0.0.0.0' : '::', port: 0 }, fwmark: m.mark };
      // A port-set service's template covers all its ports: virtual port 0, as an IPVS port-0 service.
      return { ...base, protocol: m.protocol, virtual: { address: m.address, port: singlePort(m) ?? 0 } };
    }
    const m = this.#byKey.get(ev.service);
    const common = { family: ev.client.family, client: wire(ev.client), virtual: wire(ev.virtual), real: wire(ev.dest), ...(m?.kind === 'fwmark' ? { fwmark: m.mark } : {}) };
    switch (ev.type) {
      case 'conn_new':
        return { kind: 'conn', ...common, protocol: ev.protocol, state: ev.protocol === 'tcp' ? 'ESTABLISHED' : 'UDP', timeoutSec: ev.expiresInMs === undefined ? CONN_TIMEOUT_SEC : secs(ev.expiresInMs) };
      case 'conn_end':
        return { kind: 'conn', ...common, protocol: ev.protocol, state: ev.protocol === 'tcp' ? 'CLOSE' : 'UDP', timeoutSec: 0, ended: true };
      case 'udp_flow_new':
        return { kind: 'udp-flow', ...common, timeoutSec: secs(ev.timeoutMs) };
      case 'udp_flow_expired':
        return { kind: 'udp-flow', ...common, timeoutSec: 0, ended: true };
    }
  }

  /** A data-plane snapshot as sync entries. */
  entriesFromSnapshot(s: ConnectionSnapshot): SyncEntry[] {
    const out: SyncEntry[] = [];
    const add = (e: SyncEntry | null) => {
      if (e) out.push(e);
    };
    for (const t of s.templates) add(this.entryFromEvent(t));
    for (const { type: _t, expiresInMs, ...f } of s.udpFlows) add(this.entryFromEvent({ type: 'udp_flow_new', ...(f as ConnRef), timeoutMs: expiresInMs }));
    for (const { type: _t, ...c } of s.conns) add(this.entryFromEvent({ type: 'conn_new', ...c }));
    return out;
  }

  /** A live synced entry as the data plane restores it (connections only where the data plane can pin them, see RestoreEntry). */
  restoreEntry({ entry: e, remainingMs }: LiveEntry): RestoreEntry | null {
    const endpointOf = (x: { address: string; port: number }): Endpoint => ({ address: x.address, family: e.family, port: x.port });
    if (e.kind === 'template') {
      if (e.protocol === 'any' && !(e.fwmark && e.fwmark > 0)) return null;
      const protocol = e.protocol === 'any' ? 'tcp' : e.protocol;
      return {
        type: 'template',
        service: this.keyOf(protocol, e.virtual, e.fwmark ?? 0, e.family),
        client: e.client.address,
        family: e.family,
        dest: endpointOf(e.real),
        expiresInMs: remainingMs,
      };
    }
    if (e.kind === 'udp-flow') {
      return {
        type: 'udp_flow',
        service: this.keyOf('udp', e.virtual, e.fwmark ?? 0, e.family),
        protocol: 'udp',
        client: endpointOf(e.client),
        virtual: endpointOf(e.virtual),
        dest: endpointOf(e.real),
        expiresInMs: remainingMs,
      };
    }
    if (e.kind === 'conn' && !e.ended && e.state !== 'CLOSE' && e.state !== 'TIME_WAIT') {
      return {
        type: 'conn',
        service: this.keyOf(e.protocol, e.virtual, e.fwmark ?? 0, e.family),
        protocol: e.protocol,
        client: endpointOf(e.client),
        virtual: endpointOf(e.virtual),
        dest: endpointOf(e.real),
        expiresInMs: remainingMs,
      };
    }
    return null;
  }
}

export class SyncService {
  readonly table: SyncTable;
  readonly #opts: SyncServiceOptions;
  readonly #log: SyncLog | undefined;
  readonly #ids: ServiceIndex;
  readonly #now: () => number;
  #sender!: SyncSender;
  #receiver!: SyncReceiver;
  #master = false;
  #closed = false;
  #unsubscribe: (() => void) | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelay: number;
  #snapshotAskedAt: number | undefined;
  readonly #counters = {
    promotions: 0,
    demotions: 0,
    restored: 0,
    eventsSent: 0,
    eventsUnsyncable: 0,
    ignoredAsMaster: 0,
    snapshotsReceived: 0,
    snapshotsIncomplete: 0,
    snapshotRequestsIgnoredAsBackup: 0,
    errors: 0,
  };
  readonly #clock: () => number;
  readonly #sent = new SentLog();
  readonly #rtt = new PeerRtt();
  readonly #lag = new LagWindow();
  #lastTransitUs: number | null = null;
  #lastSnapshotMs: number | null = null;
  #lastSnapshotAt: number | null = null;
  readonly #dropLogged = new Map<string, number>();

  private constructor(opts: SyncServiceOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#clock = opts.clock ?? monotonicMs;
    this.#ids = new ServiceIndex(opts.virtualServers);
    this.table = new SyncTable({ now: this.#now });
    this.#retryDelay = opts.snapshotRetryMs ?? 1000;
  }

  /** Opens both sockets, subscribes to the data plane and starts as BACKUP (asks for a snapshot). */
  static async open(opts: SyncServiceOptions): Promise<SyncService> {
    const s = new SyncService(opts);
    const auth = opts.auth ?? SyncAuth.fromConfig(opts.config);
    const onError = (err: unknown): void => s.#error(err);
    s.#sender = await SyncSender.open({
      ...senderOptionsFromConfig(opts.config, auth, { onError, onSnapshotRequest: () => s.#snapshotEntries() }),
      flushIntervalMs: 5,
      sentLog: s.#sent,
      transitUs: () => s.#rtt.transitUs(s.#clock()),
      clock: s.#clock,
      ...opts.sender,
    });
    try {
      s.#receiver = await SyncReceiver.open({
        ...receiverOptionsFromConfig(opts.config, auth, {
          onEntries: (entries, info) => s.#onEntries(entries, info),
          onSnapshotRequest: (req) => s.#onSnapshotRequest(req),
          onSnapshotEnd: (totals) => s.#onSnapshotEnd(totals),
          onError,
          onDrop: (reason, detail, from) => s.#onDrop(reason, detail, from.address),
          sentLog: s.#sent,
          onRtt: (x) => s.#rtt.add(`${x.from.address} ${x.bootId}`, x.rttMs, s.#clock()),
        }),
        clock: s.#clock,
        ...opts.receiver,
      });
    } catch (err) {
      await s.#sender.close();
      throw err;
    }
    s.#unsubscribe = opts.dataPlane.onEvent((events) => s.#onEvents(events));
    s.#sweepTimer = setInterval(() => s.table.sweep(), 1000);
    s.#sweepTimer.unref();
    s.#askSnapshot();
    return s;
  }

  get role(): 'master' | 'backup' {
    return this.#master ? 'master' : 'backup';
  }

  /** The receiver's bound address (tests use port 0). */
  receiverAddress(): { address: string; port: number } {
    return this.#receiver.address();
  }

  /**
   * Follows the VRRP state of `sync.instance`. On promotion the synced templates and UDP
   * flows are posted to the data plane before this returns (the promise resolves when the
   * worker applied them); call it before letting the virtual-server manager serve.
   */
  setMaster(master: boolean): Promise<void> {
    if (this.#closed || master === this.#master) return Promise.resolve();
    this.#master = master;
    if (master) {
      this.#counters.promotions++;
      this.#stopRetry();
      this.table.sweep();
      const restore: RestoreEntry[] = [];
      for (const le of this.table.live()) {
        const r = this.#ids.restoreEntry(le);
        if (r) restore.push(r);
      }
      this.#counters.restored += restore.length;
      const done = restore.length > 0 ? this.#opts.dataPlane.restore(restore) : Promise.resolve();
      this.#log?.info({ templates: restore.filter((r) => r.type === 'template').length, udp_flows: restore.filter((r) => r.type === 'udp_flow').length }, 'sync: MASTER, restored the synced table into the data plane');
      const refresh = this.#opts.refreshMs ?? 60_000;
      if (refresh > 0) {
        this.#refreshTimer = setInterval(() => void this.#refresh(), refresh);
        this.#refreshTimer.unref();
      }
      return done.catch((err: unknown) => this.#error(err));
    }
    this.#counters.demotions++;
    clearInterval(this.#refreshTimer);
    this.#refreshTimer = undefined;
    this.#log?.info({}, 'sync: BACKUP, asking the master for its table');
    this.#retryDelay = this.#opts.snapshotRetryMs ?? 1000;
    const flushed = this.#sender.flush().catch((err: unknown) => this.#error(err));
    this.#askSnapshot();
    return flushed;
  }

  status(): SyncStatusReport {
    const s = this.#sender.counters;
    const r = this.#receiver.counters;
    const sizes = this.table.sizes();
    const rtt = this.#rtt.rttMs(this.#clock());
    return {
      role: this.role,
      instance: this.#opts.config.instance,
      table: { templates: sizes.templates, udp_flows: sizes.udpFlows, conns: sizes.conns },
      sent: {
        messages: s.messages,
        entries: s.entries,
        bytes: s.bytes,
        send_errors: s.sendErrors,
        queue_drops: s.queueDrops,
        snapshots: s.snapshots,
        snapshot_requests: s.snapshotRequests,
      },
      received: {
        messages: r.messages,
        entries: r.entries,
        bytes: r.bytes,
        dropped: { ...r.dropped },
        snapshot_requests_sent: r.snapshotRequestsSent,
      },
      lag: { ...this.#lag.summary(), transit_ms: this.#lastTransitUs === null ? null : round3(this.#lastTransitUs / 1000) },
      echo: { acks_sent: r.lagAcksSent, acks_received: r.lagAcksReceived, rtt_ms: rtt === null ? null : round3(rtt) },
      snapshots_received: this.#counters.snapshotsReceived,
      snapshots_incomplete: this.#counters.snapshotsIncomplete,
      last_snapshot_ms: this.#lastSnapshotMs,
      last_snapshot_at: this.#lastSnapshotAt,
      promotions: this.#counters.promotions,
      demotions: this.#counters.demotions,
      restored: this.#counters.restored,
      ignored_as_master: this.#counters.ignoredAsMaster,
      errors: this.#counters.errors,
    };
  }

  /** Stops everything; pending updates are sent first. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    clearInterval(this.#sweepTimer);
    clearInterval(this.#refreshTimer);
    this.#stopRetry();
    await Promise.all([this.#sender.close(), this.#receiver.close()]);
  }

  // ------------------------------------------------------------------ master side

  #onEvents(events: readonly ConnectionEvent[]): void {
    if (!this.#master || this.#closed) return;
    const out: SyncEntry[] = [];
    const observed: number[] = [];
    const now = this.#clock();
    for (const ev of events) {
      const e = this.#ids.entryFromEvent(ev);
      if (e) {
        out.push(e);
        observed.push(ev.observedAt ?? now);
      } else this.#counters.eventsUnsyncable++;
    }
    if (out.length === 0) return;
    this.#counters.eventsSent += out.length;
    try {
      this.#sender.enqueue(out, observed);
    } catch (err) {
      this.#error(err);
      return;
    }
    // The data plane already batched these: send now rather than after flushIntervalMs.
    void this.#sender.flush().catch((err: unknown) => this.#error(err));
  }

  /** The master's full table: the data plane's, plus synced entries restored but not used yet. */
  async #snapshotEntries(): Promise<SyncEntry[] | undefined> {
    if (!this.#master || this.#closed) return undefined;
    const entries = this.#ids.entriesFromSnapshot(await this.#opts.dataPlane.snapshot());
    if (this.table.size > 0) {
      const have = new Set(entries.map(entryKey));
      for (const { entry, remainingMs } of this.table.live()) {
        if (entry.kind === 'conn' || have.has(entryKey(entry))) continue;
        entries.push({ ...entry, timeoutSec: secs(remainingMs) });
      }
    }
    return entries;
  }

  async #refresh(): Promise<void> {
    if (!this.#master || this.#closed) return;
    try {
      const s = await this.#opts.dataPlane.snapshot();
      if (!this.#master || this.#closed) return;
      const entries = this.#ids.entriesFromSnapshot({ templates: [], udpFlows: s.udpFlows, conns: s.conns });
      if (entries.length > 0) this.#sender.enqueue(entries);
    } catch (err) {
      this.#error(err);
    }
  }

  #onSnapshotRequest(req: SnapshotRequest): void {
    if (!this.#master) {
      this.#counters.snapshotRequestsIgnoredAsBackup++;
      return;
    }
    void this.#sender.handleSnapshotRequest(req).then((r) => {
      if (r) this.#log?.info({ to: req.from.address, entries: r.entries, messages: r.messages, ms: Math.round(r.ms) }, 'sync: snapshot sent');
    });
  }

  // ------------------------------------------------------------------ backup side

  #onEntries(entries: NormalizedEntry[], info: MessageInfo): void {
    if (this.#master) {
      this.#counters.ignoredAsMaster += entries.length;
      return;
    }
    this.table.apply(entries, info.kind === 'snapshot');
    if (info.kind === 'update') this.#recordLag(entries.length, info);
    this.#opts.onApplied?.(entries, info);
  }

  /** The lags of update entries just written: age (master) + transit (echo) + receipt -> now (here). */
  #recordLag(n: number, info: MessageInfo): void {
    const t = info.timing;
    if (!t || info.receivedAt === undefined) {
      for (let i = 0; i < n; i++) this.#lag.add(null);
      return;
    }
    this.#lastTransitUs = t.transitUs;
    const local = this.#clock() - info.receivedAt;
    for (let i = 0; i < n; i++) this.#lag.add(entryLagMs(t.agesUs[i], t.transitUs, local));
  }

  #onSnapshotEnd(totals: SnapshotTotals): void {
    if (this.#master) return;
    const r = this.table.endSnapshot(totals);
    if (r.complete) {
      this.#counters.snapshotsReceived++;
      if (this.#snapshotAskedAt !== undefined) this.#lastSnapshotMs = this.#now() - this.#snapshotAskedAt;
      this.#lastSnapshotAt = this.#now();
      this.#snapshotAskedAt = undefined;
      this.#stopRetry();
      this.#log?.info({ entries: totals.entries, swept: r.swept, ms: this.#lastSnapshotMs }, 'sync: snapshot received');
    } else {
      this.#counters.snapshotsIncomplete++;
      this.#log?.warn({ expected: totals.entries }, 'sync: incomplete snapshot (datagrams lost); asking again');
      this.#askSnapshot();
    }
    this.#opts.onSnapshotEnd?.({ ...r, totals });
  }

  #askSnapshot(): void {
    if (this.#closed || this.#master) return;
    this.#stopRetry();
    this.#snapshotAskedAt ??= this.#now();
    this.#receiver.requestSnapshot().catch((err: unknown) => this.#error(err));
    const delay = this.#retryDelay;
    this.#retryDelay = Math.min(10_000, this.#retryDelay * 2);
    this.#armRetry(delay, -1);
  }

  #armRetry(delay: number, seen: number): void {
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#closed || this.#master) return;
      // A snapshot still arriving gets more time; a stalled one is dropped and asked again.
      const got = this.table.snapshotReceived;
      if (this.table.snapshotInProgress && got > seen) return this.#armRetry(delay, got);
      this.table.abortSnapshot();
      this.#askSnapshot();
    }, delay);
    this.#retryTimer.unref();
  }

  #stopRetry(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  /** Logs rejected datagrams, at most one line per reason per 10 s (counters have them all). */
  #onDrop(reason: string, detail: string, from: string): void {
    if (reason === 'own_message' || reason === 'foreign_sync_id') return;
    const now = Date.now();
    if ((this.#dropLogged.get(reason) ?? -Infinity) > now - 10_000) return;
    this.#dropLogged.set(reason, now);
    this.#log?.warn({ reason, detail, from }, 'sync datagram dropped (further ones of this reason are counted, not logged, for 10 s)');
  }

  #error(err: unknown): void {
    this.#counters.errors++;
    this.#log?.warn({ err: errorMessage(err) }, 'sync error');
  }
}
