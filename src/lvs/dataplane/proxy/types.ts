/**
 * Types shared by the virtual-server pool logic, the schedulers, persistence and the data plane.
 *
 * The shapes mirror the kernel's IPVS objects so that the scheduler code can follow
 * net/netfilter/ipvs/ip_vs_*.c closely: a `RealServerRef` is the scheduler's view of an
 * `struct ip_vs_dest`, a `Scheduler` is a `struct ip_vs_scheduler`.
 */

export type IpFamily = 4 | 6;

/**
 * One destination (real server) as a scheduler sees it, like IPVS `struct ip_vs_dest`.
 * Connection counters are maintained by the data plane; schedulers only read them.
 */
export interface RealServerRef {
  /** Stable identity, "addr:port" ("[v6addr]:port" for IPv6). Scheduler state is keyed on it. */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /**
   * Effective weight. 0 = quiescent: never chosen for new connections, while existing
   * connections (and, as in IPVS, persistence templates) continue to use the server.
   */
  readonly weight: number;
  /** Established connections (IPVS activeconns). */
  readonly activeConns: number;
  /** Connections in other states, e.g. TIME_WAIT/FIN (IPVS inactconns). */
  readonly inactConns: number;
  /** IPVS IP_VS_DEST_F_OVERLOAD (upper connection threshold reached): excluded from scheduling. */
  readonly overloaded?: boolean;
}

/** What a scheduler may look at about the new connection. */
export interface ScheduleContext {
  readonly clientAddress: string;
  readonly clientPort?: number;
  readonly family: IpFamily;
  /**
   * The virtual service address the client connected to. Only the dh scheduler uses it
   * (for a proxy the "destination" of a packet is always the VIP, see sched/dh.ts).
   */
  readonly virtualAddress?: string;
}

/**
 * A scheduling algorithm, like IPVS `struct ip_vs_scheduler`. `pick` receives the current
 * destination list (in configuration order, which matters for rr/wrr/fo/ovf tie-breaking)
 * and returns one of its elements, or null when no destination is available.
 *
 * Stateful schedulers (rr, wrr, sh, dh, mh, lblc, lblcr) notice changes of the list
 * (ids or weights) on their own, the way the kernel calls add_dest/del_dest/upd_dest;
 * `update` lets the owner announce a change eagerly, e.g. to build the mh table off the
 * connection path.
 */
export interface Scheduler {
  readonly name: string;
  pick<D extends RealServerRef>(dests: readonly D[], ctx: ScheduleContext): D | null;
  update?(dests: readonly RealServerRef[]): void;
}
