/**
 * IPVS schedulers as nftables expressions. Pure: no I/O.
 *
 * Native (a pure function of the packet or of a kernel counter):
 *   rr     numgen inc mod N over the servers with weight > 0
 *   wrr    numgen inc over IPVS's interleaved weighted sequence (weights / gcd)
 *   sh/dh  jhash of the source/destination address (sh-port: and source port) with the
 *          service's explicit seed, modulo the weight sum, into one interval per server
 *   mh     jhash with the service's seed into a Maglev table (a `mark : mark` map of table_size slots)
 *   fo     the server with the highest weight
 * Approximated (documented; `inEffect` says exactly what runs):
 *   lc, wlc, sed, nq, ovf  wrr whose weights a control loop recomputes from per-server connection
 *                          counts (see reweight.ts); until the first counts arrive, the configured weights
 *   lblc, lblcr            dh (jhash of the destination address), without the overload check
 */
import type { IpFamily } from '../../../util/endpoint.js';
import type { SchedulerName } from '../../scheduler-names.js';
import { gcdOfPositive as gcdOf } from '../../hash.js';

/** One schedulable destination: its mark value and the weight the scheduler uses. */
export interface SchedDest {
  readonly id: number;
  readonly weight: number;
  /** The destination's endpoint text: what the Maglev permutation is derived from. */
  readonly key?: string;
}

export interface SchedInput {
  readonly scheduler: SchedulerName;
  readonly family: IpFamily;
  /** Destinations with weight > 0, in pool order. */
  readonly dests: readonly SchedDest[];
  readonly seed: number;
  /** sh-port / mh-port. */
  readonly hashPort: boolean;
  readonly tableSize: number;
  /** How often the control loop re-weights (lc, wlc…), for `inEffect`. */
  readonly reweightMs: number;
  /** Whether weights came from the control loop yet (else the configured ones). */
  readonly reweighted: boolean;
}

/** What sets the mark of a new flow. */
export type SchedExpr =
  /** `<mark> set <expr>` (expr may end with an anonymous map). */
  | { readonly kind: 'expr'; readonly expr: string }
  /** `<mark> set jhash … mod size seed S` then `<mark> set <mark> map @table` (Maglev). */
  | { readonly kind: 'table'; readonly hash: string; readonly table: Uint32Array };

export interface SchedPlan {
  readonly expr: SchedExpr;
  /** True when the choice is a pure function of the flow's packets (no numgen): needs no connection table to stay put. */
  readonly flowStable: boolean;
  /** What runs, for status (ServiceStats.scheduler_in_effect). */
  readonly inEffect: string;
}

/** Longest interleaved wrr sequence rendered element by element; beyond, weight blocks. */
const WRR_SEQUENCE_MAX = 4096;

const CONTROL_LOOP: ReadonlySet<SchedulerName> = new Set(['lc', 'wlc', 'sed', 'nq', 'ovf']);

export function isControlLoopScheduler(s: SchedulerName): boolean {
  return CONTROL_LOOP.has(s);
}

export function hex(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}

function saddr(f: IpFamily): string {
  return f === 4 ? 'ip saddr' : 'ip6 saddr';
}

function daddr(f: IpFamily): string {
  return f === 4 ? 'ip daddr' : 'ip6 daddr';
}

/** `{ 0 : a, 1-3 : b }` from a sequence of marks, consecutive equal values merged into intervals. */
export function sequenceMap(seq: readonly number[]): string {
  const parts: string[] = [];
  let start = 0;
  for (let i = 1; i <= seq.length; i++) {
    if (i < seq.length && seq[i] === seq[start]) continue;
    parts.push(`${start === i - 1 ? start : `${start}-${i - 1}`} : ${hex(seq[start]!)}`);
    start = i;
  }
  return `{ ${parts.join(', ')} }`;
}

/** IPVS wrr's order (ip_vs_wrr.c): current weight steps down by the gcd; each round takes every server at or above it. */
export function wrrSequence(dests: readonly SchedDest[]): number[] {
  const g = gcdOf(dests.map((d) => d.weight));
  const w = dests.map((d) => d.weight / g);
  const max = Math.max(...w);
  const seq: number[] = [];
  for (let cw = max; cw > 0; cw--) for (let i = 0; i < dests.length; i++) if (w[i]! >= cw) seq.push(dests[i]!.id);
  return seq;
}

/** `{ 0-2 : a, 3 : b }`: one interval per server, as long as its weight (divided by the gcd); and the modulus. */
function weightBlocks(dests: readonly SchedDest[]): { mod: number; map: string } {
  const g = gcdOf(dests.map((d) => d.weight));
  const parts: string[] = [];
  let at = 0;
  for (const d of dests) {
    const n = d.weight / g;
    parts.push(`${n === 1 ? at : `${at}-${at + n - 1}`} : ${hex(d.id)}`);
    at += n;
  }
  return { mod: at, map: `{ ${parts.join(', ')} }` };
}

function weightedNumgen(dests: readonly SchedDest[]): string {
  if (dests.length === 1) return hex(dests[0]!.id);
  const g = gcdOf(dests.map((d) => d.weight));
  const total = dests.reduce((s, d) => s + d.weight / g, 0);
  if (total <= WRR_SEQUENCE_MAX) {
    const seq = wrrSequence(dests);
    return `numgen inc mod ${seq.length} map ${sequenceMap(seq)}`;
  }
  // Very large weight sums: one block per server (same proportions, less interleaving).
  const b = weightBlocks(dests);
  return `numgen inc mod ${b.mod} map ${b.map}`;
}

function hashExpr(fields: string, dests: readonly SchedDest[], seed: number): string {
  if (dests.length === 1) return hex(dests[0]!.id);
  const b = weightBlocks(dests);
  return `jhash ${fields} mod ${b.mod} seed ${hex(seed)} map ${b.map}`;
}

/** Fields a source hash covers (sh / mh, with the -port flag the source port too). */
export function sourceHashFields(family: IpFamily, port: boolean): string {
  return port ? `${saddr(family)} . th sport` : saddr(family);
}

/**
 * A per-flow hash over the destinations (source address and port, the service's seed): what
 * keeps a flow on one server when the scheduler is not a function of the packet and the
 * connection table cannot hold the flow (full).
 */
export function flowHashExpr(family: IpFamily, dests: readonly SchedDest[], seed: number): string {
  return hashExpr(sourceHashFields(family, true), dests, seed);
}

/** Builds the mark expression for new flows; `maglev` builds Maglev tables (slot -> index into dests). */
export function schedule(input: SchedInput, maglev: (dests: readonly SchedDest[], size: number, seed: number) => Int32Array): SchedPlan {
  const { dests, family, seed } = input;
  if (dests.length === 0) throw new RangeError('schedule() needs at least one destination');
  const seedText = hex(seed);
  const every = input.reweightMs >= 1000 && input.reweightMs % 1000 === 0 ? `${input.reweightMs / 1000} s` : `${input.reweightMs} ms`;
  switch (input.scheduler) {
    case 'rr':
      return {
        expr: { kind: 'expr', expr: weightedNumgen(dests.map((d) => ({ id: d.id, weight: 1 }))) },
        flowStable: dests.length === 1,
        inEffect: 'rr (numgen inc)',
      };
    case 'wrr':
      return { expr: { kind: 'expr', expr: weightedNumgen(dests) }, flowStable: dests.length === 1, inEffect: 'wrr (numgen inc over the weighted sequence)' };
    case 'sh':
      return {
        expr: { kind: 'expr', expr: hashExpr(sourceHashFields(family, input.hashPort), dests, seed) },
        flowStable: true,
        inEffect: `sh (jhash of the source ${input.hashPort ? 'address and port' : 'address'}, seed ${seedText})`,
      };
    case 'dh':
      return {
        expr: { kind: 'expr', expr: hashExpr(daddr(family), dests, seed) },
        flowStable: true,
        inEffect: `dh (jhash of the destination address, seed ${seedText})`,
      };
    case 'lblc':
    case 'lblcr':
      return {
        expr: { kind: 'expr', expr: hashExpr(daddr(family), dests, seed) },
        flowStable: true,
        inEffect: `${input.scheduler}≈dh (jhash of the destination address, seed ${seedText}; no overload check)`,
      };
    case 'mh': {
      const idx = maglev(dests, input.tableSize, seed);
      const table = new Uint32Array(idx.length);
      for (let i = 0; i < idx.length; i++) table[i] = dests[idx[i]!]!.id;
      return {
        expr: { kind: 'table', hash: `jhash ${sourceHashFields(family, input.hashPort)} mod ${input.tableSize} seed ${seedText}`, table },
        flowStable: true,
        inEffect: `mh (Maglev, ${input.tableSize} slots, jhash of the source ${input.hashPort ? 'address and port' : 'address'}, seed ${seedText})`,
      };
    }
    case 'fo': {
      let best = dests[0]!;
      for (const d of dests) if (d.weight > best.weight) best = d;
      return { expr: { kind: 'expr', expr: hex(best.id) }, flowStable: true, inEffect: 'fo (the server with the highest weight)' };
    }
    case 'lc':
    case 'wlc':
    case 'sed':
    case 'nq':
    case 'ovf':
      return {
        expr: { kind: 'expr', expr: weightedNumgen(dests) },
        flowStable: dests.length === 1,
        inEffect: `${input.scheduler}≈wrr re-weighted every ${every} from connection counts${input.reweighted ? '' : ' (configured weights until the first count)'}`,
      };
  }
}
