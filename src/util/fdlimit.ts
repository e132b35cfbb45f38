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

/** The data plane's worker-wide settings from [global]: budget (maxconn, reserved_fds) and lvs_timeouts. Pure. */
export function limitsFromConfig(
  g: { maxconn: number; reserved_fds: number; lvs_timeouts: { tcp: number; tcpfin: number; udp: number } },
  softLimit: number | undefined,
): { budget: ConnectionBudget; limits: { maxConns: number; lowWater: number; tcpTimeoutMs: number; tcpFinTimeoutMs: number; udpTimeoutMs: number } } {
  const budget = connectionBudget({ softLimit, reservedFds: g.reserved_fds, maxconn: g.maxconn });
  const t = g.lvs_timeouts;
  return {
    budget,
    limits: { maxConns: budget.maxConns, lowWater: budget.lowWater, tcpTimeoutMs: Math.round(t.tcp * 1000), tcpFinTimeoutMs: Math.round(t.tcpfin * 1000), udpTimeoutMs: Math.round(t.udp * 1000) },
  };
}
