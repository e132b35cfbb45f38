// Generates docs/config-reference.md from the config schema (src/config/schema.ts through
// schemaRows()), so the reference cannot drift from what the loader accepts.
//
//   node dist/scripts/gen-config-reference.js           # rewrite docs/config-reference.md
//   node dist/scripts/gen-config-reference.js --check   # exit 1 if the file is stale
//
// test/unit/docs-config-reference.test.ts fails when the committed file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { schemaRows, type SchemaRow } from '../src/config/docs.js';

/** Repository root, from dist/scripts/gen-config-reference.js. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const CONFIG_REFERENCE_PATH = join(ROOT, 'docs/config-reference.md');

/** How each top-level key is written in TOML, plus what the schema's one-line doc cannot say. */
const SECTIONS: Record<string, { toml: string; note?: string }> = {
  global: { toml: '[global]', note: 'VRRP instances inherit the `vrrp_*` defaults below unless they set their own.' },
  vrrp_script: { toml: '[[vrrp_script]]', note: 'Referenced by name from `track_script` of an instance or sync group.' },
  vrrp_track_process: {
    toml: '[[vrrp_track_process]]',
    note: 'Referenced by name from `track_process` of an instance. Followed through the kernel\'s process events connector, or by rescanning /proc every 500 ms ' +
      'where the kernel does not offer that connector (it does in the initial network namespace only): a death is then seen within half a second.',
  },
  vrrp_instance: {
    toml: '[[vrrp_instance]]',
    note: 'With `use_vmac` the instance runs on a private-mode macvlan carrying the virtual router MAC; see [use_vmac](#use_vmac). ' +
      '`virtual_routes` / `virtual_rules` take keepalived\'s lines; see [Routes and rules](#routes-and-rules).',
  },
  vrrp_sync_group: { toml: '[[vrrp_sync_group]]' },
  virtual_server: {
    toml: '[[virtual_server]] and [[virtual_server.real_server]]',
    note: 'Served on the VIP while the VRRP instance carrying it is MASTER (addresses no instance carries, and fwmark services, are served always). ' +
      'A service matches `address` + `port`, `address` + `ports` (a port set), or `fwmark`; its canonical key (`tcp/10.0.0.50:80`, `tcp/10.0.0.50:21,10000-20000`, `fwmark/1`) names it in status, metrics and logs. ' +
      '`lb_kind` "TUN" is refused: this kernel has no IP-in-IP driver. Port sets and fwmark services need a kernel lb_kind; `proxy_protocol` needs "PROXY". ' +
      'A `check` is an inline table (`check = { type = "HTTP_GET", path = "/" }`) or an array of them; keys marked with check types apply to those types only.',
  },
  bgp: {
    toml: '[bgp] and [[bgp.peer]]',
    note: 'keepalive-ts runs its own BIRD 2 with a generated config and announces each virtual server\'s address (see `virtual_server.announce`) as a host route; docs/bgp.md explains the topology, the router side and the timings.',
  },
  sync: { toml: '[sync]', note: 'The MASTER of `sync.instance` sends connection and persistence entries; the BACKUP receives them, so clients keep their real server after a takeover.' },
};

/** What the per-key lines cannot say: the line syntax of routes/rules/addresses, use_vmac, alert mails. */
const APPENDIX = [
  '## Routes and rules',
  '',
  '`virtual_routes`, `virtual_rules` (per instance: added once the instance is MASTER and its VIPs are in place, removed when it',
  'stops being MASTER) and `global.static_ipaddress`, `global.static_routes`, `global.static_rules` (added at start, leftovers of a',
  'killed run replaced, removed at stop) take one keepalived line per string, the words of `ip route add` / `ip rule add` /',
  '`ip addr add`. Every line is parsed at load: a bad one is reported as `file:line key[i]: message (in "line")` and nothing starts.',
  'Reload applies the difference: entries in both the old and the new config are not touched.',
  '',
  '| Kind | Words |',
  '|---|---|',
  '| route | `[inet\\|inet6] [to] [unicast\\|blackhole\\|unreachable\\|prohibit\\|throw] PREFIX\\|default`, `src ADDR`, `via\\|gw ADDR`, `from PREFIX`, `dev\\|oif NAME`, `table N\\|main\\|local\\|default`, `metric\\|priority\\|preference N`, `scope NAME\\|N`, `protocol NAME\\|N`, `tos\\|dsfield N`, `onlink`, `add\\|prepend\\|append`, `no_track` |',
  '| rule | `[inet\\|inet6] from PREFIX\\|all`, `to PREFIX\\|all`, `table\\|lookup N\\|NAME`, `preference\\|priority\\|order N`, `fwmark N[/MASK]`, `iif\\|dev NAME`, `oif NAME`, `tos\\|dsfield N`, `not`, `protocol N`, `goto N`, `blackhole\\|unreachable\\|prohibit\\|nop`, `no_track` |',
  '| address | `ADDR[/PREFIX] dev NAME`, `scope NAME\\|N`, `label NAME`, `brd ADDR`, `-nodad`, `noprefixroute` |',
  '',
  'As keepalived: routes and rules carry protocol `keepalived` (18) unless `protocol` says otherwise, routes are prepended',
  '(`add` / `append` change that) with scope `global` unless `scope` says otherwise, a rule without an action looks up the main',
  'table, a line without an IPv6 address is IPv4 unless it says `inet6`. keepalived words keepalive-ts refuses, by name:',
  'multipath (`nexthop`, `or`), route metrics (`mtu`, `advmss`, `rtt`, `window`, `initcwnd`...), `encap`, `realms`, `expires`, `vrf`,',
  '`track_group` (routes and rules are never tracked: `no_track` is accepted and is what keepalive-ts always does, a route deleted',
  'by someone else comes back at the next MASTER transition), `uidrange`, `ipproto`, `sport`, `dport`, `l3mdev`, `suppress_*`,',
  '`tunnel-id`, and for addresses `peer`, `home`, `mngtmpaddr`, `autojoin`, `preferred_lft`.',
  '',
  '## use_vmac',
  '',
  'keepalived\'s and FRR\'s VMAC: the instance creates a macvlan of its `interface` in private mode with the RFC 5798 virtual',
  'router MAC 00:00:5e:00:01:VRID (IPv6 00:00:5e:00:02:VRID), IPv6 address generation off, and sets keepalived\'s sysctls:',
  '`arp_ignore=1` on the macvlan and, for IPv4, `accept_local=1`, `rp_filter=0`, `promote_secondaries=1`, IPv6 off; on the base',
  'interface (IPv4) `arp_ignore=1`, `arp_filter=1` and `arp_announce=2`, restored when the last macvlan on it goes (the last one',
  'is not set by keepalived: without it a reply from the VIP makes the base interface ask for the client\'s MAC "as" the VIP, and',
  'the client\'s neighbour entry moves off the virtual MAC). For IPv6 the base interface\'s link-local address is added to the',
  'macvlan. The VIPs live on the macvlan, so ARP/ND answers and gratuitous ARPs carry the virtual MAC and clients keep one MAC',
  'across failovers. Adverts keep the base interface\'s address as source and go out on the macvlan (so switches learn the',
  'virtual MAC from the MASTER), or on the base interface with `vmac_xmit_base`. The macvlan is created at start (a correct',
  'leftover is reused, a wrong one replaced, a stale `vrrp.N` / `vrrp6.N` private macvlan with a virtual MAC removed) and deleted',
  'at stop. Interoperates with keepalived `use_vmac` and with FRR\'s vrrpd (whose macvlans the operator creates in bridge mode).',
  '',
  '## Alert mails',
  '',
  'With `global.notification_email` and `global.smtp_server` set, keepalive-ts mails keepalived\'s alerts: `[ROUTER_ID] VRRP',
  'Instance NAME - Entering MASTER state` (BACKUP, FAULT, `Stopping`), `[ROUTER_ID] VRRP Group NAME - ...`, `[ROUTER_ID] Realserver',
  'RS of virtual server VS - UP|DOWN` and `[ROUTER_ID] Virtualserver VS - UP|DOWN`, each for the sections whose `smtp_alert` is on.',
  'The client speaks plain SMTP to the relay (HELO, MAIL FROM, RCPT TO, DATA; no authentication or TLS, as keepalived), one mail',
  'at a time in the background, so a slow or dead relay delays mails, never a VRRP transition; `smtp_connect_timeout` bounds',
  'each step. Failures are logged and counted in `keepalive_ts_alert_mails_total`; at most 100 mails wait (the oldest is dropped).',
];

/** Text safe inside a markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function code(text: string): string {
  return `\`${cell(text.replace(/`/g, "'"))}\``;
}

function defaultCell(row: SchemaRow): string {
  if (row.required) return '**required**';
  if (row.default === undefined) return '(unset)';
  // Literal TOML values in code; descriptions ("the hostname", "global.vrrp_version") as text.
  const literal = /^(".*"|-?\d+(\.\d+)?|true|false|\[.*\])$/.test(row.default) && !/\) or /.test(row.default);
  return literal ? code(row.default) : cell(row.default);
}

function keepalivedCell(k: string | null): string {
  if (k === null) return '—';
  return k.startsWith('the ') ? cell(k) : code(k);
}

function rowLine(row: SchemaRow, section: string): string {
  const key = row.path === section ? row.path : row.path.slice(section.length).replace(/^\[\]/, '').replace(/^\./, '');
  const types = row.checkTypes ? ` *(${row.checkTypes.join(', ')})*` : '';
  return `| ${code(key)} | ${cell(row.type)} | ${defaultCell(row)} | ${keepalivedCell(row.keepalived)} | ${cell(row.doc)}${types} |`;
}

/** The whole document, deterministic for a given schema. */
export function renderConfigReference(rows: SchemaRow[] = schemaRows()): string {
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated by scripts/gen-config-reference.ts from src/config/schema.ts. Do not edit by hand:',
    '     run `npm run build:ts && node dist/scripts/gen-config-reference.js`. A unit test fails when this file is stale. -->',
    '',
    'Every key keepalive-ts accepts, with its type, its default and its keepalived spelling. The file is',
    'TOML; key names are keepalived\'s, in snake_case. `conf/keepalive.toml` is a commented example of',
    'all of them, `conf/director-a.toml` / `conf/director-b.toml` a ready pair. `keepalive-ts check',
    '--config FILE` validates a file and lists every problem as `file:line key.path: message`.',
    '',
    'Columns: **Default** is the value used when the key is absent; "required" keys have none, "(unset)"',
    'means the feature is off unless set, and a key path as default (`global.vrrp_version`,',
    '`virtual_server.port`) means the value is inherited from that key. **keepalived** is the',
    'equivalent keepalived.conf keyword; — marks keys keepalived does not have. Durations are in',
    'seconds and may be fractional where the type says "a number".',
    '',
  ];
  const sections = [...new Set(rows.map((r) => r.path.split(/[.[]/)[0]!))];
  out.push('Sections: ' + sections.map((s) => `[${s}](#${s})`).join(', ') + '.', '');
  for (const section of sections) {
    const info = SECTIONS[section];
    const sectionRows = rows.filter((r) => r.path.split(/[.[]/)[0] === section);
    const head = sectionRows.find((r) => r.path === section);
    out.push(`## ${section}`, '');
    const lead = [`${code(info?.toml ?? section)}: ${head ? head.doc.replace(/ \(\[\[?[a-z_.]+\]\]?\)$/, '') : section}`];
    if (head) lead.push(`(keepalived: ${head.keepalived === null ? 'none' : code(head.keepalived)})`);
    out.push(`${lead.join(' ')}.${info?.note ? ` ${info.note}` : ''}`, '');
    const keyRows = sectionRows.filter((r) => r !== head);
    if (keyRows.length > 0) {
      out.push('| Key | Type | Default | keepalived | Description |', '|---|---|---|---|---|');
      for (const r of keyRows) out.push(rowLine(r, section));
      out.push('');
    }
  }
  out.push(...APPENDIX, '');
  out.push(`${rows.length} keys in all.`, '');
  return out.join('\n');
}

function main(argv: string[]): number {
  const text = renderConfigReference();
  if (argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(CONFIG_REFERENCE_PATH, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current === text) return 0;
    process.stderr.write(`${CONFIG_REFERENCE_PATH} is stale: run node dist/scripts/gen-config-reference.js\n`);
    return 1;
  }
  writeFileSync(CONFIG_REFERENCE_PATH, text);
  process.stdout.write(`wrote ${CONFIG_REFERENCE_PATH}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
