/**
 * `keepalive-ts status` as text: the daemon line, the VRRP instances, then the virtual servers in
 * ipvsadm's own layout (ipvsadm.c print_title / print_service_entry / print_largenum, as
 * `ipvsadm -L -n`, `-L -n --stats`, `-L -n --rate`, with `--exact`), so eyes and scripts used to
 * ipvsadm read it unchanged:
 *
 *   IP Virtual Server version 0.1.0 (size=3)
 *   Prot LocalAddress:Port Scheduler Flags
 *     -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
 *   TCP  10.0.0.50:80 wlc persistent 300
 *     -> 10.0.0.21:80                 Route   1      2          1
 *
 * What ipvsadm cannot show follows a "# " at the end of the line, after the columns: a down real
 * server and why (the checker's last message), the operator's override, slow start, the sorry
 * server (on its own line, not a member), a service not served here. Real servers are listed in
 * config order, down ones included (weight 0); ipvsadm sorts and lists only what is in the kernel.
 * Pure: no I/O.
 */
import type { RealServerStatus, SorryServerStatus, StatusReport, VirtualServerStatus } from '../daemon/status.js';
import type { OverrideResult } from '../lvs/manager.js';

export type StatusFormat = 'list' | 'stats' | 'rate';

export interface StatusOptions {
  /** ipvsadm --stats / --rate; default the plain list. */
  format?: StatusFormat;
  /** ipvsadm --exact: numbers in full instead of K/M/G/T. */
  exact?: boolean;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

const padEnd = (s: string, n: number): string => s.padEnd(n);
const padStart = (s: string, n: number): string => s.padStart(n);

/**
 * ipvsadm's print_largenum: 9 columns; K/M/G/T (multiples of 1000) once the number no longer
 * fits 8 digits; with exact, the whole number, one space before it (wider when it needs to be).
 * A null (the data plane never sees that counter) is "-".
 */
export function largenum(v: number | null, exact = false): string {
  if (v === null) return padStart('-', 9);
  const i = Math.max(0, Math.floor(v));
  if (exact) {
    const s = String(i);
    return padStart(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (i < 100_000_000) return padStart(String(i), 9);
  if (i < 1_000_000_000) return `${padStart(String(Math.floor(i / 1000)), 8)}K`;
  if (i < 100_000_000_000) return `${padStart(String(Math.floor(i / 1_000_000)), 8)}M`;
  if (i < 100_000_000_000_000) return `${padStart(String(Math.floor(i / 1_000_000_000)), 8)}G`;
  return `${padStart(String(Math.floor(i / 1_000_000_000_000)), 8)}T`;
}

/** ipvsadm's " %8u" (a rate of a destination): at least 8 wide after one space. */
const u8 = (v: number | null): string => ` ${padStart(v === null ? '-' : String(Math.round(v)), 8)}`;

/** ipvsadm's "%-10u" (connection counts); "-" where the data plane cannot tell. */
const u10 = (v: number | null): string => padEnd(v === null ? '-' : String(v), 10);

/** addrport_to_anyname with -n: "10.0.0.21:80", "[fd00::21]:80", port 0 shown as ":0". */
function addrPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** svc_name: "TCP  10.0.0.50:80", truncated at 33 characters for IPv4 as ipvsadm does. */
function serviceName(vs: VirtualServerStatus): string {
  return vs.family === 4 ? vs.service.slice(0, 33) : vs.service;
}

/** dname: truncated at 28 characters for IPv4. */
function destName(family: 4 | 6, address: string, port: number): string {
  const n = addrPort(address, port);
  return family === 4 ? n.slice(0, 28) : n;
}

/** The scheduler with its flags as ipvsadm 1.31 prints them: "sh (sh-fallback,sh-port)". */
function schedulerText(vs: VirtualServerStatus): string {
  const algo = vs.lb_algo;
  const set = new Set(vs.sched_flags ?? []);
  const flags: string[] = [];
  if (algo === 'sh' || algo === 'mh') {
    if (set.has(`${algo}-fallback`) || set.has('flag-1')) flags.push(`${algo}-fallback`);
    if (set.has(`${algo}-port`) || set.has('flag-2')) flags.push(`${algo}-port`);
  } else {
    for (const f of ['flag-1', 'flag-2']) if (set.has(f)) flags.push(f);
  }
  return flags.length > 0 ? `${algo} (${flags.join(',')})` : algo;
}

/** The Flags column: "persistent 300 mask 255.255.255.0", "ops". */
function serviceFlags(vs: VirtualServerStatus): string {
  let out = '';
  if ((vs.persistence_timeout ?? 0) > 0) {
    out += ` persistent ${vs.persistence_timeout}`;
    const g = vs.persistence_granularity;
    if (g !== undefined && g !== (vs.family === 4 ? '255.255.255.255' : '128')) out += ` mask ${g}`;
  }
  if (vs.ops) out += ' ops';
  return out;
}

const note = (items: string[]): string => (items.length > 0 ? ` # ${items.join('; ')}` : '');

function serviceNotes(vs: VirtualServerStatus): string[] {
  const items: string[] = [];
  if (vs.group !== undefined) items.push(`group ${vs.group}`);
  const inEffect = vs.scheduler_in_effect;
  if (inEffect && inEffect !== vs.lb_algo && !inEffect.startsWith(`${vs.lb_algo} (`)) items.push(`scheduler in effect: ${inEffect}`);
  if (vs.relay === 'node') items.push('relayed by node:net (native relay unavailable)');
  if (!vs.serving) items.push('not serving here');
  if (vs.quorum_up === false) items.push('quorum down');
  if (vs.sorry) items.push('sorry server in use');
  if ((vs.slow_start ?? 0) > 0) items.push(`slow_start ${vs.slow_start}s`);
  return items;
}

function realNotes(rs: RealServerStatus): string[] {
  const items: string[] = [];
  if (rs.health === 'down') items.push(`down: ${rs.reason ?? 'checks fail'}`);
  else if (rs.health === 'unknown' && !rs.up) items.push('no check result yet');
  const o = rs.override;
  if (o) {
    if (o.action === 'drain') items.push('drained (keepalive-ts drain)');
    else if (o.action === 'disable') items.push('disabled (keepalive-ts disable)');
    else items.push(`weight ${o.weight} set at run time (configured ${rs.configured_weight ?? '?'})`);
  }
  if (rs.slow_start) items.push(`slow start ${Math.floor(rs.slow_start.progress * 100)}% (to weight ${rs.effective_weight ?? '?'})`);
  return items;
}

function sorryNotes(s: SorryServerStatus): string[] {
  return [s.in_use ? 'sorry server, in use' : 'sorry server, standby'];
}

type Dest = { address: string; port: number; active_conns: number | null; inact_conns: number | null; conns: number; in_pkts: number | null; out_pkts: number | null; in_bytes: number; out_bytes: number; rates?: VirtualServerStatus['rates'] };

function destLine(vs: VirtualServerStatus, d: Dest, weight: number, notes: string[], o: Required<StatusOptions>): string {
  const name = destName(vs.family, d.address, d.port);
  let line: string;
  if (o.format === 'stats') {
    line = `  -> ${padEnd(name, 28)}${[d.conns, d.in_pkts, d.out_pkts, d.in_bytes, d.out_bytes].map((v) => largenum(v, o.exact)).join('')}`;
  } else if (o.format === 'rate') {
    const r = d.rates ?? { cps: 0, in_pps: 0, out_pps: 0, in_bps: 0, out_bps: 0 };
    line = `  -> ${padEnd(name, 28)}${u8(r.cps)}${u8(r.in_pps)}${u8(r.out_pps)}${largenum(r.in_bps, o.exact)}${largenum(r.out_bps, o.exact)}`;
  } else {
    line = `  -> ${padEnd(name, 28)} ${padEnd(vs.forward, 7)} ${padEnd(String(weight), 6)} ${u10(d.active_conns)} ${u10(d.inact_conns)}`;
  }
  return `${line}${note(notes)}`;
}

function serviceLine(vs: VirtualServerStatus, o: Required<StatusOptions>): string {
  const name = serviceName(vs);
  let line: string;
  if (o.format === 'stats') {
    line = `${padEnd(name, 33)}${[vs.conns, vs.in_pkts, vs.out_pkts, vs.in_bytes, vs.out_bytes].map((v) => largenum(v, o.exact)).join('')}`;
  } else if (o.format === 'rate') {
    const r = vs.rates ?? { cps: 0, in_pps: 0, out_pps: 0, in_bps: 0, out_bps: 0 };
    line = `${padEnd(name, 33)}${[r.cps, r.in_pps, r.out_pps, r.in_bps, r.out_bps].map((v) => largenum(v, o.exact)).join('')}`;
  } else {
    line = `${name} ${schedulerText(vs)}${serviceFlags(vs)}`;
  }
  return `${line}${note(serviceNotes(vs))}`;
}

/**
 * A group as ipvsadm shows it (keepalived makes one IPVS service per member): each member a
 * service of its own, with its own counters, and the group's real servers with their weight and
 * health and the member's counters for them.
 */
function memberViews(vs: VirtualServerStatus): VirtualServerStatus[] {
  if (!vs.members) return [vs];
  return vs.members.map(({ real_servers: dests, sorry_server: sorryDest, ...m }) => ({
    ...vs,
    ...m,
    real_servers: vs.real_servers.map((rs, i) => ({ ...rs, ...dests[i] })),
    sorry_server: vs.sorry_server && sorryDest ? { ...vs.sorry_server, ...sorryDest } : vs.sorry_server,
    members: undefined,
  }));
}

/** print_title. */
function title(format: StatusFormat): string[] {
  if (format === 'stats') return [`${padEnd('Prot LocalAddress:Port', 33)} ${['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'].map((h) => padStart(h, 8)).join(' ')}`, '  -> RemoteAddress:Port'];
  if (format === 'rate') return [`${padEnd('Prot LocalAddress:Port', 33)} ${['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'].map((h) => padStart(h, 8)).join(' ')}`, '  -> RemoteAddress:Port'];
  return ['Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn'];
}

/**
 * The virtual-server part alone, exactly ipvsadm's lines. "version" is keepalive-ts's; "size" is
 * the number of connections the data planes track now (IPVS shows its connection hash size).
 */
export function formatIpvs(s: Pick<StatusReport, 'version' | 'virtual_servers'>, opts: StatusOptions = {}): string {
  const o: Required<StatusOptions> = { format: opts.format ?? 'list', exact: opts.exact ?? false };
  const size = s.virtual_servers.reduce((n, vs) => n + (vs.active_conns ?? 0) + (vs.inact_conns ?? 0), 0);
  const out = [`IP Virtual Server version ${s.version} (size=${size})`, ...title(o.format)];
  for (const vs of s.virtual_servers.flatMap(memberViews)) {
    out.push(serviceLine(vs, o));
    for (const rs of vs.real_servers) out.push(destLine(vs, rs, rs.weight, realNotes(rs), o));
    const sorry = vs.sorry_server;
    if (sorry) out.push(destLine(vs, sorry, vs.sorry ? 1 : 0, sorryNotes(sorry), o));
  }
  return `${out.join('\n')}\n`;
}

/** Human status: the daemon, its VRRP instances, then the virtual servers as ipvsadm lays them out. */
export function formatStatus(s: StatusReport, opts: StatusOptions = {}): string {
  const out: string[] = [`keepalive-ts ${s.version}  router_id ${s.router_id}  pid ${s.pid}  up ${s.uptime_s}s  config ${s.config_file}`, ''];
  out.push('VRRP instances');
  if (s.vrrp.length === 0) out.push('  (none)');
  else out.push(table([
    ['NAME', 'IFACE', 'VRID', 'VER', 'STATE', 'PRIO', 'MASTER', 'VIPS', 'TRANS', 'SENT', 'RECV', 'DROPS'],
    // "BACKUP(hold)": the start-up hold, no takeover from a live master until the services are ready.
    ...s.vrrp.map((v) => [v.name, v.interface, String(v.vrid), `v${v.version}`, v.startup_hold ? `${v.state}(hold)` : v.state,
      v.effective_priority === v.priority ? String(v.priority) : `${v.effective_priority}(${v.priority})`,
      v.master ?? '-', v.vips.join(','), String(v.transitions), String(v.adverts_sent), String(v.adverts_received),
      String(Object.values(v.drops).reduce((a, b) => a + b, 0))]),
  ]).replace(/^/gm, '  '));
  out.push('');
  if (s.sync) out.push(...formatSync(s.sync), '');
  return `${out.join('\n')}\n${formatIpvs(s, opts)}${s.bgp ? `\n${formatBgp(s.bgp).join('\n')}\n` : ''}`;
}

/** Connection sync: role, entries held, the measured lag, the last full resync, rejects by reason. */
function formatSync(y: NonNullable<StatusReport['sync']>): string[] {
  const ms = (v: number | null) => (v === null ? '-' : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);
  const held = y.table.templates + y.table.udp_flows + y.table.conns;
  const rejects = Object.entries(y.received.dropped).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`).join(', ') || 'none';
  const l = y.lag;
  return [
    `Connection sync  ${y.role} (follows ${y.instance})  held ${held} (templates ${y.table.templates}, udp flows ${y.table.udp_flows}, conns ${y.table.conns})`,
    `  lag p50 ${ms(l.p50_ms)}  p99 ${ms(l.p99_ms)}  last ${ms(l.last_ms)}  (last ${l.window} entries; ${l.measured} measured, ${l.unmeasured} not)  rtt ${ms(y.echo.rtt_ms)}`,
    `  last full resync ${y.last_snapshot_at === null ? 'never' : `${new Date(y.last_snapshot_at).toISOString().replace(/\.\d+Z$/, 'Z')} in ${ms(y.last_snapshot_ms)}`}  rejects: ${rejects}`,
  ];
}

/** The reply of keepalive-ts weight / drain / disable / enable as one line. */
export function formatOverride(r: OverrideResult): string {
  const who = `${r.real_server} in ${r.service.replace(/ {2}/, ' ')}`;
  let what: string;
  if (r.override === null) what = `enabled: back to the configured weight ${r.configured_weight}`;
  else if (r.override.action === 'drain') what = 'drained: weight 0, no new connections, open ones finish';
  else if (r.override.action === 'disable') what = 'disabled: out of the pool';
  else what = `weight ${r.override.weight} (configured ${r.configured_weight})`;
  const extra: string[] = [];
  if (!r.up && r.override?.action !== 'disable') extra.push(`it is down (its checks fail): out of the pool until they pass`);
  if (r.ramping) extra.push(`slow start: ramping up to weight ${r.effective_weight}`);
  extra.push('this director only; lost on restart');
  return `${who}: ${what}${extra.length ? `; ${extra.join('; ')}` : ''}\n`;
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const sec = seconds % 60;
  return d > 0 ? `${d}d${h}h` : h > 0 ? `${h}h${m}m` : m > 0 ? `${m}m${sec}s` : `${sec}s`;
}

/** BGP: BIRD, sessions (like `birdc show protocols`), then the prefixes and why. */
function formatBgp(b: NonNullable<StatusReport['bgp']>): string[] {
  const bird = b.bird.running ? `BIRD ${b.bird.version} pid ${b.bird.pid}` : `BIRD ${b.bird.version} NOT RUNNING${b.bird.last_error ? ` (${b.bird.last_error})` : ''}`;
  const links = b.tracked_interfaces.map((l) => `${l.name}${l.up ? '' : ' DOWN'}`).join(', ') || 'none';
  const out = [`BGP  AS ${b.local_as}${b.router_id ? `  router id ${b.router_id}` : ''}  ${bird}  restarts ${b.bird.restarts}  tracking ${links}`];
  out.push(table([
    ['PEER', 'AS', 'STATE', 'UPTIME', 'BFD', 'PREFIXES', 'INFO'],
    ...b.sessions.map((x) => [x.peer, String(x.remote_as), x.state, x.uptime_s === null ? '-' : duration(x.uptime_s), x.bfd ?? '-',
      x.exported === null ? '-' : String(x.exported), x.established ? '' : (x.last_error ?? x.info)]),
  ]).replace(/^/gm, '  '));
  if (b.prefixes.length > 0) {
    out.push(table([
      ['PREFIX', 'MODE', 'STATE', 'SINCE', 'REASON'],
      ...b.prefixes.map((p) => [p.prefix, p.mode, p.announced ? 'announced' : 'withdrawn', p.since.replace(/\.\d+Z$/, 'Z'),
        `${p.reason.replace(/^(announced|withdrawn): /, '')}${p.announced && p.last_withdrawal ? `  (last withdrawn ${p.last_withdrawal.at.replace(/\.\d+Z$/, 'Z')}: ${p.last_withdrawal.reason.replace(/^withdrawn: /, '')})` : ''}`]),
    ]).replace(/^/gm, '  '));
  }
  return out;
}
