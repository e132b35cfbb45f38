/**
 * Source hashing (ip_vs_sh.c): a static 256-bucket table maps the hash of the client
 * address (optionally with the client port) to a destination, so one client always lands
 * on the same server while the list is unchanged.
 *
 * Buckets are handed out round the list, each destination taking `weight` consecutive
 * buckets per round (one bucket if its weight is 0), until all 256 are assigned. An
 * unavailable destination (weight 0, overloaded) yields no destination unless `fallback`
 * is set (IP_VS_SVC_F_SCHED_SH_FALLBACK), in which case other buckets are probed.
 */

import type { RealServerRef, ScheduleContext, Scheduler } from '../types.js';
import { addressFold, DestChangeDetector, hash32, NO_DEST, tableLookup } from './common.js';

const SH_TAB_BITS = 8;
const SH_TAB_SIZE = 1 << SH_TAB_BITS;

export interface SourceHashingOptions {
  /** sh-fallback: probe other buckets when the hashed server is unavailable. */
  readonly fallback?: boolean;
  /** sh-port: include the client's source port in the hash (spreads one client's flows). */
  readonly port?: boolean;
}

export class SourceHashingScheduler implements Scheduler {
  readonly name = 'sh';
  private readonly changes = new DestChangeDetector();
  private readonly buckets = new Int32Array(SH_TAB_SIZE).fill(NO_DEST);

  constructor(private readonly options: SourceHashingOptions = {}) {}

  update(dests: readonly RealServerRef[]): void {
    if (this.changes.changed(dests)) this.reassign(dests);
  }

  pick<D extends RealServerRef>(dests: readonly D[], ctx: ScheduleContext): D | null {
    this.update(dests);
    const port = this.options.port ? (ctx.clientPort ?? 0) : 0;
    const key = (addressFold(ctx.clientAddress, ctx.family) + port) >>> 0;
    const bucket = (offset: number): number => (offset + hash32(key, SH_TAB_BITS)) & (SH_TAB_SIZE - 1);
    return tableLookup(dests, this.buckets, bucket(0), this.options.fallback ?? false, bucket);
  }

  /** ip_vs_sh_reassign(). */
  private reassign(dests: readonly RealServerRef[]): void {
    if (dests.length === 0) {
      this.buckets.fill(NO_DEST);
      return;
    }
    let p = 0;
    let count = 0;
    for (let i = 0; i < SH_TAB_SIZE; i++) {
      this.buckets[i] = p;
      if (++count >= dests[p]!.weight) {
        p = (p + 1) % dests.length;
        count = 0;
      }
    }
  }
}
