/**
 * The Prometheus exposition: a private prom-client Registry whose metrics are computed from a
 * snapshot of the daemon's state at scrape time.
 *
 * Nothing here keeps state of its own: every scrape takes one snapshot from the MetricsSource
 * (shared by all metrics of that scrape, so the exposition is a consistent view) and rebuilds every
 * series from it. Counters are exported from the engines' own monotonic counters (absolute
 * values), so they stay of type counter; a label set missing from the snapshot (an instance or
 * virtual server removed on reload) is missing from the exposition.
 *
 * The metric list, with types and labels, is in docs/metrics.md.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type CounterConfiguration, type GaugeConfiguration, type LabelValues } from 'prom-client';
import type { MemberStatus, StatusReport, VirtualServerStatus, RealServerStatus } from '../daemon/status.js';
import { endpointText } from '../util/endpoint.js';
import { DROP_REASONS } from '../vrrp/drop.js';
import type { VrrpStateName } from '../vrrp/state.js';

export const METRIC_PREFIX = 'keepalive_ts_';

/**
 * Name of the label carrying the VRRP instance name. Not `instance`: Prometheus attaches its own
 * `instance` target label to every scraped series, and a clashing exposed label is renamed to
 * `exported_instance` (honor_labels: false, the default), which breaks every query written
 * against it.
 */
export const INSTANCE_LABEL = 'vrrp_instance';

/** All VRRP states, exported one-hot by keepalive_ts_vrrp_state. */
export const VRRP_STATES = ['INIT', 'BACKUP', 'MASTER', 'FAULT', 'STOP'] as const satisfies readonly VrrpStateName[];
// Compile-time check that VRRP_STATES lists every VrrpStateName.
const allStatesListed: Exclude<VrrpStateName, (typeof VRRP_STATES)[number]> extends never ? true : never = true;
void allStatesListed;

// ---------------------------------------------------------------------------------------------
// The snapshot

/** Per VRRP instance counters kept outside the status report (the announcer's). */
export interface VrrpInstanceExtras {
  /** Gratuitous ARP frames sent (IPv4 VIPs). */
  garp_sent?: number;
  /** Unsolicited neighbour advertisements sent (IPv6 VIPs). */
  na_sent?: number;
}

/** One health check of one real server. */
export interface CheckExtras {
  /** Virtual server id as virtualServerId() builds it, e.g. "tcp/10.0.0.50:80". */
  virtual_server: string;
  /** Real server id as realServerId() builds it, e.g. "10.0.0.21:80". */
  real_server: string;
  /** Check type as configured: "TCP_CHECK", "HTTP_GET", "MISC_CHECK"... */
  type: string;
  /** Duration of the last completed check, seconds; absent until one completed. */
  last_duration_seconds?: number;
  /** Failed checks since the checker started (monotonic). */
  failures?: number;
}

export interface SyncExtras {
  messages_sent?: number;
  messages_received?: number;
  /** Received messages refused, by reason (stable strings, like DROP_REASONS). */
  rejected?: Record<string, number>;
  /** Connection entries currently held in the sync table. */
  entries?: number;
  /** Last full resync (snapshot asked -> complete), ms; null before the first. */
  last_snapshot_ms?: number | null;
  /** Measured lag of the entries written as backup (status sync.lag): ms, null while none. */
  lag?: { p50_ms: number | null; p99_ms: number | null; last_ms: number | null; measured: number; unmeasured: number };
  /** Round trip to the peer(s) measured by lag-acks (status sync.echo.rtt_ms), ms; null while none. */
  rtt_ms?: number | null;
  /** conntrackd ([sync.conntrackd]): cache sizes, datagrams, the guard table's counters, commits. */
  conntrackd?: {
    running: boolean;
    commands_failed: number;
    last_commit: { at: number; ms: number } | null;
    stats: { internal: { active: number } | null; external: { active: number } | null; packetsRecv: number; packetsSent: number; malformed: number; lost: number } | null;
    guard: { accepted: number; drop_interface: number; drop_source: number } | null;
  };
}

/** E-mail alerts (global notification_email / smtp_server). */
export interface AlertExtras {
  /** Accepted by the SMTP server. */
  sent?: number;
  /** Refused, timed out or unreachable. */
  failed?: number;
  /** Dropped because the queue was full. */
  dropped?: number;
}

export interface ReloadExtras {
  /** Reloads applied (or found nothing to change). */
  ok?: number;
  /** Reloads refused (invalid config, unsupported change, apply failure). */
  error?: number;
}

/**
 * Counters not in the StatusReport. Every field is optional: the daemon fills what its engines
 * provide; a missing field means "no such engine", and its metrics are simply absent.
 */
export interface MetricsExtras {
  /** Keyed by VRRP instance name; entries for instances not in the status are ignored. */
  vrrp?: Record<string, VrrpInstanceExtras>;
  checks?: CheckExtras[];
  sync?: SyncExtras;
  reload?: ReloadExtras;
  alerts?: AlertExtras;
  /** Route / rule / static address changes the kernel refused (virtual_routes, static_routes...). */
  route_failures?: number;
  /** Runtime override commands applied (keepalive-ts weight / drain / disable / enable), by action. */
  overrides?: Record<string, number>;
}

export interface MetricsSnapshot {
  status: StatusReport;
  extras?: MetricsExtras;
}

/**
 * What the daemon implements: returns the current snapshot. Called once per scrape (all metrics
 * of a scrape share the result); it must be cheap and must not block. If it throws, the scrape
 * fails (the HTTP server answers 500) and the next one tries again.
 */
export type MetricsSource = () => MetricsSnapshot;

// ---------------------------------------------------------------------------------------------
// Label values

/** The canonical service key, e.g. "tcp/10.0.0.50:80", "udp/[2001:db8::50]:53", "fwmark/1": the `virtual_server` label value. */
export function virtualServerId(vs: Pick<VirtualServerStatus, 'key'>): string {
  return vs.key;
}

/** "10.0.0.21:80", "[2001:db8::21]:80" ("10.0.0.21" with no port of its own): the `real_server` label value. */
export function realServerId(rs: Pick<RealServerStatus, 'address' | 'port'>): string {
  return endpointText(rs);
}

// ---------------------------------------------------------------------------------------------
// Metric definitions

export interface Sample<L extends string> {
  labels: Partial<Record<L, string>>;
  value: number;
}

export interface MetricDef<L extends string> {
  /** Without the prefix. */
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  labelNames: readonly L[];
  samples(snap: MetricsSnapshot): Iterable<Sample<L>>;
}

function def<L extends string>(d: MetricDef<L>): MetricDef<L> {
  return d;
}

function isCounterValue(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

function isGaugeValue(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

const VRRP_LABELS = [INSTANCE_LABEL, 'interface', 'vrid'] as const;
type VrrpLabel = (typeof VRRP_LABELS)[number];

function vrrpLabels(i: StatusReport['vrrp'][number]): Record<VrrpLabel, string> {
  return { [INSTANCE_LABEL]: i.name, interface: i.interface, vrid: String(i.vrid) };
}

function perInstance(name: string, help: string, type: 'counter' | 'gauge', pick: (i: StatusReport['vrrp'][number]) => number): MetricDef<VrrpLabel> {
  return def({
    name,
    help,
    type,
    labelNames: VRRP_LABELS,
    *samples(snap) {
      for (const i of snap.status.vrrp) yield { labels: vrrpLabels(i), value: pick(i) };
    },
  });
}

/** A null value (the data plane cannot tell) has no series. */
function perVirtualServer(name: string, help: string, type: 'counter' | 'gauge', pick: (vs: VirtualServerStatus) => number | null): MetricDef<'virtual_server'> {
  return def({
    name,
    help,
    type,
    labelNames: ['virtual_server'],
    *samples(snap) {
      for (const vs of snap.status.virtual_servers) {
        const value = pick(vs);
        if (value !== null) yield { labels: { virtual_server: virtualServerId(vs) }, value };
      }
    },
  });
}

/** Members of group virtual servers: `service` is the member's own key. */
function perMember(name: string, help: string, type: 'counter' | 'gauge', pick: (m: MemberStatus) => number): MetricDef<'virtual_server' | 'service'> {
  return def({
    name,
    help,
    type,
    labelNames: ['virtual_server', 'service'],
    *samples(snap) {
      for (const vs of snap.status.virtual_servers) for (const m of vs.members ?? []) yield { labels: { virtual_server: virtualServerId(vs), service: m.key }, value: pick(m) };
    },
  });
}

function perRealServer(name: string, help: string, type: 'counter' | 'gauge', pick: (rs: RealServerStatus) => number | null): MetricDef<'virtual_server' | 'real_server'> {
  return def({
    name,
    help,
    type,
    labelNames: ['virtual_server', 'real_server'],
    *samples(snap) {
      for (const vs of snap.status.virtual_servers) {
        const v = virtualServerId(vs);
        for (const rs of vs.real_servers) {
          const value = pick(rs);
          if (value !== null) yield { labels: { virtual_server: v, real_server: realServerId(rs) }, value };
        }
      }
    },
  });
}

/** in/out pairs; a null value (packets the data plane never sees) has no series. */
function* inOut(v: string, inValue: number | null, outValue: number | null, extra: Record<string, string> = {}): Iterable<Sample<'virtual_server' | 'real_server' | 'service' | 'direction'>> {
  if (inValue !== null) yield { labels: { virtual_server: v, ...extra, direction: 'in' }, value: inValue };
  if (outValue !== null) yield { labels: { virtual_server: v, ...extra, direction: 'out' }, value: outValue };
}

/** An in/out counter per virtual server (`direction` label). */
function inOutPerVirtualServer(name: string, help: string, pick: (vs: VirtualServerStatus) => [number | null, number | null]): MetricDef<'virtual_server' | 'direction'> {
  return def({
    name,
    help,
    type: 'counter',
    labelNames: ['virtual_server', 'direction'],
    *samples(snap) {
      for (const vs of snap.status.virtual_servers) yield* inOut(virtualServerId(vs), ...pick(vs));
    },
  });
}

/** An in/out counter per real server (`direction` label). */
function inOutPerRealServer(name: string, help: string, pick: (rs: RealServerStatus) => [number | null, number | null]): MetricDef<'virtual_server' | 'real_server' | 'direction'> {
  return def({
    name,
    help,
    type: 'counter',
    labelNames: ['virtual_server', 'real_server', 'direction'],
    *samples(snap) {
      for (const vs of snap.status.virtual_servers) {
        const v = virtualServerId(vs);
        for (const rs of vs.real_servers) yield* inOut(v, ...pick(rs), { real_server: realServerId(rs) });
      }
    },
  });
}

/** Every metric this module exports besides prom-client's default process metrics. */
export const METRIC_DEFS: readonly MetricDef<string>[] = [
  def({
    name: 'info',
    help: 'Always 1; labels carry the daemon version and router_id.',
    type: 'gauge',
    labelNames: ['version', 'router_id'],
    *samples(snap) {
      yield { labels: { version: snap.status.version, router_id: snap.status.router_id }, value: 1 };
    },
  }),

  // --- VRRP ---
  def({
    name: 'vrrp_state',
    help: 'VRRP instance state, one-hot: 1 for the current state, 0 for the others.',
    type: 'gauge',
    labelNames: [...VRRP_LABELS, 'state'],
    *samples(snap) {
      for (const i of snap.status.vrrp) {
        const base = vrrpLabels(i);
        for (const s of VRRP_STATES) yield { labels: { ...base, state: s }, value: i.state === s ? 1 : 0 };
        // A state name this module does not know yet still shows up, rather than no state at all.
        if (!(VRRP_STATES as readonly string[]).includes(i.state)) yield { labels: { ...base, state: i.state }, value: 1 };
      }
    },
  }),
  perInstance('vrrp_transitions_total', 'VRRP state transitions of the instance.', 'counter', (i) => i.transitions),
  perInstance('vrrp_adverts_sent_total', 'VRRP advertisements sent by the instance.', 'counter', (i) => i.adverts_sent),
  perInstance('vrrp_adverts_received_total', 'VRRP advertisements received and accepted by the instance.', 'counter', (i) => i.adverts_received),
  def({
    name: 'vrrp_packets_dropped_total',
    help: 'Received VRRP packets dropped, by reason; vrrp_instance="" for drops no instance could be blamed for (counted per socket).',
    type: 'counter',
    labelNames: [INSTANCE_LABEL, 'socket', 'reason'],
    *samples(snap) {
      const rows: Array<[string, string, Record<string, number>]> = [
        ...snap.status.vrrp.map((i): [string, string, Record<string, number>] => [i.name, `${i.interface}/v${i.family}`, i.drops]),
        ...Object.entries(snap.status.vrrp_socket_drops).map(([sock, drops]): [string, string, Record<string, number>] => ['', sock, drops]),
      ];
      for (const [inst, socket, drops] of rows) {
        // Every known reason is exported (0 until the first drop) so rate() sees the first one.
        const reasons = new Set<string>([...DROP_REASONS, ...Object.keys(drops)]);
        for (const reason of reasons) yield { labels: { [INSTANCE_LABEL]: inst, socket, reason }, value: drops[reason] ?? 0 };
      }
    },
  }),
  perInstance('vrrp_priority', 'Configured VRRP priority of the instance.', 'gauge', (i) => i.priority),
  perInstance('vrrp_effective_priority', 'VRRP priority the instance advertises now (configured priority adjusted by tracked scripts and interfaces).', 'gauge', (i) => i.effective_priority),
  perInstance('vrrp_vips_restored_total', 'Virtual IPs put back by the instance after something else removed them while it was MASTER.', 'counter', (i) => i.vips_restored),
  def({
    name: 'vrrp_garp_sent_total',
    help: 'Gratuitous ARP (kind="garp", IPv4) and unsolicited neighbour advertisement (kind="na", IPv6) frames sent for the instance VIPs.',
    type: 'counter',
    labelNames: [...VRRP_LABELS, 'kind'],
    *samples(snap) {
      const extras = snap.extras?.vrrp;
      if (!extras) return;
      for (const i of snap.status.vrrp) {
        const e = Object.hasOwn(extras, i.name) ? extras[i.name] : undefined;
        if (!e) continue;
        const base = vrrpLabels(i);
        if (e.garp_sent !== undefined) yield { labels: { ...base, kind: 'garp' }, value: e.garp_sent };
        if (e.na_sent !== undefined) yield { labels: { ...base, kind: 'na' }, value: e.na_sent };
      }
    },
  }),

  // --- virtual servers ---
  def({
    name: 'virtual_server_info',
    help: 'Always 1; labels carry the forwarding kind (lb_kind) and the scheduler in effect.',
    type: 'gauge',
    labelNames: ['virtual_server', 'kind', 'scheduler'],
    *samples(snap) {
      for (const vs of snap.status.virtual_servers) yield { labels: { virtual_server: virtualServerId(vs), kind: vs.kind, scheduler: vs.scheduler_in_effect }, value: 1 };
    },
  }),
  perVirtualServer('virtual_server_quorum_up', '1 while the weight of the real servers up reaches the virtual server quorum, 0 while below it (quorum_down; the sorry server serves if configured).', 'gauge', (vs) =>
    vs.quorum_up === undefined ? null : vs.quorum_up ? 1 : 0,
  ),
  perVirtualServer('virtual_server_connections_total', 'Connections scheduled by the virtual server (to real servers and the sorry server).', 'counter', (vs) => vs.conns),
  perVirtualServer('virtual_server_active_connections', 'Active (established) connections of the virtual server: the sum over its real servers.', 'gauge', (vs) =>
    vs.real_servers.some((rs) => rs.active_conns === null) ? null : vs.real_servers.reduce((n, rs) => n + (rs.active_conns ?? 0), 0),
  ),
  inOutPerVirtualServer('virtual_server_bytes_total', 'Bytes through the virtual server; direction="in" from clients, "out" to clients.', (vs) => [vs.in_bytes, vs.out_bytes]),
  inOutPerVirtualServer('virtual_server_packets_total', 'Packets through the virtual server; direction="in" from clients, "out" to clients. No series where the data plane never sees packets (the proxy\'s TCP services).', (vs) => [vs.in_pkts, vs.out_pkts]),
  perVirtualServer('sorry_server_active', '1 while the sorry server takes the new connections of the virtual server, else 0; no series without a sorry server.', 'gauge', (vs) =>
    vs.sorry_server ? (vs.sorry_server.in_use ? 1 : 0) : null,
  ),
  perVirtualServer('sorry_server_connections_total', 'Connections sent to the sorry server; no series without a sorry server.', 'counter', (vs) => vs.sorry_server?.conns ?? null),

  // --- members of virtual_server_group virtual servers (the virtual_server series are their sums) ---
  perMember('virtual_server_member_serving', '1 while this director serves the member of a group virtual server (it holds the member\'s address), else 0.', 'gauge', (m) => (m.serving ? 1 : 0)),
  perMember('virtual_server_member_connections_total', 'Connections scheduled by one member of a group virtual server.', 'counter', (m) => m.conns),
  def({
    name: 'virtual_server_member_bytes_total',
    help: 'Bytes through one member of a group virtual server; direction="in" from clients, "out" to clients.',
    type: 'counter',
    labelNames: ['virtual_server', 'service', 'direction'],
    *samples(snap) {
      for (const vs of snap.status.virtual_servers) for (const m of vs.members ?? []) yield* inOut(virtualServerId(vs), m.in_bytes, m.out_bytes, { service: m.key });
    },
  }),

  // --- real servers ---
  perRealServer('real_server_up', '1 when the real server passes its health checks (in the pool), else 0.', 'gauge', (rs) => (rs.up ? 1 : 0)),
  perRealServer('real_server_weight', 'Scheduling weight of the real server in the data plane now: 0 while down, drained or disabled; ramping up during slow start (all weights of the service scaled alike while a ramp needs finer steps).', 'gauge', (rs) => rs.weight),
  perRealServer('real_server_configured_weight', 'The weight of the real server in the config.', 'gauge', (rs) => rs.configured_weight ?? null),
  def({
    name: 'real_server_override',
    help: '1 for a real server with a runtime override on this director (keepalive-ts weight / drain / disable; cleared by enable or a restart), action="weight", "drain" or "disable"; no series without one.',
    type: 'gauge',
    labelNames: ['virtual_server', 'real_server', 'action'],
    *samples(snap) {
      for (const vs of snap.status.virtual_servers) {
        for (const rs of vs.real_servers) if (rs.override) yield { labels: { virtual_server: virtualServerId(vs), real_server: realServerId(rs), action: rs.override.action }, value: 1 };
      }
    },
  }),
  perRealServer('real_server_active_connections', 'Active (established) connections of the real server.', 'gauge', (rs) => rs.active_conns),
  perRealServer('real_server_inactive_connections', 'Inactive connections (closing, SYN_RECV, UDP) of the real server.', 'gauge', (rs) => rs.inact_conns),
  perRealServer('real_server_connections_total', 'Connections scheduled to the real server.', 'counter', (rs) => rs.conns),
  inOutPerRealServer('real_server_bytes_total', 'Bytes through the real server; direction="in" from clients, "out" to clients.', (rs) => [rs.in_bytes, rs.out_bytes]),
  inOutPerRealServer('real_server_packets_total', 'Packets through the real server; direction="in" from clients, "out" to clients. No series where the data plane never sees packets.', (rs) => [rs.in_pkts, rs.out_pkts]),

  // --- health checks ---
  def({
    name: 'check_duration_seconds',
    help: 'Duration of the last completed health check of the real server.',
    type: 'gauge',
    labelNames: ['virtual_server', 'real_server', 'check'],
    *samples(snap) {
      for (const c of snap.extras?.checks ?? []) {
        if (c.last_duration_seconds !== undefined) yield { labels: { virtual_server: c.virtual_server, real_server: c.real_server, check: c.type }, value: c.last_duration_seconds };
      }
    },
  }),
  def({
    name: 'check_failures_total',
    help: 'Failed health checks of the real server.',
    type: 'counter',
    labelNames: ['virtual_server', 'real_server', 'check'],
    *samples(snap) {
      for (const c of snap.extras?.checks ?? []) {
        if (c.failures !== undefined) yield { labels: { virtual_server: c.virtual_server, real_server: c.real_server, check: c.type }, value: c.failures };
      }
    },
  }),

  // --- connection sync ---
  def({
    name: 'sync_messages_total',
    help: 'Connection-sync messages, direction="sent" or "received".',
    type: 'counter',
    labelNames: ['direction'],
    *samples(snap) {
      const s = snap.extras?.sync;
      if (s?.messages_sent !== undefined) yield { labels: { direction: 'sent' }, value: s.messages_sent };
      if (s?.messages_received !== undefined) yield { labels: { direction: 'received' }, value: s.messages_received };
    },
  }),
  def({
    name: 'sync_rejected_total',
    help: 'Received connection-sync messages refused, by reason.',
    type: 'counter',
    labelNames: ['reason'],
    *samples(snap) {
      for (const [reason, n] of Object.entries(snap.extras?.sync?.rejected ?? {})) yield { labels: { reason }, value: n };
    },
  }),
  def({
    name: 'sync_entries',
    help: 'Connection entries currently held in the sync table.',
    type: 'gauge',
    labelNames: [],
    *samples(snap) {
      const n = snap.extras?.sync?.entries;
      if (n !== undefined) yield { labels: {}, value: n };
    },
  }),
  def({
    name: 'sync_last_snapshot_seconds',
    help: 'Duration of the last full resync (snapshot asked to snapshot complete).',
    type: 'gauge',
    labelNames: [],
    *samples(snap) {
      const ms = snap.extras?.sync?.last_snapshot_ms;
      if (typeof ms === 'number') yield { labels: {}, value: ms / 1000 };
    },
  }),
  def({
    name: 'sync_lag_p50_seconds',
    help: 'Replication lag of the entries written into the sync table as backup (observed on the master to written here, measured; docs/sync-protocol.md "Lag"): median over the last 4096 entries.',
    type: 'gauge',
    labelNames: [],
    *samples(snap) {
      const ms = snap.extras?.sync?.lag?.p50_ms;
      if (typeof ms === 'number') yield { labels: {}, value: ms / 1000 };
    },
  }),
  def({
    name: 'sync_lag_p99_seconds',
    help: 'Replication lag of the entries written into the sync table as backup: 99th percentile over the last 4096 entries.',
    type: 'gauge',
    labelNames: [],
    *samples(snap) {
      const ms = snap.extras?.sync?.lag?.p99_ms;
      if (typeof ms === 'number') yield { labels: {}, value: ms / 1000 };
    },
  }),
  def({
    name: 'sync_lag_last_seconds',
    help: 'Replication lag of the last entry written into the sync table as backup.',
    type: 'gauge',
    labelNames: [],
    *samples(snap) {
      const ms = snap.extras?.sync?.lag?.last_ms;
      if (typeof ms === 'number') yield { labels: {}, value: ms / 1000 };
    },
  }),
  def({
    name: 'sync_lag_entries_total',
    help: 'Entries written into the sync table as backup, measured="true" with a lag measurement, "false" without (a version-1 peer, or no echo yet).',
    type: 'counter',
    labelNames: ['measured'],
    *samples(snap) {
      const l = snap.extras?.sync?.lag;
      if (!l) return;
      yield { labels: { measured: 'true' }, value: l.measured };
      yield { labels: { measured: 'false' }, value: l.unmeasured };
    },
  }),
  def({
    name: 'sync_rtt_seconds',
    help: 'Round trip to the sync peer measured by lag-acks (median of the last ones; the slowest peer); half of it is the transit in the lag.',
    type: 'gauge',
    labelNames: [],
    *samples(snap) {
      const ms = snap.extras?.sync?.rtt_ms;
      if (typeof ms === 'number') yield { labels: {}, value: ms / 1000 };
    },
  }),
  def({
    name: 'sync_conntrackd_up',
    help: 'conntrackd run by keepalive-ts ([sync.conntrackd]) is running (1) or not (0).',
    type: 'gauge',
    labelNames: [],
    *samples(snap) {
      const c = snap.extras?.sync?.conntrackd;
      if (c) yield { labels: {}, value: c.running ? 1 : 0 };
    },
  }),
  def({
    name: 'sync_conntrackd_cache_entries',
    help: 'conntrackd cache entries (conntrackd -s): cache="internal" (this director\'s connections) or "external" (the peer\'s, committed on takeover).',
    type: 'gauge',
    labelNames: ['cache'],
    *samples(snap) {
      const st = snap.extras?.sync?.conntrackd?.stats;
      if (st?.internal) yield { labels: { cache: 'internal' }, value: st.internal.active };
      if (st?.external) yield { labels: { cache: 'external' }, value: st.external.active };
    },
  }),
  def({
    name: 'sync_conntrackd_messages_total',
    help: 'conntrackd replication datagrams (conntrackd -s), direction="sent", "received", "malformed" or "lost".',
    type: 'counter',
    labelNames: ['direction'],
    *samples(snap) {
      const st = snap.extras?.sync?.conntrackd?.stats;
      if (!st) return;
      yield { labels: { direction: 'sent' }, value: st.packetsSent };
      yield { labels: { direction: 'received' }, value: st.packetsRecv };
      yield { labels: { direction: 'malformed' }, value: st.malformed };
      yield { labels: { direction: 'lost' }, value: st.lost };
    },
  }),
  def({
    name: 'sync_conntrackd_guard_packets_total',
    help: 'Datagrams to conntrackd\'s port seen by the guard table: verdict="accepted" (from the peer on the sync interface), "drop_source", "drop_interface".',
    type: 'counter',
    labelNames: ['verdict'],
    *samples(snap) {
      const g = snap.extras?.sync?.conntrackd?.guard;
      if (!g) return;
      yield { labels: { verdict: 'accepted' }, value: g.accepted };
      yield { labels: { verdict: 'drop_source' }, value: g.drop_source };
      yield { labels: { verdict: 'drop_interface' }, value: g.drop_interface };
    },
  }),
  def({
    name: 'sync_conntrackd_command_failures_total',
    help: 'conntrackd commands (-c -f -R -B on MASTER, -t -n on BACKUP) that failed.',
    type: 'counter',
    labelNames: [],
    *samples(snap) {
      const c = snap.extras?.sync?.conntrackd;
      if (c) yield { labels: {}, value: c.commands_failed };
    },
  }),
  def({
    name: 'sync_conntrackd_last_commit_seconds',
    help: 'Duration of the last promotion sequence (commit of the external cache, flush, resync, bulk update).',
    type: 'gauge',
    labelNames: [],
    *samples(snap) {
      const c = snap.extras?.sync?.conntrackd?.last_commit;
      if (c) yield { labels: {}, value: c.ms / 1000 };
    },
  }),

  // --- BGP ---
  def({
    name: 'bgp_session_up',
    help: '1 while the BGP session with the peer is Established, else 0.',
    type: 'gauge',
    labelNames: ['peer'],
    *samples(snap) {
      for (const x of snap.status.bgp?.sessions ?? []) yield { labels: { peer: x.peer }, value: x.established ? 1 : 0 };
    },
  }),
  def({
    name: 'bgp_session_uptime_seconds',
    help: 'Seconds since the BGP session with the peer was established; 0 while it is not.',
    type: 'gauge',
    labelNames: ['peer'],
    *samples(snap) {
      for (const x of snap.status.bgp?.sessions ?? []) yield { labels: { peer: x.peer }, value: x.uptime_s ?? 0 };
    },
  }),
  def({
    name: 'bgp_session_prefixes',
    help: 'Prefixes BIRD announces to the peer now (0 while the session is down).',
    type: 'gauge',
    labelNames: ['peer'],
    *samples(snap) {
      for (const x of snap.status.bgp?.sessions ?? []) yield { labels: { peer: x.peer }, value: x.exported ?? 0 };
    },
  }),
  def({
    name: 'bgp_prefix_announced',
    help: '1 while this director announces the prefix (the host route is in the kernel table BIRD exports), else 0.',
    type: 'gauge',
    labelNames: ['prefix'],
    *samples(snap) {
      for (const p of snap.status.bgp?.prefixes ?? []) yield { labels: { prefix: p.prefix }, value: p.announced ? 1 : 0 };
    },
  }),
  def({
    name: 'bgp_withdrawals_total',
    help: 'Withdrawals of an announced prefix, by reason: stopping, link, quorum, vrrp, not_serving, removed.',
    type: 'counter',
    labelNames: ['reason'],
    *samples(snap) {
      for (const [reason, n] of Object.entries(snap.status.bgp?.withdrawals ?? {})) yield { labels: { reason }, value: n };
    },
  }),
  def({
    name: 'bird_up',
    help: '1 while the BIRD keepalive-ts supervises is running, else 0.',
    type: 'gauge',
    labelNames: [],
    *samples(snap) {
      const b = snap.status.bgp?.bird;
      if (b) yield { labels: {}, value: b.running ? 1 : 0 };
    },
  }),
  def({
    name: 'bird_restarts_total',
    help: 'Times BIRD died and was restarted by keepalive-ts.',
    type: 'counter',
    labelNames: [],
    *samples(snap) {
      const b = snap.status.bgp?.bird;
      if (b) yield { labels: {}, value: b.restarts };
    },
  }),

  // --- alerts and routes ---
  def({
    name: 'alert_mails_total',
    help: 'Alert mails (smtp_alert), result="sent" (accepted by the SMTP server), "failed" (refused, timed out, unreachable) or "dropped" (queue full).',
    type: 'counter',
    labelNames: ['result'],
    *samples(snap) {
      const a = snap.extras?.alerts;
      if (!a) return;
      yield { labels: { result: 'sent' }, value: a.sent ?? 0 };
      yield { labels: { result: 'failed' }, value: a.failed ?? 0 };
      yield { labels: { result: 'dropped' }, value: a.dropped ?? 0 };
    },
  }),
  def({
    name: 'route_failures_total',
    help: 'virtual_routes / virtual_rules / static_ipaddress / static_routes / static_rules entries the kernel refused to add or remove.',
    type: 'counter',
    labelNames: [],
    *samples(snap) {
      const n = snap.extras?.route_failures;
      if (n !== undefined) yield { labels: {}, value: n };
    },
  }),

  // --- runtime overrides ---
  def({
    name: 'runtime_overrides_total',
    help: 'Runtime override commands applied on this director, by action: "weight", "drain", "disable", "enable".',
    type: 'counter',
    labelNames: ['action'],
    *samples(snap) {
      const o = snap.extras?.overrides;
      if (!o) return;
      for (const action of ['weight', 'drain', 'disable', 'enable']) yield { labels: { action }, value: o[action] ?? 0 };
    },
  }),

  // --- reload ---
  def({
    name: 'reload_total',
    help: 'Configuration reloads, result="ok" (applied or unchanged) or "error" (refused, running config kept).',
    type: 'counter',
    labelNames: ['result'],
    *samples(snap) {
      const r = snap.extras?.reload;
      if (!r) return;
      yield { labels: { result: 'ok' }, value: r.ok ?? 0 };
      yield { labels: { result: 'error' }, value: r.error ?? 0 };
    },
  }),
];

// ---------------------------------------------------------------------------------------------
// Registry

/** prom-client default metrics removed from the registry (see createMetricsRegistry). */
export const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

export interface MetricsRegistryOptions {
  /** Register prom-client's default process/Node.js metrics (prefixed) too. Default true. */
  defaultMetrics?: boolean;
}

/**
 * Builds the registry. `source` is called once per scrape. The returned Registry is private (not
 * prom-client's global one): serve it with startMetricsServer, or call `registry.metrics()`.
 */
export function createMetricsRegistry(source: MetricsSource, opts: MetricsRegistryOptions = {}): Registry {
  const registry = new Registry();

  // One snapshot per scrape: Registry.metrics() calls every metric's get() (hence collect())
  // synchronously before awaiting anything, so a snapshot cached until the next microtask is
  // shared by exactly the metrics of one scrape.
  let cached: MetricsSnapshot | undefined;
  const snapshot = (): MetricsSnapshot => {
    if (cached === undefined) {
      cached = source();
      queueMicrotask(() => (cached = undefined));
    }
    return cached;
  };

  for (const d of METRIC_DEFS) registerDef(registry, d, snapshot);

  if (opts.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
    // prom-client exports these three as gauges named *_total, which `promtool check metrics`
    // rejects ("non-counter metrics should not have _total suffix"). Nothing is lost: they are the
    // sums of the per-type gauges nodejs_active_handles / _requests / _resources.
    for (const n of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(`${METRIC_PREFIX}${n}`);
  }
  return registry;
}

function registerDef(registry: Registry, d: MetricDef<string>, snapshot: () => MetricsSnapshot): void {
  const name = `${METRIC_PREFIX}${d.name}`;
  const labelNames = [...d.labelNames];
  const valid = d.type === 'counter' ? isCounterValue : isGaugeValue;
  let present = false;
  const fill = (apply: (labels: LabelValues<string>, value: number) => void, reset: () => void): void => {
    reset();
    present = false;
    // Two samples with the same label set (e.g. two HTTP_GET checks on one real server): counters
    // add up, gauges keep the largest value (the slowest check).
    const merged = new Map<string, Sample<string>>();
    for (const s of d.samples(snapshot())) {
      // A bad value from one engine (negative counter, NaN) drops that series, not the scrape.
      if (!valid(s.value)) continue;
      const key = JSON.stringify(labelNames.map((l) => s.labels[l] ?? ''));
      const prev = merged.get(key);
      if (!prev) merged.set(key, { labels: s.labels, value: s.value });
      else prev.value = d.type === 'counter' ? prev.value + s.value : Math.max(prev.value, s.value);
    }
    for (const s of merged.values()) apply(s.labels as LabelValues<string>, s.value);
    present = merged.size > 0;
  };
  if (d.type === 'counter') {
    const config: CounterConfiguration<string> = {
      name,
      help: d.help,
      labelNames,
      registers: [registry],
      collect(this: Counter<string>) {
        fill((l, v) => this.inc(l, v), () => this.reset());
      },
    };
    new LabelLessAwareCounter(config, () => present, labelNames.length === 0);
  } else {
    const config: GaugeConfiguration<string> = {
      name,
      help: d.help,
      labelNames,
      registers: [registry],
      collect(this: Gauge<string>) {
        fill((l, v) => this.set(l, v), () => this.reset());
      },
    };
    new LabelLessAwareGauge(config, () => present, labelNames.length === 0);
  }
}

/*
 * prom-client always exports a label-less metric (as 0 after reset()). A label-less metric with no
 * sample in the snapshot (sync_entries without a sync engine) must be absent instead, like a
 * labelled one with no label sets: these subclasses drop the value in that case.
 */
class LabelLessAwareCounter extends Counter<string> {
  constructor(config: CounterConfiguration<string>, private readonly present: () => boolean, private readonly labelLess: boolean) {
    super(config);
  }

  override async get(): ReturnType<Counter<string>['get']> {
    const m = await super.get();
    return this.labelLess && !this.present() ? { ...m, values: [] } : m;
  }
}

class LabelLessAwareGauge extends Gauge<string> {
  constructor(config: GaugeConfiguration<string>, private readonly present: () => boolean, private readonly labelLess: boolean) {
    super(config);
  }

  override async get(): ReturnType<Gauge<string>['get']> {
    const m = await super.get();
    return this.labelLess && !this.present() ? { ...m, values: [] } : m;
  }
}
