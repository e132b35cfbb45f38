/**
 * The route announcer (shell): keeps exactly the wanted host routes in the kernel table BIRD learns
 * from, `DST dev lo table <kernel_table> proto <kernel_protocol>`, through rtnetlink (never `ip`).
 * Each apply() reconciles against a fresh dump of that table, so routes someone else deleted come
 * back and routes a crashed run left behind go; applies run one at a time, in call order.
 */
import type { Logger } from 'pino';
import type { HostRoute, Rtnl } from '../net/rtnl.js';
import { errorMessage } from '../util/errors.js';

export interface RouteTarget {
  /** "10.99.0.10/32", "fd99::10/128". */
  prefix: string;
  family: 4 | 6;
}

export class RouteAnnouncer {
  #queue: Promise<unknown> = Promise.resolve();
  #lo: number | undefined;

  constructor(
    private readonly rtnl: Pick<Rtnl, 'addRoute' | 'deleteRoute' | 'listRoutes' | 'getLink'>,
    private readonly table: number,
    private readonly protocol: number,
    private readonly log: Logger,
  ) {}

  /** Makes the table hold exactly `wanted` (of our protocol number). Deletions go first. */
  apply(wanted: readonly RouteTarget[]): Promise<{ added: string[]; removed: string[] }> {
    const run = this.#queue.then(() => this.#apply(wanted));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply(wanted: readonly RouteTarget[]): Promise<{ added: string[]; removed: string[] }> {
    this.#lo ??= (await this.rtnl.getLink('lo')).index;
    const lo = this.#lo;
    const have = await this.rtnl.listRoutes({ table: this.table, protocol: this.protocol });
    const want = new Set(wanted.map((w) => w.prefix));
    const haveSet = new Set(have.map((r) => r.dst));
    const removed: string[] = [];
    const added: string[] = [];
    for (const r of have) {
      if (want.has(r.dst)) continue;
      try {
        await this.rtnl.deleteRoute(r);
        removed.push(r.dst);
      } catch (err) {
        this.log.error({ prefix: r.dst, err: errorMessage(err) }, 'cannot delete the announcement route');
      }
    }
    for (const w of wanted) {
      if (haveSet.has(w.prefix)) continue;
      const route: HostRoute = { family: w.family, dst: w.prefix, table: this.table, protocol: this.protocol, ifindex: lo };
      try {
        await this.rtnl.addRoute(route);
        added.push(w.prefix);
      } catch (err) {
        this.log.error({ prefix: w.prefix, err: errorMessage(err) }, 'cannot add the announcement route');
      }
    }
    if (removed.length > 0 || added.length > 0) this.log.info({ added, removed, table: this.table }, 'announcement routes changed');
    return { added, removed };
  }
}
