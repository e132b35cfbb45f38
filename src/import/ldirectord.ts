/**
 * ldirectord.cf -> keepalive-ts config tables, pure.
 *
 * The file is `key = value` lines: global directives at column 0, and `virtual=` sections whose
 * directives are indented (ldirectord asks for 4 spaces or a tab; any indent is accepted here).
 * `#` starts a comment. Defaults are ldirectord's (its code, where the manual differs):
 * checktype negotiate, checkinterval 10 s, checktimeout 5 s, negotiatetimeout 30 s,
 * failurecount 1, scheduler wrr, quiescent no, protocol tcp (udp for port 53), request "/".
 *
 * ldirectord checks every real server once per checkinterval and fails it after failurecount
 * consecutive failures, so: delay_loop = checkinterval, retry = failurecount - 1,
 * delay_before_retry = checkinterval, warmup = 0 (ldirectord checks at once).
 */
import { GLOBAL_FIELDS, REAL_SERVER_FIELDS, VIRTUAL_SERVER_FIELDS } from '../config/schema.js';
import { didYouMean } from '../config/suggest.js';
import { canonicalAddress } from '../util/endpoint.js';
import { Draft, Messages } from './draft.js';
import { expandAddressRange } from './keepalived-map.js';
import { accepts, checkFieldsOf } from './schema-fit.js';
import type { TomlTable, TomlValue } from './toml-writer.js';
import type { ImportMessage, Loc } from './types.js';

/** /etc/services names ldirectord configs use for ports. */
const SERVICE_PORTS: Readonly<Record<string, number>> = {
  ftp: 21, ssh: 22, smtp: 25, domain: 53, http: 80, www: 80, pop3: 110, nntp: 119, imap: 143, imap2: 143, ldap: 389, https: 443,
  submission: 587, ldaps: 636, imaps: 993, pop3s: 995, 'ms-sql-s': 1433, oracle: 1521, radius: 1812, 'http-alt': 8080, squid: 3128,
  mysql: 3306, postgresql: 5432, sip: 5060,
};

/** ldirectord's default service per virtual port. */
const DEFAULT_SERVICE: Readonly<Record<number, string>> = {
  21: 'ftp', 25: 'smtp', 53: 'dns', 80: 'http', 110: 'pop', 119: 'nntp', 143: 'imap', 389: 'ldap', 443: 'https', 587: 'submission',
  636: 'ldaps', 993: 'imaps', 995: 'pops', 1521: 'oracle', 1812: 'radius', 3128: 'http_proxy', 3306: 'mysql', 5432: 'pgsql', 5060: 'sip',
};

const GLOBAL_KEYS = ['checktimeout', 'negotiatetimeout', 'checkinterval', 'checkcount', 'failurecount', 'autoreload', 'callback', 'fallback', 'fallback6',
  'fallbackcommand', 'logfile', 'emailalert', 'emailalertfrom', 'emailalertfreq', 'emailalertstatus', 'smtp', 'execute', 'supervised', 'fork', 'quiescent',
  'readdquiescent', 'cleanstop', 'maintenancedir'];
const VIRTUAL_KEYS = ['real', 'real6', 'checktype', 'service', 'checkcommand', 'checkport', 'request', 'receive', 'httpmethod', 'virtualhost', 'login', 'passwd',
  'database', 'secret', 'scheduler', 'persistent', 'netmask', 'protocol', 'monitorfile', 'ops', 'servicename', 'comment', 'checktimeout', 'negotiatetimeout',
  'checkinterval', 'checkcount', 'failurecount', 'fallback', 'fallback6', 'fallbackcommand', 'emailalert', 'emailalertfreq', 'emailalertstatus',
  'smtp', 'quiescent', 'cleanstop'];

interface Directive {
  key: string;
  value: string;
  loc: Loc;
}

interface VirtualSection {
  head: Directive;
  v6: boolean;
  directives: Directive[];
}

/** Strips a comment and surrounding quotes: `"index.html"` -> index.html. */
function unquote(s: string): string {
  const t = s.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

function stripComment(line: string): string {
  let quote = false;
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '"') quote = !quote;
    else if (line[i] === '#' && !quote) return line.slice(0, i);
  }
  return line;
}

export function parseLdirectord(text: string, file: string, m: Messages): { globals: Directive[]; virtuals: VirtualSection[] } {
  const globals: Directive[] = [];
  const virtuals: VirtualSection[] = [];
  let current: VirtualSection | undefined;
  text.split(/\r?\n/).forEach((raw, i) => {
    const loc = { file, line: i + 1 };
    const line = stripComment(raw);
    if (line.trim() === '') return;
    const indented = /^[ \t]/.test(line);
    const kv = /^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!kv) {
      m.add(loc, 'error', `"${line.trim()}" is not a key=value directive; ignored`);
      return;
    }
    const d: Directive = { key: kv[1]!.toLowerCase(), value: kv[2]!, loc };
    if (!indented) {
      current = undefined;
      if (d.key === 'virtual' || d.key === 'virtual6') {
        current = { head: d, v6: d.key === 'virtual6', directives: [] };
        virtuals.push(current);
      } else if (GLOBAL_KEYS.includes(d.key)) globals.push(d);
      else {
        const guess = didYouMean(d.key, [...GLOBAL_KEYS, 'virtual']);
        m.add(loc, 'error', `unknown global directive "${d.key}"${guess ? `; did you mean "${guess}"?` : ''}; ignored`);
      }
      return;
    }
    if (!current) {
      m.add(loc, 'error', `indented "${d.key}" outside a virtual= section; ignored`);
      return;
    }
    if (!VIRTUAL_KEYS.includes(d.key)) {
      const guess = didYouMean(d.key, VIRTUAL_KEYS);
      m.add(loc, 'error', `unknown virtual directive "${d.key}"${guess ? `; did you mean "${guess}"?` : ''}; ignored`);
      return;
    }
    current.directives.push(d);
  });
  return { globals, virtuals };
}

/** "ip:port", "[v6]:port", "ip:servicename", "ip" -> address and port (undefined = none given). */
function hostPort(text: string, m: Messages, loc: Loc, what: string): { address: string; port?: number } | undefined {
  const t = text.trim();
  const br = /^\[([^\]]+)\](?::(\S+))?$/.exec(t);
  let host: string;
  let portText: string | undefined;
  if (br) {
    host = br[1]!;
    portText = br[2];
  } else if ((t.match(/:/g) ?? []).length === 1) {
    [host, portText] = t.split(':') as [string, string];
  } else {
    host = t;
  }
  const a = canonicalAddress(host);
  if (!a) {
    m.add(loc, 'unsupported', `${what} ${t}: host names are not resolved by the import; write the IP address; not imported`);
    return undefined;
  }
  if (portText === undefined) return { address: a.address };
  const port = /^\d+$/.test(portText) ? Number(portText) : SERVICE_PORTS[portText];
  if (port === undefined || port < 1 || port > 65535) {
    m.add(loc, 'error', `${what} ${t}: unknown port or service "${portText}"; not imported`);
    return undefined;
  }
  return { address: a.address, port };
}


function num(d: Directive, m: Messages, min = 0): number | undefined {
  if (!/^\d+(\.\d+)?$/.test(d.value) || Number(d.value) < min) {
    m.add(d.loc, 'error', `${d.key} = ${d.value}: not a number${min > 0 ? ` >= ${min}` : ''}; ignored`);
    return undefined;
  }
  return Number(d.value);
}

function yesNo(d: Directive, m: Messages): boolean | undefined {
  const v = unquote(d.value).toLowerCase();
  if (v === 'yes') return true;
  if (v === 'no') return false;
  m.add(d.loc, 'error', `${d.key} = ${d.value}: must be yes or no; ignored`);
  return undefined;
}

const METHOD: Readonly<Record<string, string>> = { gate: 'DR', masq: 'NAT', ipip: 'TUN' };

interface RealSpec {
  address: string;
  port?: number;
  method: string;
  weight: number;
  request?: string;
  receive?: string;
  lthreshold?: number;
  uthreshold?: number;
  loc: Loc;
}

/** `real=IP[->IP][:port] gate|masq|ipip [weight] ["request", "receive"] ["<l:N>"] ["<u:N>"]`. */
function parseReal(d: Directive, m: Messages): RealSpec[] {
  const words = d.value.match(/"[^"]*"|\S+/g) ?? [];
  const [where, method, ...rest] = words;
  if (where === undefined || method === undefined || !METHOD[method]) {
    m.add(d.loc, 'error', `${d.key} = ${d.value}: expected ADDRESS[:PORT] gate|masq|ipip [WEIGHT]; not imported`);
    return [];
  }
  const spec: Omit<RealSpec, 'address' | 'port'> = { method: METHOD[method]!, weight: 1, loc: d.loc };
  const quoted: string[] = [];
  for (const w of rest) {
    if (/^\d+$/.test(w)) spec.weight = Number(w);
    else if (/^"<?l:(\d+)>?"$/.test(w)) spec.lthreshold = Number(/(\d+)/.exec(w)![1]);
    else if (/^"<?u:(\d+)>?"$/.test(w)) spec.uthreshold = Number(/(\d+)/.exec(w)![1]);
    else if (w.startsWith('"')) quoted.push(unquote(w.replace(/,$/, '')));
    else if (w === ',') continue;
    else m.add(d.loc, 'error', `${d.key}: unexpected "${w}"; ignored`);
  }
  if (quoted.length >= 1) spec.request = quoted[0];
  if (quoted.length >= 2) spec.receive = quoted[1];
  // A range a.b.c.d->a.b.c.e[:port]
  const range = /^(.+)->(.+?)(?::(\S+))?$/.exec(where);
  if (range) {
    const port = range[3];
    const addrs = expandAddressRange(`${range[1]}-${range[2]}`);
    if (!addrs) {
      m.add(d.loc, 'unsupported', `${d.key} ${where}: only IP address ranges of at most 256 addresses are imported; not imported`);
      return [];
    }
    return addrs.flatMap((a) => {
      const hp = hostPort(port === undefined ? a : a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`, m, d.loc, d.key);
      return hp ? [{ ...spec, ...hp }] : [];
    });
  }
  const hp = hostPort(where, m, d.loc, d.key);
  return hp ? [{ ...spec, ...hp }] : [];
}

export interface LdirectordResult {
  tables: TomlTable[];
  messages: ImportMessage[];
}

export function importLdirectord(text: string, file: string): LdirectordResult {
  const m = new Messages();
  const { globals, virtuals } = parseLdirectord(text, file, m);
  const g = new Map<string, Directive>();
  const global = new Draft(GLOBAL_FIELDS, { file, line: 1 }, 'global directives');
  let emailAlert: Directive | undefined;
  for (const d of globals) {
    g.set(d.key, d);
    switch (d.key) {
      case 'checktimeout': case 'negotiatetimeout': case 'checkinterval': case 'failurecount': case 'quiescent':
      case 'fallback': case 'fallback6': case 'fallbackcommand': case 'checkcount':
        break; // per-virtual defaults, applied below
      case 'emailalert': {
        // "a@b[, c@d]...": each address the schema takes becomes a recipient.
        const list: string[] = [];
        for (const a of unquote(d.value).split(',').map((s) => s.trim()).filter((s) => s !== '')) {
          if (accepts(GLOBAL_FIELDS, 'notification_email', [a])) list.push(a);
          else m.add(d.loc, 'unsupported', `emailalert ${JSON.stringify(a)}: keepalive-ts sends to full addresses only (user@domain or "Name <user@domain>"); address not imported`);
        }
        if (list.length > 0) {
          global.set('notification_email', list, d.loc);
          emailAlert = d;
        }
        break;
      }
      case 'emailalertfrom': {
        const v = unquote(d.value);
        if (accepts(GLOBAL_FIELDS, 'notification_email_from', v)) global.set('notification_email_from', v, d.loc);
        else m.add(d.loc, 'unsupported', `emailalertfrom ${JSON.stringify(v)}: not an address user@domain (or "Name <user@domain>"); not imported, mails come from USER@HOSTNAME (ldirectord's default too)`);
        break;
      }
      case 'smtp':
        // Checked by `check` like any key: an address it refuses is reported against this line.
        global.set('smtp_server', unquote(d.value), d.loc);
        break;
      case 'emailalertfreq': case 'emailalertstatus':
        m.add(d.loc, 'unsupported', `${d.key}: alert repetition and per-state filters are not supported; not imported`);
        break;
      case 'autoreload':
        m.add(d.loc, 'ignored', 'autoreload: run keepalive-ts reload (or send SIGHUP) after changing the config');
        break;
      case 'callback':
        m.add(d.loc, 'unsupported', 'callback: no command is run on config changes; not imported');
        break;
      case 'logfile': case 'supervised': case 'fork':
        m.add(d.loc, 'ignored', `${d.key}: keepalive-ts runs in the foreground and logs to stdout (--log-format)`);
        break;
      case 'cleanstop':
        m.add(d.loc, 'ignored', 'cleanstop: keepalive-ts drains connections for drain_timeout seconds on stop');
        break;
      case 'readdquiescent':
        m.add(d.loc, 'ignored', 'readdquiescent: keepalive-ts owns its pool; nothing is removed behind its back');
        break;
      case 'maintenancedir':
        m.add(d.loc, 'unsupported', 'maintenancedir: use a FILE_CHECK or MISC_CHECK that looks for the file; not imported');
        break;
      case 'execute':
        m.add(d.loc, 'unsupported', 'execute: import each configuration and run one keepalive-ts per file; not imported');
        break;
    }
  }

  if (emailAlert && !global.has('smtp_server')) {
    // Without smtp= ldirectord hands its mails to the local mailer (Mail::Send, i.e. sendmail);
    // keepalive-ts speaks SMTP, so it goes to the local MTA's port 25.
    global.set('smtp_server', '127.0.0.1', emailAlert.loc);
    m.add(emailAlert.loc, 'changed', 'emailalert without smtp=: ldirectord hands alerts to the local mailer (sendmail); keepalive-ts speaks SMTP, so smtp_server = "127.0.0.1" (the local MTA, port 25) is set');
  }

  const tables: TomlTable[] = [];
  if (global.entries.size > 0) tables.push({ name: 'global', comments: [`from ${file} (global directives)`], loc: global.loc, entries: [...global.entries.values()] });
  let vrrpNoteDone = false;
  for (const v of virtuals) {
    const out = mapVirtual(v, g, m, file);
    tables.push(...out);
    if (out.length > 0 && !vrrpNoteDone) {
      vrrpNoteDone = true;
      m.add(v.head.loc, 'changed', 'ldirectord has no VRRP: the VIP must be on this director for the service to answer (your cluster manager adds it, or add a [[vrrp_instance]] with the VIP)');
    }
  }
  return { tables, messages: m.list };
}

function mapVirtual(v: VirtualSection, g: ReadonlyMap<string, Directive>, m: Messages, file: string): TomlTable[] {
  const opt = new Map<string, Directive>();
  const reals: RealSpec[] = [];
  for (const d of v.directives) {
    if (d.key === 'real' || d.key === 'real6') reals.push(...parseReal(d, m));
    else opt.set(d.key, d);
  }
  const get = (k: string): Directive | undefined => opt.get(k) ?? g.get(k);
  const vs = new Draft(VIRTUAL_SERVER_FIELDS, v.head.loc, `${v.head.key}=${v.head.value}`);
  const head = unquote(v.head.value);
  if (/^\d+$/.test(head)) {
    if (accepts(VIRTUAL_SERVER_FIELDS, 'fwmark', Number(head))) vs.set('fwmark', Number(head), v.head.loc);
    else {
      m.add(v.head.loc, 'unsupported', `${v.head.key}=${head}: no fwmark services in this keepalive-ts (the data-plane contract adds them); virtual service not imported`);
      return [];
    }
  } else {
    const hp = hostPort(head, m, v.head.loc, v.head.key);
    if (!hp) return [];
    if (hp.port === undefined) {
      m.add(v.head.loc, 'unsupported', `${v.head.key}=${head}: a virtual service without a port is not supported; not imported`);
      return [];
    }
    vs.set('address', hp.address, v.head.loc);
    vs.set('port', hp.port, v.head.loc);
  }
  const vport = vs.get('port') as number | undefined;

  // protocol
  const proto = get('protocol');
  const protocol = proto ? unquote(proto.value).toLowerCase() : vport === 53 ? 'udp' : 'tcp';
  if (protocol === 'udp') vs.set('protocol', 'UDP', proto?.loc ?? v.head.loc);
  else if (protocol !== 'tcp' && protocol !== 'fwm') m.add(proto!.loc, 'error', `protocol = ${protocol}: must be tcp, udp or fwm`);

  // scheduling and persistence
  const sched = get('scheduler');
  const algo = sched ? unquote(sched.value) : 'wrr';
  if (accepts(VIRTUAL_SERVER_FIELDS, 'lb_algo', algo)) vs.set('lb_algo', algo, sched?.loc ?? v.head.loc);
  else m.add(sched!.loc, 'unsupported', `scheduler = ${algo}: no such scheduler in keepalive-ts; the default wlc is used`);
  const pers = get('persistent');
  if (pers) {
    const n = num(pers, m);
    if (n !== undefined) vs.set('persistence_timeout', Math.round(n), pers.loc);
  }
  const mask = get('netmask');
  if (mask) vs.set('persistence_granularity', unquote(mask.value), mask.loc);
  const ops = get('ops');
  if (ops && yesNo(ops, m)) vs.set('ops', true, ops.loc);

  // timing: ldirectord checks every checkinterval, fails after failurecount failures
  const interval = get('checkinterval');
  const delay = (interval && num(interval, m, 0.001)) || 10;
  vs.set('delay_loop', delay, interval?.loc ?? v.head.loc);
  const fc = get('failurecount');
  const failures = (fc && num(fc, m, 1)) || 1;
  vs.set('retry', Math.round(failures) - 1, fc?.loc ?? v.head.loc);
  vs.set('delay_before_retry', delay, interval?.loc ?? v.head.loc);
  vs.set('warmup', 0, v.head.loc);
  const cc = get('checkcount');
  if (cc) m.add(cc.loc, 'changed', 'checkcount (deprecated in ldirectord): use failurecount; ignored');

  const q = get('quiescent');
  if (q && yesNo(q, m)) vs.set('inhibit_on_failure', true, q.loc);

  const fb = opt.get('fallback') ?? opt.get('fallback6') ?? g.get('fallback') ?? g.get('fallback6');
  if (fb) {
    const [where, method] = unquote(fb.value).split(/\s+/);
    const hp = where === undefined ? undefined : hostPort(where, m, fb.loc, fb.key);
    if (hp) vs.set('sorry_server', hp.port === undefined ? { address: hp.address } : { address: hp.address, port: hp.port }, fb.loc);
    if (method !== undefined && METHOD[method] !== undefined && METHOD[method] !== 'NAT') m.add(fb.loc, 'changed', `${fb.key} ... ${method}: the fallback server is forwarded like the real servers`);
  }
  const fbc = get('fallbackcommand');
  if (fbc) {
    const cmd = unquote(fbc.value);
    const svc = `${String(vs.get('address') ?? vs.get('fwmark'))}:${vport ?? 0}`;
    vs.set('quorum_down', `${cmd} start ${svc} ${protocol}`, fbc.loc);
    vs.set('quorum_up', `${cmd} stop ${svc} ${protocol}`, fbc.loc);
  }
  for (const k of ['emailalert', 'emailalertfreq', 'emailalertstatus', 'smtp']) {
    const d = opt.get(k);
    if (d) m.add(d.loc, 'unsupported', `${k} in a virtual section: per-service alert settings are not supported (set them globally); not imported`);
  }
  const mf = opt.get('monitorfile');
  if (mf) m.add(mf.loc, 'ignored', 'monitorfile: check results are in `keepalive-ts status` and the keepalive_ts_check_* metrics');
  const cs = opt.get('cleanstop');
  if (cs) m.add(cs.loc, 'ignored', 'cleanstop: keepalive-ts drains connections for drain_timeout seconds on stop');

  // forwarding method: one per virtual server
  const methods = [...new Set(reals.map((r) => r.method))];
  const method = methods[0] ?? 'NAT';
  if (methods.length > 1) m.add(v.head.loc, 'unsupported', `real servers mix ${methods.join(' and ')}: one forwarding method per virtual server in keepalive-ts; ${method} is used`);
  if (method !== 'NAT') {
    if (accepts(VIRTUAL_SERVER_FIELDS, 'lb_kind', method)) vs.set('lb_kind', method, reals[0]!.loc);
    else if (method === 'TUN') m.add(reals[0]!.loc, 'unsupported', 'ipip (LVS-TUN): IP-in-IP tunnelling is not available (no ipip on this kernel); imported with the default lb_kind NAT (the real servers must route their replies back through the director; gate/DR is the choice when they share its LAN)');
    else m.add(reals[0]!.loc, 'changed', `${method} forwarding is not available in this keepalive-ts; imported with the default lb_kind NAT (the real servers must route their replies back through the director)`);
  }

  const tables: TomlTable[] = [{ name: 'virtual_server', array: true, comments: [`from ${file}:${v.head.loc.line} (${v.head.key}=${head})`], loc: v.head.loc, entries: [...vs.entries.values()] }];
  const seen = new Set<string>();
  for (const r of reals) {
    const rs = new Draft(REAL_SERVER_FIELDS, r.loc, 'real');
    rs.set('address', r.address, r.loc);
    let port = r.port;
    if (r.method !== 'NAT' && vport !== undefined && port !== undefined && port !== vport) {
      m.add(r.loc, 'changed', `real ${r.address}:${port} with ${r.method === 'DR' ? 'gate' : 'ipip'}: LVS cannot map ports for this method, so ldirectord uses the virtual port ${vport}; so does the import`);
      port = vport;
    }
    if (port !== undefined && port !== vport) rs.set('port', port, r.loc);
    const key = `${r.address}|${port ?? vport}`;
    if (seen.has(key)) {
      m.add(r.loc, 'error', `real ${r.address}:${port ?? vport} listed twice; imported once`);
      continue;
    }
    seen.add(key);
    if (r.weight !== 1) rs.set('weight', r.weight, r.loc);
    if (r.lthreshold !== undefined) rs.set('lthreshold', r.lthreshold, r.loc);
    if (r.uthreshold !== undefined) rs.set('uthreshold', r.uthreshold, r.loc);
    const checks = realChecks(v, opt, g, r, vs, protocol, m);
    if (checks === 'off') rs.set('weight', 0, r.loc);
    tables.push({ name: 'virtual_server.real_server', array: true, comments: [`from ${file}:${r.loc.line} (real=${r.address}${r.port !== undefined ? `:${r.port}` : ''})`], loc: r.loc, entries: [...rs.entries.values()] });
    if (checks !== 'off') {
      for (const c of checks) tables.push({ name: 'virtual_server.real_server.check', array: true, comments: [`from ${file}:${c.loc.line} (checktype / service)`], loc: c.loc, entries: [...c.entries.values()] });
    }
  }
  if (reals.length === 0) m.add(v.head.loc, 'changed', `${v.head.key}=${head} has no real servers: only the fallback (sorry) server, if any, answers`);
  return tables;
}

/** The checks of one real server, or 'off' (ldirectord checktype=off: never activated). */
function realChecks(v: VirtualSection, opt: ReadonlyMap<string, Directive>, g: ReadonlyMap<string, Directive>, r: RealSpec, vs: Draft, protocol: string, m: Messages): Draft[] | 'off' {
  const get = (k: string): Directive | undefined => opt.get(k) ?? g.get(k);
  const ct = opt.get('checktype');
  let checktype = ct ? unquote(ct.value).toLowerCase() : 'negotiate';
  const vport = vs.get('port') as number | undefined;
  const svcDir = opt.get('service');
  const service = svcDir ? unquote(svcDir.value).toLowerCase() : (vport !== undefined ? DEFAULT_SERVICE[vport] : undefined) ?? 'none';
  const loc = ct?.loc ?? svcDir?.loc ?? v.head.loc;
  if (/^\d+$/.test(checktype)) {
    m.add(ct!.loc, 'changed', `checktype = ${checktype} (connect checks with a negotiate every ${checktype}): every check negotiates`);
    checktype = 'negotiate';
  }
  if (checktype === 'on') return [];
  if (checktype === 'off') {
    m.add(ct!.loc, 'changed', `checktype = off: real ${r.address} is never activated (ldirectord); imported with weight 0`);
    return 'off';
  }
  // ldirectord's order: this virtual's own timeout, its other timeout, then the global ones.
  const timeout = (which: 'check' | 'negotiate'): number => {
    const own = which === 'negotiate' ? 'negotiatetimeout' : 'checktimeout';
    const other = which === 'negotiate' ? 'checktimeout' : 'negotiatetimeout';
    for (const d of [opt.get(own), opt.get(other), g.get(own), g.get(other)]) {
      const n = d ? num(d, m, 0.001) : undefined;
      if (n !== undefined) return n;
    }
    return which === 'negotiate' ? 30 : 5;
  };
  const make = (type: string): Draft => {
    const d = new Draft(checkFieldsOf(type), loc, type);
    d.set('type', type, loc);
    const cp = opt.get('checkport');
    if (cp && /^\d+$/.test(cp.value)) d.set('connect_port', Number(cp.value), cp.loc);
    return d;
  };
  if (checktype === 'connect') {
    // ldirectord's connect check of a UDP service is a ping.
    const d = make(protocol === 'udp' ? 'PING_CHECK' : 'TCP_CHECK');
    if (protocol === 'udp') d.delete('connect_port');
    d.set('connect_timeout', timeout('check'), loc);
    return [d];
  }
  if (checktype === 'ping') {
    const d = make('PING_CHECK');
    d.delete('connect_port');
    d.set('connect_timeout', timeout('check'), loc);
    return [d];
  }
  if (checktype === 'external' || checktype === 'external-perl') {
    const cmd = get('checkcommand');
    const d = make('MISC_CHECK');
    d.delete('connect_port');
    const rport = r.port ?? vport ?? 0;
    d.set('misc_path', `${cmd ? unquote(cmd.value) : '/bin/true'} ${String(vs.get('address') ?? vs.get('fwmark'))} ${vport ?? 0} ${r.address} ${rport}`, cmd?.loc ?? loc);
    d.set('misc_timeout', timeout('check'), loc);
    if (checktype === 'external-perl') m.add(ct!.loc, 'changed', 'checktype = external-perl: the check command is run as a program (it must be executable, with a #! line)');
    return [d];
  }
  if (checktype !== 'negotiate') {
    m.add(ct!.loc, 'error', `checktype = ${checktype}: must be connect, negotiate, ping, external, external-perl, on, off or a number; a connect check is used`);
    const d = make('TCP_CHECK');
    d.set('connect_timeout', timeout('check'), loc);
    return [d];
  }
  const request = r.request ?? (opt.get('request') ? unquote(opt.get('request')!.value) : undefined);
  const receive = r.receive ?? (opt.get('receive') ? unquote(opt.get('receive')!.value) : undefined);
  const negTimeout = timeout('negotiate');
  switch (service) {
    case 'http':
    case 'https': {
      const d = make(service === 'https' ? 'SSL_GET' : 'HTTP_GET');
      let path = request ?? '/';
      if (/^https?:\/\//.test(path)) {
        m.add(r.loc, 'changed', `request ${path}: the address and port in the URL are not used; the real server is checked at ${new URL(path).pathname}`);
        path = new URL(path).pathname + new URL(path).search;
      }
      if (!path.startsWith('/')) path = `/${path}`;
      d.set('path', path, opt.get('request')?.loc ?? loc);
      if (receive !== undefined && receive !== '') {
        try {
          new RegExp(receive);
          d.set('regex', receive, opt.get('receive')?.loc ?? loc);
        } catch {
          m.add(opt.get('receive')?.loc ?? r.loc, 'unsupported', `receive "${receive}": not a JavaScript regular expression (ldirectord uses Perl's); not imported`);
        }
      }
      const vh = opt.get('virtualhost');
      if (vh) d.set('virtualhost', unquote(vh.value), vh.loc);
      const hm = opt.get('httpmethod');
      if (hm && unquote(hm.value).toUpperCase() === 'HEAD') m.add(hm.loc, 'changed', 'httpmethod = HEAD: keepalive-ts checks with GET');
      d.set('connect_timeout', negTimeout, loc);
      return [d];
    }
    case 'smtp':
    case 'submission': {
      const d = make('SMTP_CHECK');
      d.set('connect_timeout', negTimeout, loc);
      return [d];
    }
    case 'dns': {
      const d = make('DNS_CHECK');
      d.set('query_type', 'A', loc);
      if (request !== undefined && request !== '/') d.set('name', request.replace(/^\//, ''), opt.get('request')?.loc ?? loc);
      if (receive) m.add(opt.get('receive')?.loc ?? loc, 'unsupported', 'receive for a dns check: the answer is not compared (any NOERROR reply counts)');
      d.set('connect_timeout', negTimeout, loc);
      return [d];
    }
    case 'none':
      return [];
    default: {
      m.add(svcDir?.loc ?? loc, 'unsupported', `service = ${service}: no ${service} negotiate check in keepalive-ts; a ${protocol === 'udp' ? 'ping' : 'TCP connect'} check is used instead`);
      const d = make(protocol === 'udp' ? 'PING_CHECK' : 'TCP_CHECK');
      if (protocol === 'udp') d.delete('connect_port');
      d.set('connect_timeout', negTimeout, loc);
      return [d];
    }
  }
}

export type { TomlValue };
