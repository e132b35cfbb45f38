/**
 * Owns the virtual IP addresses of one VRRP instance on one interface. While acquired (MASTER),
 * it listens for address notifications and puts back a VIP that something else removed — an
 * operator's `ip addr del`, NetworkManager, or the kernel flushing IPv6 addresses on link down —
 * counting each restoration.
 */
import { parseCidr, type AddAddressOptions, type AddressEvent, type Rtnl, type RtnlWatcher } from './rtnl.js';

/** The part of Rtnl a VipManager needs (lets unit tests substitute an in-memory kernel). */
export type VipRtnl = Pick<Rtnl, 'listAddresses' | 'addAddress' | 'deleteAddress' | 'watch'> & Partial<Pick<Rtnl, 'addAddressRequest'>>;

export interface VipManagerOptions {
  /** IPv4 label for the VIPs (keepalived's `label`). */
  label?: string;
  onRestored?: (vip: string) => void;
  /** Errors raised in the background (restoring a VIP); acquire/release reject instead. */
  onError?: (err: unknown) => void;
}

interface Vip {
  cidr: string;
  key: string;
}

function toVips(vips: readonly string[]): Vip[] {
  return vips.map((v) => {
    const { address, prefix } = parseCidr(v);
    return { cidr: `${address}/${prefix}`, key: `${address}/${prefix}` };
  });
}

export class VipManager {
  readonly #rtnl: VipRtnl;
  readonly #ifindex: number;
  #vips: Vip[];
  readonly #opts: VipManagerOptions;
  #acquired = false;
  #watcher: RtnlWatcher | undefined;
  #restored = 0;
  // Every state change runs on this chain, so acquire/release/restore never interleave.
  #chain: Promise<void> = Promise.resolve();
  /** addRequests() of the current VIP list. */
  #requests: { vips: Vip[]; value: { nl: Buffer; count: number } } | undefined;

  constructor(rtnl: VipRtnl, ifindex: number, vips: readonly string[], opts: VipManagerOptions = {}) {
    this.#rtnl = rtnl;
    this.#ifindex = ifindex;
    this.#opts = opts;
    this.#vips = toVips(vips);
  }

  /**
   * Changes the VIP set (reload). While acquired, only the difference is applied: new VIPs are
   * added, dropped ones removed, and the ones in both sets are never touched.
   */
  update(vips: readonly string[]): Promise<void> {
    const next = toVips(vips);
    return this.#run(async () => {
      const before = new Set(this.#vips.map((v) => v.key));
      const after = new Set(next.map((v) => v.key));
      const removed = this.#vips.filter((v) => !after.has(v.key));
      this.#vips = next;
      if (!this.#acquired) return;
      for (const v of next) if (!before.has(v.key)) await this.#rtnl.addAddress(this.#ifindex, v.cidr, this.#addOptions());
      for (const v of removed) await this.#rtnl.deleteAddress(this.#ifindex, v.cidr);
    });
  }

  get acquired(): boolean {
    return this.#acquired;
  }

  /** VIPs put back after someone else removed them while acquired. */
  get restored(): number {
    return this.#restored;
  }

  #run(step: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(step);
    this.#chain = next.catch(() => undefined);
    return next;
  }

  #background(step: () => Promise<void>): void {
    this.#run(step).catch((err: unknown) => this.#opts.onError?.(err));
  }

  /** Adds the VIPs that are missing and starts guarding them. Idempotent. */
  acquire(): Promise<void> {
    return this.#run(async () => {
      if (this.#acquired) return;
      // Subscribe before listing, so a removal racing with the initial sync is not missed.
      const watcher = this.#rtnl.watch();
      watcher.on('address', (ev) => this.#onAddress(ev));
      watcher.on('error', () => this.#background(() => this.#sync(true)));
      this.#watcher = watcher;
      this.#acquired = true;
      try {
        // On takeover every millisecond counts: add straight away (an address that is already there
        // is not an error) instead of dumping the interface's addresses first.
        for (const vip of this.#vips) await this.#rtnl.addAddress(this.#ifindex, vip.cidr, this.#addOptions());
      } catch (err) {
        this.#acquired = false;
        this.#watcher = undefined;
        watcher.close();
        throw err;
      }
    });
  }

  /**
   * The rtnetlink requests acquire() makes (one per VIP, concatenated), for the advert sender thread
   * to add the VIPs of a takeover before the event loop can (acquire() then finds them: EEXIST is
   * fine). undefined when this rtnl cannot build them.
   */
  addRequests(): { nl: Buffer; count: number } | undefined {
    const build = this.#rtnl.addAddressRequest?.bind(this.#rtnl);
    if (!build || this.#vips.length === 0) return undefined;
    if (this.#requests?.vips !== this.#vips) {
      const nl = Buffer.concat(this.#vips.map((v, i) => build(this.#ifindex, v.cidr, this.#addOptions(), i + 1)));
      this.#requests = { vips: this.#vips, value: { nl, count: this.#vips.length } };
    }
    return this.#requests.value;
  }

  /** Stops guarding and removes every VIP (missing ones are fine). Idempotent. */
  release(): Promise<void> {
    return this.#run(async () => {
      this.#acquired = false;
      const watcher = this.#watcher;
      this.#watcher = undefined;
      watcher?.close();
      for (const vip of this.#vips) await this.#rtnl.deleteAddress(this.#ifindex, vip.cidr);
    });
  }

  #addOptions(): AddAddressOptions {
    return this.#opts.label === undefined ? {} : { label: this.#opts.label };
  }

  async #sync(countAsRestored: boolean): Promise<void> {
    if (!this.#acquired) return;
    const present = new Set((await this.#rtnl.listAddresses(this.#ifindex)).map((a) => `${a.address}/${a.prefix}`));
    for (const vip of this.#vips) {
      if (present.has(vip.key)) continue;
      await this.#rtnl.addAddress(this.#ifindex, vip.cidr, this.#addOptions());
      if (countAsRestored) this.#noteRestored(vip);
    }
  }

  #onAddress(ev: AddressEvent): void {
    if (!ev.removed || ev.index !== this.#ifindex || !this.#acquired) return;
    const key = `${ev.address}/${ev.prefix}`;
    const vip = this.#vips.find((v) => v.key === key);
    if (!vip) return;
    this.#background(async () => {
      if (!this.#acquired) return;
      await this.#rtnl.addAddress(this.#ifindex, vip.cidr, this.#addOptions());
      this.#noteRestored(vip);
    });
  }

  #noteRestored(vip: Vip): void {
    this.#restored++;
    this.#opts.onRestored?.(vip.cidr);
  }
}
