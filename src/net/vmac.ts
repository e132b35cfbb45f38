/**
 * keepalived's use_vmac: the instance runs on a macvlan of its interface that carries the RFC 5798
 * virtual router MAC (00:00:5e:00:01:VRID for IPv4, 00:00:5e:00:02:VRID for IPv6), as keepalived's
 * vrrp_vmac.c does and FRR's vrrpd expects:
 *   - a macvlan in private mode (a frame whose source MAC is ours, i.e. the peer MASTER's adverts
 *     sent from the same virtual MAC, is handed to the macvlan only, which is why adverts are also
 *     received there), created down, IPv6 address generation off, then brought up;
 *   - sysctls: on the macvlan arp_ignore=1, and for IPv4 accept_local=1, rp_filter=0,
 *     promote_secondaries=1, IPv6 disabled; on the base interface (IPv4) arp_ignore=1 and
 *     arp_filter=1, put back as they were when the last macvlan on it goes;
 *   - IPv6 (unless vmac_xmit_base): the base interface's link-local address is added to the
 *     macvlan, so adverts leave from a non-VIP address with the virtual MAC.
 * The VIPs go on the macvlan (so ARP/ND answers and GARPs carry the virtual MAC); adverts are sent
 * and received on it unless vmac_xmit_base. Everything goes through rtnetlink and /proc/sys, both
 * asynchronous: the VRRP event loop never waits on a child process.
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { errorMessage, KeepaliveError } from '../util/errors.js';
import type { Family, LinkDetails, LinkInfo, Rtnl } from './rtnl.js';

/** The virtual router MAC of RFC 5798 section 7.3. */
export function vmacAddress(vrid: number, family: Family): string {
  if (!Number.isInteger(vrid) || vrid < 1 || vrid > 255) throw new RangeError(`VRID must be 1..255, got ${vrid}`);
  return `00:00:5e:00:0${family === 4 ? 1 : 2}:${vrid.toString(16).padStart(2, '0')}`;
}

/** Whether `mac` is a VRRP virtual router MAC (either family), and of which VRID. */
export function vmacVrid(mac: string): { vrid: number; family: Family } | null {
  const m = /^00:00:5e:00:0([12]):([0-9a-f]{2})$/i.exec(mac);
  if (!m) return null;
  const vrid = parseInt(m[2]!, 16);
  return vrid === 0 ? null : { vrid, family: m[1] === '1' ? 4 : 6 };
}

export interface SysctlSetting {
  /** Path under /proc/sys, e.g. "net/ipv4/conf/vrrp.51/arp_ignore". */
  path: string;
  value: number;
}

/** What keepalived sets on a new VMAC (vrrp_if_config.c), in order. */
export function vmacSysctls(vmac: string, family: Family): SysctlSetting[] {
  const conf = (key: string, value: number): SysctlSetting => ({ path: `net/ipv4/conf/${vmac}/${key}`, value });
  if (family === 6) return [conf('arp_ignore', 1)];
  return [
    conf('arp_ignore', 1),
    conf('accept_local', 1),
    conf('rp_filter', 0),
    conf('promote_secondaries', 1),
    // keepalived turns IPv6 off on an IPv4 VMAC: no link-local, no ND from the virtual MAC.
    { path: `net/ipv6/conf/${vmac}/disable_ipv6`, value: 1 },
  ];
}

/**
 * What the base interface of an IPv4 VMAC needs (restored when the last VMAC goes): keepalived's
 * arp_ignore=1 and arp_filter=1 (only the VMAC answers ARP for the VIPs), plus arp_announce=2, which
 * keepalived does not set: replies from a VIP leave through the base interface (its connected route
 * comes first), and without it the ARP request the kernel sends there for the client says "VIP is at
 * <base MAC>", moving the client's neighbour entry off the virtual MAC. With 2 such requests carry
 * the base interface's own address instead.
 */
export function baseSysctls(base: string, family: Family): SysctlSetting[] {
  if (family === 6) return [];
  return [
    { path: `net/ipv4/conf/${base}/arp_ignore`, value: 1 },
    { path: `net/ipv4/conf/${base}/arp_filter`, value: 1 },
    { path: `net/ipv4/conf/${base}/arp_announce`, value: 2 },
  ];
}

/**
 * Whether an existing link looks like a VMAC we (or keepalived) left behind: a private-mode
 * macvlan carrying a virtual router MAC and named like a default VMAC (vrrp.N / vrrp6.N) or like
 * one of the names configured now. FRR's macvlans (bridge mode) and anything else are never touched.
 */
export function isStaleVmac(link: LinkDetails, configuredNames: ReadonlySet<string>, inUse: ReadonlySet<string>): boolean {
  if (inUse.has(link.name)) return false;
  if (link.kind !== 'macvlan' || link.macvlanMode !== 'private' || vmacVrid(link.mac) === null) return false;
  return configuredNames.has(link.name) || /^vrrp6?\.\d{1,3}$/.test(link.name);
}

export type VmacRtnl = Pick<Rtnl, 'linkDetails' | 'listLinkDetails' | 'createMacvlan' | 'deleteLink' | 'setLinkUp' | 'setAddrGenModeNone' | 'addAddress' | 'getLink'>;

export interface SysctlIo {
  read(path: string): Promise<number | null>;
  write(path: string, value: number): Promise<void>;
}

export const procSysctl: SysctlIo = {
  async read(path) {
    try {
      const n = Number((await readFile(`/proc/sys/${path}`, 'utf8')).trim());
      return Number.isFinite(n) ? n : null;
    } catch {
      return null;
    }
  },
  async write(path, value) {
    await writeFile(`/proc/sys/${path}`, `${value}\n`);
  },
};

export interface VmacRequest {
  name: string;
  base: LinkInfo;
  vrid: number;
  family: Family;
  xmitBase: boolean;
  /** IPv6 only: the base interface's link-local address (added to the VMAC unless xmitBase). */
  linkLocal?: string | null;
}

/** Creates, reuses and removes VMACs; restores base-interface sysctls when the last one goes. */
export class VmacManager {
  /** Base interface name -> original values of the sysctls we changed, and how many VMACs rely on them. */
  readonly #bases = new Map<string, { saved: SysctlSetting[]; users: number }>();
  /** VMAC name -> its base interface name (for the sysctl refcount). */
  readonly #ours = new Map<string, { base: string; family: Family; index: number }>();

  constructor(
    private readonly rtnl: VmacRtnl,
    private readonly log: Logger,
    private readonly sysctl: SysctlIo = procSysctl,
  ) {}

  get names(): string[] {
    return [...this.#ours.keys()];
  }

  /**
   * Deletes VMACs left by a previous run that died (isStaleVmac), except those in `keep` (they are
   * reused by ensure). Returns the names deleted.
   */
  async sweepStale(configuredNames: ReadonlySet<string>, keep: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const link of await this.rtnl.listLinkDetails()) {
      if (!isStaleVmac(link, configuredNames, new Set([...keep, ...this.#ours.keys()]))) continue;
      await this.rtnl.deleteLink(link.index);
      removed.push(link.name);
    }
    if (removed.length > 0) this.log.info({ vmacs: removed }, 'removed VMAC interfaces left by a previous run');
    return removed;
  }

  /** Makes the VMAC exist as requested (reusing a correct leftover) and returns it, up. */
  async ensure(req: VmacRequest): Promise<LinkInfo> {
    const mac = vmacAddress(req.vrid, req.family);
    const existing = await this.rtnl.linkDetails(req.name);
    let created = false;
    if (existing) {
      const ours = existing.kind === 'macvlan' && existing.parentIndex === req.base.index && existing.mac === mac && existing.macvlanMode === 'private';
      if (!ours) {
        if (existing.kind !== 'macvlan') {
          throw new KeepaliveError('E_NETLINK', `use_vmac: interface ${req.name} exists and is not a macvlan; refusing to touch it`);
        }
        this.log.info({ vmac: req.name }, `removing macvlan ${req.name}: wrong base, MAC or mode for this instance`);
        await this.rtnl.deleteLink(existing.index);
      }
      created = !ours;
    } else created = true;
    if (created) await this.rtnl.createMacvlan({ name: req.name, parentIndex: req.base.index, mac, mode: 'private' });
    const link = await this.rtnl.getLink(req.name);
    this.#ours.set(req.name, { base: req.base.name, family: req.family, index: link.index });
    try {
      await this.rtnl.setAddrGenModeNone(link.index);
      for (const s of vmacSysctls(req.name, req.family)) await this.#set(s);
      await this.#holdBase(req.base.name, req.family);
      await this.rtnl.setLinkUp(link.index, true);
      if (req.family === 6 && !req.xmitBase) {
        if (!req.linkLocal) throw new KeepaliveError('E_NETLINK', `use_vmac: ${req.base.name} has no IPv6 link-local address to give ${req.name}`);
        await this.rtnl.addAddress(link.index, `${req.linkLocal}/64`, { noDad: true });
      }
    } catch (err) {
      await this.remove(req.name).catch(() => undefined);
      throw err;
    }
    this.log.info({ vmac: req.name, base: req.base.name, mac, reused: !created }, `VMAC ${req.name} on ${req.base.name} with ${mac}`);
    return this.rtnl.getLink(link.index);
  }

  /** Deletes a VMAC this manager set up; the last one on a base interface restores its sysctls. */
  async remove(name: string): Promise<void> {
    const v = this.#ours.get(name);
    if (!v) return;
    this.#ours.delete(name);
    await this.rtnl.deleteLink(v.index);
    await this.#releaseBase(v.base, v.family);
  }

  /** Removes every VMAC (daemon stop). Errors are logged, never thrown: stop must finish. */
  async removeAll(): Promise<void> {
    for (const name of [...this.#ours.keys()]) {
      await this.remove(name).catch((err: unknown) => this.log.warn({ vmac: name, err: errorMessage(err) }, 'cannot remove VMAC'));
    }
  }

  async #set(s: SysctlSetting): Promise<void> {
    try {
      await this.sysctl.write(s.path, s.value);
    } catch (err) {
      // A missing knob (IPv6 disabled in the kernel) is not fatal; say so once.
      this.log.warn({ sysctl: s.path, value: s.value, err: errorMessage(err) }, 'cannot set sysctl for VMAC');
    }
  }

  async #holdBase(base: string, family: Family): Promise<void> {
    const settings = baseSysctls(base, family);
    if (settings.length === 0) return;
    const held = this.#bases.get(base);
    if (held) {
      held.users++;
      return;
    }
    const saved: SysctlSetting[] = [];
    for (const s of settings) {
      const before = await this.sysctl.read(s.path);
      if (before !== null && before !== s.value) saved.push({ path: s.path, value: before });
      await this.#set(s);
    }
    this.#bases.set(base, { saved, users: 1 });
  }

  async #releaseBase(base: string, family: Family): Promise<void> {
    if (baseSysctls(base, family).length === 0) return;
    const held = this.#bases.get(base);
    if (!held || --held.users > 0) return;
    this.#bases.delete(base);
    for (const s of held.saved) await this.#set(s);
  }
}
