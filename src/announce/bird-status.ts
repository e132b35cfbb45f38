/**
 * Parsers for what `birdc` prints (pure): `show protocols all` and `show bfd sessions`, as BIRD
 * 2.0.12 writes them (fixtures captured from the real daemon: scripts/capture-bird-fixtures.sh,
 * test/fixtures/bird/). Times are read in every form BIRD prints them: the epoch form our
 * generated config asks for (`timeformat protocol "%s.%3f"`), "YYYY-MM-DD HH:MM:SS[.fff]" and
 * "HH:MM:SS[.fff]" (today), both in local time.
 */

export interface BirdChannel {
  /** "ipv4", "ipv6". */
  name: string;
  /** "UP", "DOWN", "START", ... */
  state: string;
  imported: number | null;
  exported: number | null;
}

export interface BirdProtocol {
  name: string;
  /** "BGP", "Kernel", "BFD", "Device", ... */
  proto: string;
  table: string;
  /** BIRD's protocol state: "up", "start", "down", "flush". */
  state: string;
  /** Epoch milliseconds of the last state change, null if unreadable. */
  since: number | null;
  /** The Info column ("Established", "Active        Socket: No route to host"), spaces collapsed. */
  info: string;
  /** BGP protocols only. */
  bgp?: {
    /** "Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established", "Down". */
    state: string;
    neighborAddress?: string;
    neighborAs?: number;
    localAs?: number;
    neighborId?: string;
    sourceAddress?: string;
    lastError?: string;
    /** Negotiated hold time, seconds (only while a session is up). */
    holdTime?: number;
  };
  channels: BirdChannel[];
}

export interface BfdSession {
  address: string;
  interface: string;
  /** "Up", "Down", "Init", "AdminDown". */
  state: string;
  since: number | null;
  /** Seconds. */
  interval: number | null;
  timeout: number | null;
}

/** "1795947357.147", "2026-11-29 10:11:46[.706]", "10:11:46[.706]" -> epoch ms (local time); null otherwise. */
export function parseBirdTime(text: string, now: Date = new Date()): number | null {
  if (/^\d{9,}(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const full = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(text);
  if (full) {
    const [, y, mo, d, h, mi, s, f] = full;
    return new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), fracMs(f)).getTime();
  }
  const time = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(text);
  if (time) {
    const [, h, mi, s, f] = time;
    return new Date(now.getFullYear(), now.getMonth(), now.getDate(), Number(h), Number(mi), Number(s), fracMs(f)).getTime();
  }
  return null;
}

function fracMs(f: string | undefined): number {
  return f === undefined ? 0 : Math.round(Number(`0.${f}`) * 1000);
}

/** Splits the summary line's Since column (1 or 2 tokens) from the Info that follows. */
function splitSince(tokens: string[], now: Date): { since: number | null; rest: string[] } {
  if (tokens.length >= 2 && /^\d{4}-\d{2}-\d{2}$/.test(tokens[0]!)) {
    return { since: parseBirdTime(`${tokens[0]} ${tokens[1]}`, now), rest: tokens.slice(2) };
  }
  if (tokens.length >= 1) {
    const since = parseBirdTime(tokens[0]!, now);
    if (since !== null) return { since, rest: tokens.slice(1) };
  }
  return { since: null, rest: tokens };
}

const num = (s: string | undefined): number | undefined => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined);

/** Drops birdc's greeting ("BIRD 2.0.12 ready.") if present. */
function lines(text: string): string[] {
  return text.split('\n').filter((l, i) => !(i === 0 && /^BIRD .* ready\.$/.test(l.trim())));
}

/** `show protocols` or `show protocols all`. Unknown lines are ignored, so newer BIRDs still parse. */
export function parseShowProtocols(text: string, now: Date = new Date()): BirdProtocol[] {
  const out: BirdProtocol[] = [];
  let cur: BirdProtocol | undefined;
  let channel: BirdChannel | undefined;
  for (const line of lines(text)) {
    if (line.trim() === '') continue;
    if (/^Name\s+Proto\s+Table\s+State\s+Since/.test(line)) continue;
    if (!/^\s/.test(line)) {
      const t = line.trim().split(/\s+/);
      if (t.length < 4) continue;
      const [name, proto, table, state, ...rest] = t as [string, string, string, string, ...string[]];
      const s = splitSince(rest, now);
      cur = { name, proto, table, state, since: s.since, info: s.rest.join(' '), channels: [] };
      if (proto === 'BGP') cur.bgp = { state: '' };
      channel = undefined;
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    const ch = /^\s+Channel (\S+)\s*$/.exec(line);
    if (ch) {
      channel = { name: ch[1]!, state: '', imported: null, exported: null };
      cur.channels.push(channel);
      continue;
    }
    const kv = /^\s+([A-Za-z][A-Za-z0-9 -]*?):\s*(.*?)\s*$/.exec(line);
    if (!kv) continue;
    const [, key, value] = kv as unknown as [string, string, string];
    if (channel) {
      if (key === 'State') channel.state = value;
      else if (key === 'Routes') {
        const m = /(\d+) imported, (?:(\d+) filtered, )?(\d+) exported/.exec(value);
        if (m) {
          channel.imported = Number(m[1]);
          channel.exported = Number(m[3]);
        }
      }
      continue;
    }
    const bgp = cur.bgp;
    if (!bgp) continue;
    switch (key) {
      case 'BGP state': bgp.state = value; break;
      case 'Neighbor address': bgp.neighborAddress = value; break;
      case 'Neighbor AS': { const n = num(value); if (n !== undefined) bgp.neighborAs = n; break; }
      case 'Local AS': { const n = num(value); if (n !== undefined) bgp.localAs = n; break; }
      case 'Neighbor ID': bgp.neighborId = value; break;
      case 'Source address': bgp.sourceAddress = value; break;
      case 'Last error': bgp.lastError = value; break;
      case 'Hold timer': { const m = /\/(\d+)$/.exec(value); if (m) bgp.holdTime = Number(m[1]); break; }
      default: break;
    }
  }
  return out;
}

/** `show bfd sessions` (every BFD protocol's table). */
export function parseBfdSessions(text: string, now: Date = new Date()): BfdSession[] {
  const out: BfdSession[] = [];
  for (const line of lines(text)) {
    const t = line.trim().split(/\s+/);
    if (t.length < 4 || t[0] === 'IP' || line.trim().endsWith(':')) continue;
    const [address, iface, state, ...rest] = t as [string, string, string, ...string[]];
    if (!/[.:]/.test(address)) continue;
    const s = splitSince(rest, now);
    const f = (x: string | undefined): number | null => (x !== undefined && /^\d+(\.\d+)?$/.test(x) ? Number(x) : null);
    out.push({ address, interface: iface, state, since: s.since, interval: f(s.rest[0]), timeout: f(s.rest[1]) });
  }
  return out;
}
