/**
 * A set of addresses, routes and policy rules put into the kernel together and taken out together:
 * an instance's virtual_routes / virtual_rules (in while MASTER) and the static_ipaddress /
 * static_routes / static_rules of the config (in from start to stop). Shell over rtnl; every change
 * is queued on one chain, so install / remove / update never interleave, and nothing here throws at
 * its caller: an entry the kernel refuses is logged, counted and skipped (the others still go in),
 * as keepalived does.
 *
 * Order, as keepalived's: addresses, then routes (a route's `src` or `via` may need an address),
 * then rules; removal in the reverse order.
 */
import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.js';
import type { Rtnl } from './rtnl.js';
import type { AddressSpec, RouteSpec, RuleSpec } from './route-spec.js';

export type RouteSetRtnl = Pick<Rtnl, 'getLink' | 'addRoute' | 'deleteRoute' | 'addRule' | 'deleteRule' | 'addStaticAddress' | 'deleteAddress'>;

export interface RouteSetEntries {
  addresses?: readonly AddressSpec[];
  routes?: readonly RouteSpec[];
  rules?: readonly RuleSpec[];
}

interface Lists {
  addresses: readonly AddressSpec[];
  routes: readonly RouteSpec[];
  rules: readonly RuleSpec[];
}

/** Every field but the text: an entry edited in any way is a different entry. */
const fullKey = (x: { text: string }): string => JSON.stringify({ ...x, text: undefined });

export class RouteSet {
  #addresses: AddressSpec[];
  #routes: RouteSpec[];
  #rules: RuleSpec[];
  #installed = false;
  #failures = 0;
  #chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly rtnl: RouteSetRtnl,
    private readonly log: Logger,
    /** Who owns the set, for logs ("vrrp_instance VI_1", "static"). */
    private readonly owner: string,
    entries: RouteSetEntries = {},
  ) {
    this.#addresses = [...(entries.addresses ?? [])];
    this.#routes = [...(entries.routes ?? [])];
    this.#rules = [...(entries.rules ?? [])];
  }

  get installed(): boolean {
    return this.#installed;
  }

  /** Entries the kernel refused so far (install, remove or update). */
  get failures(): number {
    return this.#failures;
  }

  get empty(): boolean {
    return this.#addresses.length + this.#routes.length + this.#rules.length === 0;
  }

  #run(step: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(step, step);
    this.#chain = next.catch(() => undefined);
    return next;
  }

  /** Puts every entry in (those already there are fine). */
  install(): Promise<void> {
    return this.#run(async () => {
      this.#installed = true;
      await this.#add({ addresses: this.#addresses, routes: this.#routes, rules: this.#rules });
    });
  }

  /** Takes every entry out (those already gone are fine). */
  remove(): Promise<void> {
    return this.#run(async () => {
      this.#installed = false;
      await this.#delete({ addresses: this.#addresses, routes: this.#routes, rules: this.#rules });
    });
  }

  /**
   * Reload: the new entries. While installed, only the difference is applied: entries in both sets
   * are never touched (no blip in forwarding).
   */
  update(next: RouteSetEntries): Promise<void> {
    return this.#run(async () => {
      const addresses = [...(next.addresses ?? [])];
      const routes = [...(next.routes ?? [])];
      const rules = [...(next.rules ?? [])];
      const gone = { addresses: minus(this.#addresses, addresses), routes: minus(this.#routes, routes), rules: minus(this.#rules, rules) };
      const fresh = { addresses: minus(addresses, this.#addresses), routes: minus(routes, this.#routes), rules: minus(rules, this.#rules) };
      this.#addresses = addresses;
      this.#routes = routes;
      this.#rules = rules;
      if (!this.#installed) return;
      await this.#delete(gone);
      await this.#add(fresh);
    });
  }

  /** The ifindex of `dev`; null when it does not exist (counted as a failure unless `quiet`). */
  async #ifindex(dev: string | undefined, what: string, quiet = false): Promise<number | undefined | null> {
    if (dev === undefined) return undefined;
    try {
      return (await this.rtnl.getLink(dev)).index;
    } catch (err) {
      if (!quiet) this.#fail(`${what}: no interface ${dev}`, err);
      return null;
    }
  }

  async #add(e: Lists): Promise<void> {
    for (const a of e.addresses) {
      const index = await this.#ifindex(a.dev, `static_ipaddress ${a.text}`);
      if (index === null || index === undefined) continue;
      await this.rtnl.addStaticAddress(index, a).catch((err: unknown) => this.#fail(`add address ${a.text}`, err));
    }
    for (const r of e.routes) {
      const oif = await this.#ifindex(r.dev, `route ${r.text}`);
      if (oif === null) continue;
      await this.rtnl.addRoute(r, oif).catch((err: unknown) => this.#fail(`add route ${r.text}`, err));
    }
    for (const r of e.rules) await this.rtnl.addRule(r).catch((err: unknown) => this.#fail(`add rule ${r.text}`, err));
  }

  async #delete(e: Lists): Promise<void> {
    for (const r of e.rules) await this.rtnl.deleteRule(r).catch((err: unknown) => this.#fail(`delete rule ${r.text}`, err));
    for (const r of e.routes) {
      // A device that is gone took its routes with it.
      const oif = await this.#ifindex(r.dev, `route ${r.text}`, true);
      if (oif === null) continue;
      await this.rtnl.deleteRoute(r, oif).catch((err: unknown) => this.#fail(`delete route ${r.text}`, err));
    }
    for (const a of e.addresses) {
      const index = await this.#ifindex(a.dev, `static_ipaddress ${a.text}`, true);
      if (index === null || index === undefined) continue;
      await this.rtnl.deleteAddress(index, `${a.address}/${a.prefix}`).catch((err: unknown) => this.#fail(`delete address ${a.text}`, err));
    }
  }

  #fail(what: string, err: unknown): void {
    this.#failures++;
    this.log.error({ owner: this.owner, err: errorMessage(err) }, `${this.owner}: cannot ${what}`);
  }
}

function minus<T extends { text: string }>(a: readonly T[], b: readonly T[]): T[] {
  const keys = new Set(b.map(fullKey));
  return a.filter((x) => !keys.has(fullKey(x)));
}
