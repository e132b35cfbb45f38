/**
 * keepalived's route, rule and address lines (virtual_routes, virtual_rules, static_routes,
 * static_rules, static_ipaddress), parsed into structured values, pure. The syntax is the one of
 * `ip route add` / `ip rule add` / `ip addr add`, as keepalived.conf(5) documents it; the config
 * loader parses every line once (a bad one is a file:line error) and the shells (RouteSet, rtnl)
 * only ever see these values.
 *
 * Supported route words: [inet|inet6] [to] [TYPE] PREFIX|default, src ADDR, via|gw ADDR,
 * from PREFIX, dev|oif NAME, table N|main|local|default, metric|priority|preference N,
 * scope NAME|N, protocol NAME|N, tos|dsfield N, onlink, add|prepend|append, no_track.
 * TYPE: unicast, blackhole, unreachable, prohibit, throw.
 * Rule words: [inet|inet6] from PREFIX|all, to PREFIX|all, table|lookup N|NAME,
 * preference|priority|order N, fwmark N[/MASK], iif|dev NAME, oif NAME, tos|dsfield N, not,
 * protocol N, goto N, blackhole|unreachable|prohibit|nop, no_track.
 * Address words: ADDR[/PREFIX] dev NAME [scope NAME|N] [label NAME] [brd ADDR] [-nodad] [noprefixroute].
 *
 * Everything else keepalived accepts (nexthop lists, metrics like mtu/advmss, encap, realms,
 * track_group, uidrange, ports...) is refused with a message naming the word, never ignored.
 * `no_track` is accepted and changes nothing: keepalive-ts never tracks its routes and rules
 * (a route or rule deleted by someone else is not put back until the next MASTER transition),
 * which is what keepalived's no_track asks for.
 */
import { parseCidr, parseIp, type AddressFamily, type ParsedCidr } from '../config/net.js';

export type RouteType = 'unicast' | 'blackhole' | 'unreachable' | 'prohibit' | 'throw';
export type RouteMode = 'prepend' | 'add' | 'append';
export type RuleAction = 'table' | 'goto' | 'nop' | 'blackhole' | 'unreachable' | 'prohibit';

/** rtm_type values of the route types above. */
export const ROUTE_TYPE_CODE: Readonly<Record<RouteType, number>> = { unicast: 1, blackhole: 6, unreachable: 7, prohibit: 8, throw: 9 };
/** FR_ACT_* values of the rule actions above. */
export const RULE_ACTION_CODE: Readonly<Record<RuleAction, number>> = { table: 1, goto: 2, nop: 3, blackhole: 6, unreachable: 7, prohibit: 8 };
/** keepalived's own routing protocol number (RTPROT_KEEPALIVED, Linux 5.8): what its routes carry by default. */
export const RTPROT_KEEPALIVED = 18;

const TABLES: Readonly<Record<string, number>> = { default: 253, main: 254, local: 255 };
const SCOPES: Readonly<Record<string, number>> = { global: 0, universe: 0, site: 200, link: 253, host: 254, nowhere: 255 };
const PROTOCOLS: Readonly<Record<string, number>> = {
  redirect: 1, kernel: 2, boot: 3, static: 4, gated: 8, ra: 9, mrt: 10, zebra: 11, bird: 12, dnrouted: 13, xorp: 14,
  ntk: 15, dhcp: 16, keepalived: 18, babel: 42, bgp: 186, isis: 187, ospf: 188, rip: 189, eigrp: 192,
};
const ROUTE_TYPES: readonly RouteType[] = ['unicast', 'blackhole', 'unreachable', 'prohibit', 'throw'];

export interface RouteSpec {
  /** The line as written (logs, status). */
  text: string;
  family: AddressFamily;
  type: RouteType;
  /** Destination prefix; "default" is the zero-length prefix. */
  dst: ParsedCidr;
  /** RTA_PREFSRC (keepalived `src`). */
  src?: string;
  /** Source prefix (`from`). */
  from?: ParsedCidr;
  via?: string;
  dev?: string;
  table: number;
  metric?: number;
  scope: number;
  protocol: number;
  tos?: number;
  onlink: boolean;
  mode: RouteMode;
}

export interface RuleSpec {
  text: string;
  family: AddressFamily;
  from?: ParsedCidr;
  to?: ParsedCidr;
  action: RuleAction;
  /** For action "table". */
  table?: number;
  /** For action "goto". */
  goto?: number;
  preference?: number;
  fwmark?: number;
  fwmask?: number;
  iif?: string;
  oif?: string;
  tos?: number;
  invert: boolean;
  protocol: number;
}

export interface AddressSpec {
  text: string;
  family: AddressFamily;
  address: string;
  prefix: number;
  dev: string;
  scope: number;
  label?: string;
  broadcast?: string;
  nodad: boolean;
  noprefixroute: boolean;
}

/**
 * A failure says whether the line is wrong (`unsupported` unset) or uses a word keepalived accepts
 * and keepalive-ts does not (`unsupported` true): `keepalive-ts import` drops such a line with an
 * "unsupported" note instead of an error.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string; unsupported?: true };

class ParseError extends Error {
  constructor(message: string, readonly unsupported = false) {
    super(message);
  }
}

const fail = (message: string): never => {
  throw new ParseError(message);
};

function words(text: string): string[] {
  return text.trim().split(/\s+/).filter((w) => w.length > 0);
}

/** A cursor over the words of a line, with the typed readers the three grammars share. */
class Words {
  #i = 0;
  constructor(private readonly list: string[]) {}
  get done(): boolean { return this.#i >= this.list.length; }
  peek(): string | undefined { return this.list[this.#i]; }
  next(): string { return this.list[this.#i++]!; }
  arg(word: string): string {
    const v = this.list[this.#i++];
    if (v === undefined) fail(`"${word}" needs a value`);
    return v!;
  }
  uint(word: string, max = 0xffffffff): number {
    const v = this.arg(word);
    const n = /^(0x[0-9a-f]+|\d+)$/i.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > max) fail(`${word} must be a number 0..${max}, got "${v}"`);
    return n;
  }
  named(word: string, names: Readonly<Record<string, number>>, max: number): number {
    const v = this.arg(word);
    if (Object.hasOwn(names, v)) return names[v]!;
    const n = /^(0x[0-9a-f]+|\d+)$/i.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > max) fail(`${word} must be one of ${Object.keys(names).join(', ')} or a number 0..${max}, got "${v}"`);
    return n;
  }
}

/** Tracks the one family a line may use: set by inet/inet6 or by its first address. */
class Family {
  value: AddressFamily | undefined;
  set(f: AddressFamily, what: string): void {
    if (this.value !== undefined && this.value !== f) fail(`${what} is IPv${f} but the line is IPv${this.value}; one line, one address family`);
    this.value = f;
  }
}

function prefixArg(w: Words, word: string, family: Family): ParsedCidr {
  const v = w.arg(word);
  const p = parseCidr(v);
  if (!p) fail(`${word} must be an address with an optional /prefix, got "${v}"`);
  family.set(p!.family, `${word} ${v}`);
  return p!;
}

function addressArg(w: Words, word: string, family: Family): string {
  const v = w.arg(word);
  const p = parseIp(v);
  if (!p) fail(`${word} must be an IP address, got "${v}"`);
  family.set(p!.family, `${word} ${v}`);
  return p!.address;
}

function run<T>(text: string, parse: (w: Words) => T): Parsed<T> {
  try {
    return { ok: true, value: parse(new Words(words(text))) };
  } catch (err) {
    if (err instanceof ParseError) return { ok: false, error: err.message, ...(err.unsupported ? { unsupported: true as const } : {}) };
    throw err;
  }
}

function unsupported(word: string, what: string): never {
  throw new ParseError(`"${word}" is not supported in ${what} by keepalive-ts`, true);
}

/** Words keepalived accepts that keepalive-ts refuses: named in the error instead of "unknown". */
const KEEPALIVED_ONLY_ROUTE = new Set([
  'nexthop', 'or', 'encap', 'expires', 'mtu', 'hoplimit', 'advmss', 'rtt', 'rttvar', 'reordering', 'window', 'cwnd',
  'ssthresh', 'realms', 'rto_min', 'initcwnd', 'initrwnd', 'features', 'quickack', 'congctl', 'pref', 'ttl-propagate',
  'fastopen_no_cookie', 'track_group', 'vrf', 'as',
]);
const KEEPALIVED_ONLY_RULE = new Set([
  'realms', 'suppress_prefixlength', 'sup_pl', 'suppress_ifgroup', 'sup_group', 'tunnel-id', 'uidrange', 'l3mdev',
  'ipproto', 'sport', 'dport', 'track_group', 'type',
]);
const KEEPALIVED_ONLY_ADDRESS = new Set(['peer', 'home', 'mngtmpaddr', 'autojoin', 'track_group', 'preferred_lft', 'use_vmac', 'no_track']);

export function parseRouteSpec(text: string): Parsed<RouteSpec> {
  return run(text, (w) => {
    const family = new Family();
    let type: RouteType = 'unicast';
    let dst: ParsedCidr | 'default' | undefined;
    const r: Partial<RouteSpec> = {};
    let scope: number | undefined;
    let mode: RouteMode = 'prepend';
    let onlink = false;
    let protocol = RTPROT_KEEPALIVED;
    let table = TABLES.main!;
    while (!w.done) {
      const word = w.next();
      switch (word) {
        case 'inet': family.set(4, 'inet'); break;
        case 'inet6': family.set(6, 'inet6'); break;
        case 'src': r.src = addressArg(w, 'src', family); break;
        case 'via':
        case 'gw': {
          if (w.peek() === 'inet' || w.peek() === 'inet6') family.set(w.next() === 'inet' ? 4 : 6, 'via');
          r.via = addressArg(w, word, family);
          break;
        }
        case 'from': r.from = prefixArg(w, 'from', family); break;
        case 'dev':
        case 'oif': r.dev = w.arg(word); break;
        case 'table': table = w.named('table', TABLES, 0xffffffff); break;
        case 'metric':
        case 'priority':
        case 'preference': r.metric = w.uint(word); break;
        case 'scope': scope = w.named('scope', SCOPES, 255); break;
        case 'protocol':
        case 'proto': protocol = w.named('protocol', PROTOCOLS, 255); break;
        case 'tos':
        case 'dsfield': r.tos = w.uint(word, 255); break;
        case 'onlink': onlink = true; break;
        case 'add':
        case 'prepend':
        case 'append': mode = word; break;
        case 'no_track': break;
        default: {
          if (KEEPALIVED_ONLY_ROUTE.has(word)) unsupported(word, 'routes');
          if (dst !== undefined) fail(`unexpected "${word}": the destination is already ${dst === 'default' ? 'default' : `${dst.address}/${dst.prefix}`}`);
          let token = word;
          if (token === 'to') token = w.arg('to');
          if ((ROUTE_TYPES as readonly string[]).includes(token)) {
            type = token as RouteType;
            token = w.arg(type);
          }
          if (token === 'default' || token === 'all') dst = 'default';
          else {
            const p = parseCidr(token);
            if (!p) fail(`unknown route word or bad destination "${token}"`);
            family.set(p!.family, `destination ${token}`);
            dst = p!;
          }
        }
      }
    }
    if (dst === undefined) fail('a route needs a destination (PREFIX or "default")');
    const fam: AddressFamily = family.value ?? 4;
    const dest: ParsedCidr = dst === 'default' ? { address: fam === 4 ? '0.0.0.0' : '::', family: fam, prefix: 0 } : dst!;
    if (type !== 'unicast' && (r.via !== undefined || r.dev !== undefined)) fail(`a ${type} route takes no via or dev`);
    if (type === 'unicast' && r.via === undefined && r.dev === undefined) fail('a unicast route needs "via ADDR" or "dev NAME"');
    if (onlink && r.via === undefined) fail('onlink needs "via ADDR"');
    return {
      text: text.trim(), family: fam, type, dst: dest, table, protocol, onlink, mode,
      // keepalived sends RT_SCOPE_UNIVERSE unless told otherwise (ip route would pick link for a
      // dev-only route); universe is what keepalived's routes look like in `ip route`.
      scope: scope ?? 0,
      ...r,
    };
  });
}

export function parseRuleSpec(text: string): Parsed<RuleSpec> {
  return run(text, (w) => {
    const family = new Family();
    const r: Partial<RuleSpec> = {};
    let action: RuleAction | undefined;
    let invert = false;
    let protocol = RTPROT_KEEPALIVED;
    const setAction = (a: RuleAction): void => {
      if (action !== undefined && action !== a) fail(`a rule has one action; got ${action} and ${a}`);
      action = a;
    };
    while (!w.done) {
      const word = w.next();
      switch (word) {
        case 'inet': family.set(4, 'inet'); break;
        case 'inet6': family.set(6, 'inet6'); break;
        case 'from':
        case 'to': {
          if (w.peek() === 'all') { w.next(); break; }
          r[word] = prefixArg(w, word, family);
          break;
        }
        case 'table':
        case 'lookup': setAction('table'); r.table = w.named(word, TABLES, 0xffffffff); break;
        case 'preference':
        case 'priority':
        case 'order': r.preference = w.uint(word); break;
        case 'fwmark': {
          const v = w.arg('fwmark');
          const m = /^(0x[0-9a-f]+|\d+)(?:\/(0x[0-9a-f]+|\d+))?$/i.exec(v);
          if (!m || Number(m[1]) > 0xffffffff || (m[2] !== undefined && Number(m[2]) > 0xffffffff)) fail(`fwmark must be N or N/MASK, got "${v}"`);
          r.fwmark = Number(m![1]);
          if (m![2] !== undefined) r.fwmask = Number(m![2]);
          break;
        }
        case 'iif':
        case 'dev': r.iif = w.arg(word); break;
        case 'oif': r.oif = w.arg(word); break;
        case 'tos':
        case 'dsfield': r.tos = w.uint(word, 255); break;
        case 'not': invert = true; break;
        case 'protocol': protocol = w.named('protocol', PROTOCOLS, 255); break;
        case 'goto': setAction('goto'); r.goto = w.uint('goto'); break;
        case 'nop':
        case 'blackhole':
        case 'unreachable':
        case 'prohibit': setAction(word); break;
        case 'no_track': break;
        default:
          if (KEEPALIVED_ONLY_RULE.has(word)) unsupported(word, 'rules');
          fail(`unknown rule word "${word}"`);
      }
    }
    if (action === undefined) {
      // `ip rule add from X` looks up the main table.
      action = 'table';
      r.table = TABLES.main;
    }
    if (action === 'goto' && (r.preference === undefined || r.goto! <= r.preference)) fail('goto needs a preference lower than its target');
    return { text: text.trim(), family: family.value ?? 4, action, invert, protocol, ...r };
  });
}

export function parseAddressSpec(text: string): Parsed<AddressSpec> {
  return run(text, (w) => {
    const family = new Family();
    const first = w.done ? undefined : w.next();
    const cidr = first === undefined ? undefined : parseCidr(first);
    if (!cidr) fail(`an address line starts with ADDR[/PREFIX], got "${first ?? ''}"`);
    family.set(cidr!.family, first!);
    const a: Partial<AddressSpec> = {};
    let scope = 0;
    let nodad = false;
    let noprefixroute = false;
    while (!w.done) {
      const word = w.next();
      switch (word) {
        case 'dev': a.dev = w.arg('dev'); break;
        case 'scope': scope = w.named('scope', SCOPES, 255); break;
        case 'label': a.label = w.arg('label'); break;
        case 'brd':
        case 'broadcast': {
          if (cidr!.family !== 4) fail('brd is IPv4 only');
          a.broadcast = addressArg(w, word, family);
          break;
        }
        case '-nodad':
        case 'nodad': nodad = true; break;
        case 'noprefixroute': noprefixroute = true; break;
        default:
          if (KEEPALIVED_ONLY_ADDRESS.has(word)) unsupported(word, 'static_ipaddress');
          fail(`unknown address word "${word}"`);
      }
    }
    if (a.dev === undefined) fail('a static address needs "dev NAME"');
    if (a.label !== undefined && (cidr!.family !== 4 || !a.label.startsWith(a.dev!))) fail(`label must be IPv4 and start with the device name ${a.dev} (like ${a.dev}:1)`);
    return { text: text.trim(), family: cidr!.family, address: cidr!.address, prefix: cidr!.prefix, dev: a.dev!, scope, nodad, noprefixroute, ...a };
  });
}

/** Canonical identity of a route for diffs and duplicates: what the kernel uses to tell routes apart. */
export function routeKey(r: RouteSpec): string {
  return [r.family, r.table, `${r.dst.address}/${r.dst.prefix}`, r.from ? `${r.from.address}/${r.from.prefix}` : '', r.tos ?? 0, r.metric ?? '', r.type, r.via ?? '', r.dev ?? ''].join('|');
}

export function ruleKey(r: RuleSpec): string {
  const p = (c: ParsedCidr | undefined) => (c ? `${c.address}/${c.prefix}` : '');
  return [r.family, r.preference ?? '', p(r.from), p(r.to), r.action, r.table ?? '', r.goto ?? '', r.fwmark ?? '', r.fwmask ?? '', r.iif ?? '', r.oif ?? '', r.tos ?? '', r.invert].join('|');
}

export function addressKey(a: AddressSpec): string {
  return `${a.dev}|${a.address}/${a.prefix}`;
}
