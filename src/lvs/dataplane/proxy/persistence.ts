/**
 * Persistence templates, as IPVS persistent services (`persistence_timeout`,
 * `persistence_granularity` in keepalived; ip_vs_sched_persist() in ip_vs_core.c).
 *
 * A template maps (virtual service, client address masked by the granularity) to a real
 * server. While it lives, new connections from that client network go to that server
 * without consulting the scheduler. Each use restarts its timeout (the kernel re-arms the
 * template timer whenever it is used); it expires `timeoutMs` after the last use. The data
 * plane calls `touch` for long-lived connections, standing in for the kernel's rule that a
 * template does not expire while connections it controls are alive.
 *
 * Validity (ip_vs_check_template() in ip_vs_conn.c): a template is honoured while its
 * server is still in the virtual service's destination list, *even at weight 0*. That
 * is deliberate IPVS behaviour: quiescing a server (weight 0, e.g. keepalived
 * inhibit_on_failure) lets persistent clients finish their sessions on it. It is dropped,
 * and a new scheduling decision made, when the server is gone from the list (keepalived
 * removes a failed server unless inhibit_on_failure is set), or, with
 * `expireQuiescentTemplate` (the net.ipv4.vs.expire_quiescent_template sysctl, off by
 * default as in the kernel), when its weight is 0. Consequence worth knowing: with
 * inhibit_on_failure a *failed* server stays in the list at weight 0, so its persistent
 * clients keep being sent to it until their templates expire, unless
 * expireQuiescentTemplate is set. The overload flag does not invalidate a template
 * (the kernel does not check it either).
 */

import { formatAddress, parseAddress } from './sched/common.js';
import type { IpFamily, RealServerRef, ScheduleContext, Scheduler } from './types.js';

export interface PersistenceOptions {
  /** persistence_timeout, in milliseconds (> 0). */
  readonly timeoutMs: number;
  /**
   * persistence_granularity for IPv4: a dotted netmask ("255.255.255.0") or a prefix
   * length. Default /32: one template per client address.
   */
  readonly netmaskV4?: string | number;
  /** Granularity for IPv6 as a prefix length (the kernel takes a length for v6). Default 128. */
  readonly prefixV6?: number;
  /** net.ipv4.vs.expire_quiescent_template: drop templates pointing at weight-0 servers. */
  readonly expireQuiescentTemplate?: boolean;
  /** Injected clock, milliseconds. */
  readonly now: () => number;
}

/** A template as exported for connection synchronisation to the peer director. */
export interface PersistenceEntry {
  /** Virtual service key chosen by the caller (e.g. "tcp/192.0.2.1:443"). */
  readonly vs: string;
  /** The client network: the masked client address in canonical form. */
  readonly client: string;
  readonly family: IpFamily;
  readonly destId: string;
  /**
   * Remaining lifetime. Relative rather than absolute because the two directors' clocks
   * are not synchronised (IPVS sync messages carry a timeout too).
   */
  readonly expiresInMs: number;
}

interface Template {
  vs: string;
  client: string;
  family: IpFamily;
  destId: string;
  expiresAt: number;
}

/** Prefix length of a dotted IPv4 netmask; throws if the mask is not contiguous. */
function netmaskToPrefix(mask: string): number {
  const bytes = parseAddress(mask, 4);
  const value = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const prefix = Math.clz32(~value >>> 0);
  const expected = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if (value !== expected) throw new RangeError(`non-contiguous netmask: ${mask}`);
  return prefix;
}

function checkPrefix(prefix: number, max: number): number {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) {
    throw new RangeError(`prefix length must be an integer in 0..${max}, got ${prefix}`);
  }
  return prefix;
}

/** The client address with all bits past `prefix` cleared, in canonical text form. */
export function maskAddress(address: string, family: IpFamily, prefix: number): string {
  const bytes = parseAddress(address, family);
  for (let bit = prefix; bit < bytes.length * 8; bit++) {
    bytes[bit >> 3] = bytes[bit >> 3]! & ~(0x80 >> (bit & 7));
  }
  return formatAddress(bytes);
}

export class PersistenceTable {
  private readonly templates = new Map<string, Template>();
  private readonly prefixV4: number;
  private readonly prefixV6: number;

  constructor(private readonly options: PersistenceOptions) {
    if (!(options.timeoutMs > 0)) throw new RangeError(`persistence timeout must be > 0, got ${options.timeoutMs}`);
    const v4 = options.netmaskV4 ?? 32;
    this.prefixV4 = typeof v4 === 'number' ? checkPrefix(v4, 32) : netmaskToPrefix(v4);
    this.prefixV6 = checkPrefix(options.prefixV6 ?? 128, 128);
  }

  /**
   * Choose a destination for a new connection: the template's server if there is a valid
   * template, else the scheduler's pick (which then gets a template). Null when there is
   * no valid template and the scheduler finds no destination.
   */
  pick<D extends RealServerRef>(vs: string, dests: readonly D[], ctx: ScheduleContext, scheduler: Scheduler): D | null {
    const now = this.options.now();
    const client = this.clientNet(ctx.clientAddress, ctx.family);
    const key = templateKey(vs, client);
    const t = this.live(key, now);
    if (t) {
      const dest = dests.find((d) => d.id === t.destId);
      if (dest && !(this.options.expireQuiescentTemplate && dest.weight === 0)) {
        t.expiresAt = now + this.options.timeoutMs;
        return dest;
      }
      this.templates.delete(key);
    }
    const dest = scheduler.pick(dests, ctx);
    if (dest) {
      this.templates.set(key, { vs, client, family: ctx.family, destId: dest.id, expiresAt: now + this.options.timeoutMs });
    }
    return dest;
  }

  /** The server a client is currently bound to, if any (no refresh, no validity check). */
  lookup(vs: string, clientAddress: string, family: IpFamily): string | undefined {
    const key = templateKey(vs, this.clientNet(clientAddress, family));
    return this.live(key, this.options.now())?.destId;
  }

  /** Restart a template's timeout (a connection it controls is still active). */
  touch(vs: string, clientAddress: string, family: IpFamily): boolean {
    const now = this.options.now();
    const t = this.live(templateKey(vs, this.clientNet(clientAddress, family)), now);
    if (t) t.expiresAt = now + this.options.timeoutMs;
    return t !== undefined;
  }

  /** Drop every template of a virtual service pointing at `destId` (e.g. server deleted). */
  forgetDest(vs: string, destId: string): number {
    let n = 0;
    for (const [k, t] of this.templates) {
      if (t.vs === vs && t.destId === destId) {
        this.templates.delete(k);
        n++;
      }
    }
    return n;
  }

  /** Remove expired templates; returns how many. Call periodically to bound memory. */
  sweep(): number {
    const now = this.options.now();
    let n = 0;
    for (const [k, t] of this.templates) {
      if (t.expiresAt <= now) {
        this.templates.delete(k);
        n++;
      }
    }
    return n;
  }

  /** Live templates, for synchronisation to the peer. */
  entries(): PersistenceEntry[] {
    const now = this.options.now();
    const out: PersistenceEntry[] = [];
    for (const t of this.templates.values()) {
      if (t.expiresAt > now) {
        out.push({ vs: t.vs, client: t.client, family: t.family, destId: t.destId, expiresInMs: t.expiresAt - now });
      }
    }
    return out;
  }

  /**
   * Install a template received from the peer. The client is re-masked with our own
   * granularity (identical config on both directors makes this a no-op). The server is
   * not checked here: the peer may know servers our pool has not listed yet, and validity
   * is checked on use anyway. The peer is authoritative (it is the director that
   * scheduled the client), so an existing template for the same client is replaced. The
   * lifetime is capped at our own timeout.
   */
  restore(entry: PersistenceEntry): void {
    if (!(entry.expiresInMs > 0)) return;
    const now = this.options.now();
    const client = this.clientNet(entry.client, entry.family);
    const key = templateKey(entry.vs, client);
    const expiresAt = now + Math.min(entry.expiresInMs, this.options.timeoutMs);
    this.templates.set(key, { vs: entry.vs, client, family: entry.family, destId: entry.destId, expiresAt });
  }

  get size(): number {
    return this.templates.size;
  }

  private clientNet(address: string, family: IpFamily): string {
    return maskAddress(address, family, family === 4 ? this.prefixV4 : this.prefixV6);
  }

  private live(key: string, now: number): Template | undefined {
    const t = this.templates.get(key);
    if (t && t.expiresAt <= now) {
      this.templates.delete(key);
      return undefined;
    }
    return t;
  }
}

function templateKey(vs: string, client: string): string {
  return `${vs}\u0000${client}`;
}
