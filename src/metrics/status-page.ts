/**
 * The read-only status page served at GET / of metrics_listen: one self-contained HTML document
 * (inline CSS and JS, no external assets, nothing to install) that fetches `status.json` (the
 * report `keepalive-ts status --json` prints) every few seconds and redraws the VRRP instances,
 * VIPs, virtual servers and real servers: health, weight, connections, rates (computed in the page
 * from the difference between two reports) and when and why each real server last changed.
 *
 * `?refresh=N` sets the interval in seconds (default STATUS_PAGE_REFRESH_S, 0.5..3600).
 *
 * Hooks for tests and scripts: body[data-refreshes] counts the reports drawn, body[data-error] is
 * set while the last fetch failed, each real server row is tr[data-rs="ADDR:PORT"][data-vs=KEY]
 * (KEY the service key, e.g. "tcp/10.0.0.50:80") with data-health="up|down|unknown"; the sorry
 * server's row, after them, has data-sorry and data-health="sorry".
 *
 * The client script is written without template literals so it can live in this TS string.
 */

export const STATUS_PAGE_REFRESH_S = 2;

const CSS = `
:root { --ok:#1a7f37; --bad:#cf222e; --warn:#9a6700; --mute:#57606a; --line:#d0d7de; --head:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; background: #fff; }
header { display: flex; flex-wrap: wrap; gap: .4em 1.5em; align-items: baseline; padding: .8em 1.2em; background: #24292f; color: #fff; }
header h1 { font-size: 1.15em; margin: 0; }
header .meta { color: #d0d7de; font-size: .9em; }
#banner { display: none; padding: .5em 1.2em; background: #ffebe9; color: var(--bad); border-bottom: 1px solid var(--bad); }
body[data-error] #banner { display: block; }
main { padding: .5em 1.2em 2em; }
h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1em; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { background: var(--head); font-weight: 600; font-size: .9em; }
td.num, th.num { text-align: right; }
td.reason { white-space: normal; color: var(--mute); max-width: 40em; }
.svc th.title { background: #eaeef2; font-size: 1em; }
.badge { display: inline-block; min-width: 5.5em; text-align: center; padding: 0 .5em; border-radius: 1em; font-weight: 600; font-size: .85em; color: #fff; background: var(--mute); }
.MASTER, .up { background: var(--ok); }
.BACKUP { background: #0969da; }
.FAULT, .down { background: var(--bad); }
.INIT, .STOP, .unknown { background: var(--mute); }
.sorry { background: var(--warn); }
.owned { font-weight: 600; }
.dim { color: var(--mute); }
footer { padding: 0 1.2em 1em; color: var(--mute); font-size: .85em; }
`;

const SCRIPT = `
(function () {
  'use strict';
  var q = Number(new URLSearchParams(location.search).get('refresh'));
  var REFRESH_S = q >= 0.5 && q <= 3600 ? q : DEFAULT_REFRESH_S;
  var prev = null;
  var refreshes = 0;

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (attrs[k] === undefined || attrs[k] === null) continue;
      if (k === 'class') e.className = attrs[k]; else if (k === 'text') e.textContent = String(attrs[k]); else e.setAttribute(k, String(attrs[k]));
    }
    (children || []).forEach(function (c) { if (c !== null && c !== undefined) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function badge(text, cls) { return el('span', { class: 'badge ' + cls, text: text }); }
  // src/util/endpoint.ts endpointText(), for the browser: IPv6 in brackets; no port (0) = the bare address.
  function endpointText(a, p) { return !p ? a : (a.indexOf(':') >= 0 ? '[' + a + ']:' + p : a + ':' + p); }
  function num(n) { return n === null || n === undefined ? '' : Number(n).toLocaleString('en-US'); }
  function bytes(n) {
    if (n === null || n === undefined) return '';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + ' ' + u[i];
  }
  function ago(iso) {
    if (!iso) return '';
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    var t = s < 60 ? s + ' s' : s < 3600 ? Math.floor(s / 60) + ' min' : s < 86400 ? Math.floor(s / 3600) + ' h' : Math.floor(s / 86400) + ' d';
    return t + ' ago';
  }
  function duration(s) {
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm ' + (s % 60) + 's';
  }
  function td(text, cls) { return el('td', { class: cls, text: text }); }
  function th(text, cls) { return el('th', { class: cls, text: text }); }
  // Per-second rate of a counter between the previous report and this one; '' on the first report or after a reset.
  function rate(key, value, now, store) {
    var p = prev && prev.values[key];
    store[key] = value;
    if (p === undefined || !prev || now <= prev.t || value < p) return '';
    var r = (value - p) / ((now - prev.t) / 1000);
    return r;
  }
  function fmtRate(r, isBytes) { return r === '' ? '' : isBytes ? bytes(r) + '/s' : r.toFixed(r < 10 ? 1 : 0) + '/s'; }

  function renderVrrp(s) {
    var sec = document.getElementById('vrrp');
    sec.replaceChildren(el('h2', { text: 'VRRP instances' }));
    if (!s.vrrp.length) { sec.appendChild(el('p', { class: 'dim', text: 'none configured' })); return; }
    var rows = s.vrrp.map(function (i) {
      var vips = el('td', null, i.vips.map(function (v, n) {
        var owned = i.owned_vips.indexOf(v) >= 0;
        return el('span', { class: owned ? 'owned' : 'dim', title: owned ? 'on this director' : 'not on this director' }, [(n ? ', ' : '') + v]);
      }));
      return el('tr', { 'data-instance': i.name, 'data-state': i.state }, [
        td(i.name), td(i.interface), td(String(i.vrid), 'num'), td('v' + i.version), el('td', null, [badge(i.state, i.state)]),
        td(i.effective_priority === i.priority ? String(i.priority) : i.effective_priority + ' (' + i.priority + ')', 'num'),
        td(i.master || ''), vips, td(num(i.transitions), 'num'),
      ]);
    });
    sec.appendChild(el('table', null, [
      el('thead', null, [el('tr', null, [th('Instance'), th('Interface'), th('VRID', 'num'), th('Version'), th('State'), th('Priority', 'num'), th('Master'), th('VIPs'), th('Transitions', 'num')])]),
      el('tbody', null, rows),
    ]));
  }

  function renderServices(s, now, values) {
    var sec = document.getElementById('services');
    sec.replaceChildren(el('h2', { text: 'Virtual servers' }));
    if (!s.virtual_servers.length) { sec.appendChild(el('p', { class: 'dim', text: 'none configured' })); return; }
    s.virtual_servers.forEach(function (vs) {
      var vsId = vs.key;
      var cps = rate(vsId + ' conns', vs.conns, now, values);
      var state = vs.serving ? 'serving' : 'not serving (BACKUP or VIP elsewhere)';
      var head = el('tr', null, [el('th', { class: 'title', colspan: 10 }, [
        vs.service + '  ' + vs.scheduler_in_effect + '  · ' + vs.forward + '  · ' + state + (vs.sorry ? '  · sorry server in service' : '') +
        '  · ' + num(vs.conns) + ' connections' + (cps === '' ? '' : ', ' + fmtRate(cps) ) ])]);
      // A group: its members, each served where its address is (the figures above are their sums).
      var members = vs.members ? el('tr', null, [el('td', { class: 'dim', colspan: 10, 'data-members': '' }, [
        'group ' + vs.group + ': ' + vs.members.map(function (m) { return m.service.replace(/  +/, ' ') + (m.serving ? '' : ' (not serving)') + ', ' + num(m.conns) + ' connections'; }).join(' · ')])]) : null;
      var cols = el('tr', null, [th('Real server'), th('Health'), th('Weight', 'num'), th('Active', 'num'), th('Inactive', 'num'), th('Connections', 'num'),
        th('Conn rate', 'num'), th('In / Out rate', 'num'), th('Last change'), th('Why')]);
      var servers = vs.real_servers.slice();
      if (vs.sorry_server) servers.push(Object.assign({ sorry: true }, vs.sorry_server));
      var rows = servers.map(function (rs) {
        var id = endpointText(rs.address, rs.port);
        var key = vsId + ' ' + id;
        var health = rs.sorry ? 'sorry' : rs.health || (rs.up ? 'up' : 'down');
        var label = rs.sorry ? (rs.in_use ? 'SORRY (in use)' : 'SORRY') : health.toUpperCase();
        var c = rate(key + ' conns', rs.conns, now, values);
        var bi = rate(key + ' in', rs.in_bytes, now, values);
        var bo = rate(key + ' out', rs.out_bytes, now, values);
        return el('tr', { 'data-vs': vsId, 'data-rs': id, 'data-health': health, 'data-sorry': rs.sorry ? '' : null }, [
          td(id + (rs.sorry ? ' (sorry server)' : '')), el('td', null, [badge(label, health)]), td(num(rs.weight) + weightNote(rs), 'num'),
          td(num(rs.active_conns), 'num'), td(num(rs.inact_conns), 'num'), td(num(rs.conns), 'num'), td(fmtRate(c), 'num'),
          td(bi === '' ? '' : fmtRate(bi, true) + ' / ' + fmtRate(bo, true), 'num'),
          el('td', { class: 'when', title: rs.last_change || '' }, [rs.last_change ? new Date(rs.last_change).toLocaleTimeString() + ' (' + ago(rs.last_change) + ')' : '']),
          td(rs.reason || '', 'reason'),
        ]);
      });
      sec.appendChild(el('table', { class: 'svc', 'data-vs': vsId }, [el('thead', null, members ? [head, members, cols] : [head, cols]), el('tbody', null, rows)]));
    });
  }

  /** The operator's override and slow start beside the weight (keepalive-ts drain/disable/weight). */
  function weightNote(rs) {
    var o = rs.override, n = '';
    if (o) n += o.action === 'drain' ? ' · drained' : o.action === 'disable' ? ' · disabled' : ' · set to ' + o.weight;
    if (rs.slow_start) n += ' · slow start ' + Math.floor(rs.slow_start.progress * 100) + '%';
    return n;
  }

  function lag(l) {
    if (!l || l.p50_ms === null) return '-';
    return l.p50_ms.toFixed(1) + ' / ' + l.p99_ms.toFixed(1);
  }

  function renderSync(s) {
    var sec = document.getElementById('sync');
    sec.replaceChildren();
    if (!s.sync) return;
    var y = s.sync;
    var dropped = Object.keys(y.received.dropped || {}).reduce(function (n, k) { return n + y.received.dropped[k]; }, 0);
    sec.appendChild(el('h2', { text: 'Connection sync' }));
    sec.appendChild(el('table', null, [
      el('thead', null, [el('tr', null, [th('Role'), th('Instance'), th('Table (templates / UDP flows)'), th('Sent', 'num'), th('Received', 'num'), th('Rejected', 'num'), th('Lag p50 / p99 (ms)', 'num'), th('Promotions', 'num')])]),
      el('tbody', null, [el('tr', null, [td(y.role), td(y.instance), td(y.table.templates + ' / ' + y.table.udp_flows),
        td(num(y.sent.messages), 'num'), td(num(y.received.messages), 'num'), td(num(dropped), 'num'), td(lag(y.lag), 'num'), td(num(y.promotions), 'num')])]),
    ]));
  }

  function renderBgp(s) {
    var sec = document.getElementById('bgp');
    sec.replaceChildren();
    if (!s.bgp) return;
    var b = s.bgp;
    var bird = b.bird.running ? 'BIRD ' + b.bird.version + ' pid ' + b.bird.pid : 'BIRD not running' + (b.bird.last_error ? ' (' + b.bird.last_error + ')' : '');
    sec.appendChild(el('h2', { text: 'BGP (AS ' + b.local_as + ') · ' + bird + ' · restarts ' + b.bird.restarts }));
    sec.appendChild(el('table', null, [
      el('thead', null, [el('tr', null, [th('Peer'), th('AS', 'num'), th('State'), th('Uptime'), th('BFD'), th('Prefixes', 'num'), th('Last error')])]),
      el('tbody', null, b.sessions.map(function (x) {
        return el('tr', { 'data-peer': x.peer, 'data-state': x.state }, [td(x.peer), td(String(x.remote_as), 'num'),
          el('td', null, [badge(x.state, x.established ? 'up' : 'down')]), td(x.uptime_s === null ? '' : duration(x.uptime_s)), td(x.bfd || ''),
          td(x.exported === null ? '' : num(x.exported), 'num'), td(x.established ? '' : (x.last_error || x.info), 'reason')]);
      })),
    ]));
    if (!b.prefixes.length) return;
    sec.appendChild(el('table', null, [
      el('thead', null, [el('tr', null, [th('Prefix'), th('Mode'), th('State'), th('Since'), th('Why'), th('Last withdrawal')])]),
      el('tbody', null, b.prefixes.map(function (p) {
        var w = p.last_withdrawal;
        return el('tr', { 'data-prefix': p.prefix, 'data-announced': String(p.announced) }, [td(p.prefix), td(p.mode),
          el('td', null, [badge(p.announced ? 'announced' : 'withdrawn', p.announced ? 'up' : 'down')]),
          el('td', { class: 'when', title: p.since }, [new Date(p.since).toLocaleTimeString() + ' (' + ago(p.since) + ')']),
          td(p.reason.replace(/^(announced|withdrawn): /, ''), 'reason'),
          td(w ? new Date(w.at).toLocaleTimeString() + ': ' + w.reason.replace(/^withdrawn: /, '') : '')]);
      })),
    ]));
  }

  function render(s) {
    var now = Date.now();
    var values = {};
    document.title = 'keepalive-ts ' + s.router_id;
    document.getElementById('router').textContent = s.router_id;
    document.getElementById('meta').textContent = 'v' + s.version + ' · pid ' + s.pid + ' · up ' + duration(s.uptime_s) + ' · ' + s.config_file;
    renderVrrp(s);
    renderServices(s, now, values);
    renderSync(s);
    renderBgp(s);
    prev = { t: now, values: values };
    refreshes++;
    document.body.dataset.refreshes = String(refreshes);
    document.getElementById('updated').textContent = 'updated ' + new Date(now).toLocaleTimeString();
  }

  function tick() {
    fetch('status.json', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (s) { delete document.body.dataset.error; render(s); })
      .catch(function (e) {
        document.body.dataset.error = String(e && e.message || e);
        document.getElementById('banner').textContent = 'cannot fetch status.json: ' + document.body.dataset.error + ' (showing the last report; retrying)';
      })
      .then(function () { setTimeout(tick, REFRESH_S * 1000); });
  }
  document.getElementById('every').textContent = String(REFRESH_S);
  tick();
})();
`;

/** The page; `defaultRefreshS` is the interval without ?refresh=. */
export function statusPageHtml(defaultRefreshS: number = STATUS_PAGE_REFRESH_S): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>keepalive-ts</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>keepalive-ts <span id="router"></span></h1><span class="meta" id="meta">loading…</span><span class="meta" id="updated"></span></header>
<div id="banner" role="alert"></div>
<main>
<section id="vrrp"></section>
<section id="services"></section>
<section id="sync"></section>
<section id="bgp"></section>
</main>
<footer>Read-only. Refreshes every <span id="every"></span> s from <a href="status.json">status.json</a> (the report of <code>keepalive-ts status --json</code>); Prometheus metrics at <a href="metrics">metrics</a>.</footer>
<script>var DEFAULT_REFRESH_S = ${JSON.stringify(defaultRefreshS)};${SCRIPT}</script>
</body>
</html>
`;
}
