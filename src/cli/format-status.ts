import type { StatusReport } from '../daemon/status.js';
import { endpointText } from '../util/endpoint.js';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** A counter cell: "-" where the data plane cannot tell (null). */
const n = (v: number | null): string => (v === null ? '-' : String(v));

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
  out.push('', 'IP Virtual Server');
  if (s.virtual_servers.length === 0) out.push('  (none)');
  else {
    // ipvsadm -L -n --stats with the Forward/Weight/ActiveConn/InActConn columns of ipvsadm -L -n.
    const rows: string[][] = [
      ['Prot LocalAddress:Port', 'Scheduler', 'Forward', 'Weight', 'ActiveConn', 'InActConn', 'Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes', ''],
      ['  -> RemoteAddress:Port'],
    ];
    for (const vs of s.virtual_servers) {
      const flags = [vs.serving ? '' : 'not-serving', vs.sorry ? 'sorry-server' : ''].filter(Boolean).join(' ');
      rows.push([vs.service, vs.scheduler_in_effect, vs.forward, '', n(vs.active_conns), n(vs.inact_conns), String(vs.conns), n(vs.in_pkts), n(vs.out_pkts), String(vs.in_bytes), String(vs.out_bytes), flags]);
      for (const rs of vs.real_servers) {
        rows.push([`  -> ${endpointText(rs)}`, '', vs.forward, String(rs.weight), n(rs.active_conns), n(rs.inact_conns), String(rs.conns), n(rs.in_pkts), n(rs.out_pkts), String(rs.in_bytes), String(rs.out_bytes), rs.up ? '' : 'DOWN']);
      }
      const sorry = vs.sorry_server;
      if (sorry) {
        rows.push([`  -> ${endpointText(sorry)}`, '', vs.forward, '', n(sorry.active_conns), n(sorry.inact_conns), String(sorry.conns), n(sorry.in_pkts), n(sorry.out_pkts), String(sorry.in_bytes), String(sorry.out_bytes), sorry.in_use ? 'SORRY (in use)' : 'SORRY']);
      }
    }
    out.push(table(rows));
  }
  return `${out.join('\n')}\n`;
}
