// The `rt` parameter of the VRRP timing benches (jitter, failover): the scheduling of the thread
// that times the adverts, the same on both sides when given.
//   unset  each side's own default: keepalive-ts' sender thread SCHED_RR 1 (global.vrrp_rt_priority
//          default), keepalived SCHED_OTHER (no vrrp_rt_priority)
//   N > 0  keepalive-ts vrrp_rt_priority = N, keepalived `vrrp_rt_priority N` (its whole VRRP process)
//   0      both SCHED_OTHER: the figures measured before the sender thread was real-time
import type { BenchContext } from './run.js';

export type Rt = number | undefined;

export function rtParam(ctx: BenchContext, bench: string): Rt {
  const v = ctx.params.rt;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 99) throw new Error(`--param ${bench}.rt=${v}: a whole number 0..99`);
  return n;
}

/** [global] line of keepalive-ts ('' = its default). */
export function oursRt(rt: Rt): string {
  return rt === undefined ? '' : `vrrp_rt_priority = ${rt}`;
}

/** global_defs line of keepalived ('' = its default, SCHED_OTHER). */
export function theirsRt(rt: Rt): string {
  return rt ? `  vrrp_rt_priority ${rt}` : '';
}

export function rtNote(rt: Rt): string {
  if (rt === undefined) return 'Scheduling: each side\'s default — keepalive-ts\' advert sender thread SCHED_RR 1 (global.vrrp_rt_priority), keepalived SCHED_OTHER (no vrrp_rt_priority). `--param <bench>.rt=N` gives both priority N (0: both SCHED_OTHER, as measured before vrrp_rt_priority existed).';
  if (rt === 0) return 'Scheduling (`rt=0`): both SCHED_OTHER (keepalive-ts vrrp_rt_priority = 0; keepalived without vrrp_rt_priority), as measured before vrrp_rt_priority existed.';
  return `Scheduling (\`rt=${rt}\`): both real-time at priority ${rt} — keepalive-ts' advert sender thread (vrrp_rt_priority = ${rt}), keepalived's VRRP process (vrrp_rt_priority ${rt}).`;
}
