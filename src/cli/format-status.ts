import type { StatusReport } from '../daemon/status.js';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Human status: VRRP instances, then virtual servers laid out like `ipvsadm -L -n --stats`. */
export function formatStatus(s: StatusReport): string {
  const out: string[] = [`keepalive-ts ${s.version}  router_id ${s.router_id}  pid ${s.pid}  up ${s.uptime_s}s  config ${s.config_file}`, ''];
  out.push('VRRP instances');
  if (s.vrrp.length === 0) out.push('  (none)');
  else out.push(table([
    ['NAME', 'IFACE', 'VRID', 'VER', 'STATE', 'PRIO', 'MASTER', 'VIPS', 'TRANS', 'SENT', 'RECV', 'DROPS'],
    ...s.vrrp.map((v) => [v.name, v.interface, String(v.vrid), `v${v.version}`, v.state,
      v.effective_priority === v.priority ? String(v.priority) : `${v.effective_priority}(${v.priority})`,
      v.master ?? '-', v.vips.join(','), String(v.transitions), String(v.adverts_sent), String(v.adverts_received),
      String(Object.values(v.drops).reduce((a, b) => a + b, 0))]),
  ]).replace(/^/gm, '  '));
  out.push('', 'IP Virtual Server (user space)');
  out.push('Prot LocalAddress:Port               Conns   InBytes  OutBytes');
  out.push('  -> RemoteAddress:Port     Weight  ActiveConn InActConn  Conns   InBytes  OutBytes');
  for (const vs of s.virtual_servers) {
    const flags = [vs.lb_algo, vs.serving ? '' : 'not-serving', vs.sorry ? 'sorry-server' : ''].filter(Boolean).join(' ');
    out.push(`${vs.protocol.padEnd(4)} ${hostPort(vs.address, vs.port).padEnd(28)} ${String(vs.conns).padStart(6)} ${String(vs.in_bytes).padStart(9)} ${String(vs.out_bytes).padStart(9)}  ${flags}`);
    for (const rs of vs.real_servers) {
      out.push(`  -> ${hostPort(rs.address, rs.port).padEnd(22)} ${String(rs.weight).padStart(6)} ${String(rs.active_conns).padStart(11)} ${String(rs.inact_conns).padStart(9)} ${String(rs.conns).padStart(6)} ${String(rs.in_bytes).padStart(9)} ${String(rs.out_bytes).padStart(9)}${rs.sorry ? '  SORRY' : rs.up ? '' : '  DOWN'}`);
    }
  }
  if (s.bgp) out.push('', ...formatBgp(s.bgp));
  return `${out.join('\n')}\n`;
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
