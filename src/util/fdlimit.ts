/**
 * The descriptor budget of the proxy (global.maxconn): the control plane (control socket, metrics,
 * health checks, scripts, VRRP and sync sockets) shares one descriptor table with the data-plane
 * worker, so the worker may only use what is left after `reserved_fds`. A proxied TCP connection
 * holds two descriptors (client and real server), a UDP flow one; the budget counts both as one
 * slot of two descriptors, which errs on the safe side.
 */
import { readFileSync } from 'node:fs';

export interface NofileLimit {
  soft: number;
  hard: number;
}

/** The "Max open files" line of /proc/<pid>/limits (Infinity for "unlimited"). Pure. */
export function parseNofile(limitsText: string): NofileLimit | undefined {
  const line = limitsText.split('\n').find((l) => l.startsWith('Max open files'));
  const m = line ? /^Max open files\s+(\S+)\s+(\S+)/.exec(line) : null;
  if (!m) return undefined;
  const n = (s: string) => (s === 'unlimited' ? Infinity : Number(s));
  const soft = n(m[1]!);
  const hard = n(m[2]!);
  return Number.isNaN(soft) || Number.isNaN(hard) ? undefined : { soft, hard };
}

/** This process's descriptor limit (Node raises the soft limit to the hard one at start). */
export function readNofile(): NofileLimit | undefined {
  try {
    return parseNofile(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return undefined;
  }
}

export interface ConnectionBudget {
  /** Slots for the proxy (0 = unlimited: no known descriptor limit and no maxconn). */
  maxConns: number;
  /** Paused listeners resume at or below this (90 % of maxConns). */
  lowWater: number;
  /** What the descriptor limit allows; Infinity when unknown. */
  allowed: number;
  /** maxconn was set above what the descriptor limit allows and was lowered. */
  lowered: boolean;
}

/** The proxy's connection budget from the descriptor limit, reserved_fds and maxconn. Pure. */
export function connectionBudget(o: { softLimit: number | undefined; reservedFds: number; maxconn: number }): ConnectionBudget {
  const allowed = o.softLimit === undefined || !Number.isFinite(o.softLimit)
    ? Infinity
    : Math.max(1, Math.floor((o.softLimit - o.reservedFds) / 2));
  const wanted = o.maxconn > 0 ? o.maxconn : Infinity;
  const cap = Math.min(wanted, allowed);
  const maxConns = Number.isFinite(cap) ? cap : 0;
  return { maxConns, lowWater: Math.floor(maxConns * 0.9), allowed, lowered: o.maxconn > 0 && o.maxconn > allowed };
}
