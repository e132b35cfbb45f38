/**
 * The route announcer (shell): keeps exactly the wanted host routes in the kernel table BIRD learns
 * from, `DST dev lo table <kernel_table> proto <kernel_protocol>`, through rtnetlink (never `ip`).
 * Each apply() reconciles against a fresh dump of that table, so routes someone else deleted come
 * back and routes a crashed run left behind go; applies run one at a time, in call order.
 */
import type { Logger } from 'pino';
import type { Rtnl } from '../net/rtnl.js';
import type { RouteSpec } from '../net/route-spec.js';
import { parseCidr } from '../config/net.js';
import { errorMessage } from '../util/errors.js';

const RT_SCOPE_LINK = 253;

/** The host route as the route-spec vocabulary rtnl's addRoute/deleteRoute speak. */
function spec(prefix: string, table: number, protocol: number): RouteSpec {
  const dst = parseCidr(prefix);
  if (!dst) throw new Error(`bad prefix ${prefix}`);
  return { text: `${prefix} dev lo table ${table} proto ${protocol}`, family: dst.family, type: 'unicast', dst, dev: 'lo', table, scope: RT_SCOPE_LINK, protocol, onlink: false, mode: 'add' };
}

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
        await this.rtnl.deleteRoute(spec(r.dst, this.table, this.protocol), r.ifindex);
        removed.push(r.dst);
      } catch (err) {
        this.log.error({ prefix: r.dst, err: errorMessage(err) }, 'cannot delete the announcement route');
      }
    }
    for (const w of wanted) {
      if (haveSet.has(w.prefix)) continue;
      try {
        await this.rtnl.addRoute(spec(w.prefix, this.table, this.protocol), lo);
        added.push(w.prefix);
      } catch (err) {
        this.log.error({ prefix: w.prefix, err: errorMessage(err) }, 'cannot add the announcement route');
      }
    }
    if (removed.length > 0 || added.length > 0) this.log.info({ added, removed, table: this.table }, 'announcement routes changed');
    return { added, removed };
  }
}
