/**
 * Which service addresses this director announces by BGP, and why (pure; MetalLB's "speaker"
 * decision without the speaker). From the config and the current facts it computes, per address:
 *
 *   serve     the data plane should serve the address's services (rules in place / sockets bound)
 *   announce  the host route is in the kernel table BIRD learns from, so the router sends traffic here
 *
 * Rules (docs/bgp.md):
 * - An address is announced in the mode of its virtual servers (`announce`, resolved at config load:
 *   "master" when a vrrp_instance holds the address, "healthy" when none does; "never" does not vote).
 * - "healthy": wanted while EVERY announcing virtual server on the address has quorum. A director
 *   that cannot serve one port of an address must not attract the address's traffic: the other
 *   directors can.
 * - "master": wanted while the vrrp_instance holding the address is MASTER with its VIPs in place.
 * - Never while stopping (graceful stop withdraws first, then drains) or while a tracked interface
 *   has no link. A graceful stop has two phases: "healthy" addresses go at once; "master" ones stay
 *   until the VRRP peer has taken over (it announces them then), and go before the drain.
 * - `serve` (for "healthy" addresses: nothing else decides who serves an address no VRRP instance
 *   holds) = quorum; "master" addresses are served by VRRP ownership as before. Stopping and link
 *   loss do not unserve: the stop sequence drains after the withdrawal.
 * - `announce` = wanted AND every announcing virtual server on the address is being served: the
 *   route goes in only after the data plane is ready. The caller deletes routes before it unserves.
 */
import type { ServiceKey } from '../util/endpoint.js';
import type { AnnounceMode, Config } from '../config/types.js';

/** Why an address is not announced; a stable word for metrics (the text says more). */
export type WithdrawKind = 'stopping' | 'link' | 'quorum' | 'vrrp' | 'not_serving' | 'removed';

export const WITHDRAW_KINDS: readonly WithdrawKind[] = ['stopping', 'link', 'quorum', 'vrrp', 'not_serving', 'removed'];

export type StopPhase = 'no' | 'healthy' | 'all';

export interface ServiceFacts {
  /** The pool has quorum (src/lvs/pool.ts). */
  quorum: boolean;
  /** The data plane serves it now. */
  serving: boolean;
}

export interface AnnounceFacts {
  /** Per virtual server (serviceKey of the config); a missing entry counts as no quorum, not serving. */
  services: ReadonlyMap<ServiceKey, ServiceFacts>;
  /** VRRP instances that are MASTER with their VIPs in place. */
  masters: ReadonlySet<string>;
  /** Graceful stop: 'healthy' withdraws the "healthy" addresses, 'all' every address. */
  stopping: StopPhase;
  /** Tracked interfaces without link now. */
  linksDown: readonly string[];
}

export interface PrefixDecision {
  /** "10.99.0.10/32", "fd99::10/128". */
  prefix: string;
  address: string;
  family: 4 | 6;
  mode: Exclude<AnnounceMode, 'never'>;
  /** Virtual servers that vote, as service keys. */
  services: ServiceKey[];
  serve: boolean;
  announce: boolean;
  /** undefined when announced. */
  withdrawKind?: WithdrawKind;
  /** "announced: quorum on tcp/10.99.0.10:80" / "withdrawn: quorum lost on tcp/10.99.0.10:80". */
  reason: string;
}

export function hostPrefix(address: string, family: 4 | 6): string {
  return `${address}/${family === 4 ? 32 : 128}`;
}

interface Group {
  address: string;
  family: 4 | 6;
  mode: Exclude<AnnounceMode, 'never'>;
  services: ServiceKey[];
  /** VRRP instances holding the address ("master" mode). */
  holders: string[];
}

/** Addresses with at least one announcing virtual server, in config order. */
function groups(config: Pick<Config, 'virtual_server' | 'vrrp_instance' | 'bgp'>): Group[] {
  if (!config.bgp) return [];
  const out = new Map<string, Group>();
  for (const vs of config.virtual_server) {
    if (vs.announce === 'never') continue;
    // Each service on an address votes: the virtual server's own, or every member of its group
    // (fwmark services and members have no address and are not announced; semantic.ts).
    for (const { key, match } of vs.members) {
      if (match.kind !== 'addr') continue;
      const address = match.address;
      let g = out.get(address);
      if (!g) {
        const holders = config.vrrp_instance
          .filter((vi) => [...vi.virtual_ipaddress_parsed, ...vi.virtual_ipaddress_excluded_parsed].some((v) => v.address === address))
          .map((vi) => vi.name);
        g = { address, family: match.family, mode: vs.announce, services: [], holders };
        out.set(address, g);
      }
      g.services.push(key);
    }
  }
  return [...out.values()];
}

/** The decision for every announced address of the config. */
export function decideAnnouncements(config: Pick<Config, 'virtual_server' | 'vrrp_instance' | 'bgp'>, facts: AnnounceFacts): PrefixDecision[] {
  return groups(config).map((g) => decide(g, facts));
}

function decide(g: Group, facts: AnnounceFacts): PrefixDecision {
  const base = { prefix: hostPrefix(g.address, g.family), address: g.address, family: g.family, mode: g.mode, services: g.services };
  const fact = (k: ServiceKey): ServiceFacts => facts.services.get(k) ?? { quorum: false, serving: false };
  const lost = g.mode === 'healthy' ? g.services.filter((k) => !fact(k).quorum) : [];
  // Serving follows quorum only ("master" addresses: VRRP ownership, decided by the caller). Stopping
  // and link loss withdraw the route but leave serving alone: the stop sequence drains after the
  // withdrawal, and a link that comes back finds the service still in place.
  const serve = g.mode === 'healthy' && lost.length === 0;
  const withdrawn = (kind: WithdrawKind, why: string): PrefixDecision => ({ ...base, serve, announce: false, withdrawKind: kind, reason: `withdrawn: ${why}` });

  if (facts.stopping === 'all' || (facts.stopping === 'healthy' && g.mode === 'healthy')) return withdrawn('stopping', 'stopping');
  if (facts.linksDown.length > 0) return withdrawn('link', `no link on ${facts.linksDown.join(', ')}`);
  if (lost.length > 0) return withdrawn('quorum', `no quorum on ${lost.join(', ')}`);
  const masters = g.holders.filter((h) => facts.masters.has(h));
  if (g.mode === 'master' && masters.length === 0) return withdrawn('vrrp', `vrrp_instance ${g.holders.join(', ')} is not MASTER`);
  const idle = g.services.filter((k) => !fact(k).serving);
  if (idle.length > 0) return withdrawn('not_serving', `not serving ${idle.join(', ')} yet`);
  const why = g.mode === 'healthy' ? `quorum on ${g.services.join(', ')}` : `vrrp_instance ${masters.join(', ')} is MASTER`;
  return { ...base, serve, announce: true, reason: `announced: ${why}` };
}

/**
 * Whether this director serves `address`: for an address announced in "healthy" mode, the
 * decision's `serve`; otherwise undefined (the caller falls back to VRRP ownership, and to "always"
 * for addresses no instance holds and nothing announces).
 */
export function serveDecision(decisions: readonly PrefixDecision[], address: string): boolean | undefined {
  const d = decisions.find((x) => x.address === address);
  return d && d.mode === 'healthy' ? d.serve : undefined;
}
