/**
 * The IPVS scheduler names, shared by the config schema, the data-plane contract and every
 * implementation (the proxy's per-connection schedulers, the nftables rule builder). Pure.
 */

export const SCHEDULER_NAMES = [
  'rr',
  'wrr',
  'lc',
  'wlc',
  'sed',
  'nq',
  'sh',
  'dh',
  'mh',
  'lblc',
  'lblcr',
  'fo',
  'ovf',
] as const;

export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

export function isSchedulerName(name: string): name is SchedulerName {
  return (SCHEDULER_NAMES as readonly string[]).includes(name);
}
