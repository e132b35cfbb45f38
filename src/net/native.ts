/**
 * Typed wrappers over the keepalive_native N-API addon (native/keepalive_native.c): a send-only
 * AF_PACKET socket for GARP/NA frames and a raw IPv6 socket that reports the hop limit, which the
 * `raw-socket` package cannot do (Linux raw IPv6 sockets never expose the IPv6 header); and the
 * health-check I/O engine (native/check_engine.c) that TCP_CHECK and HTTP_GET attempts run on.
 *
 * The addon is loaded lazily so that pure modules importing this file (and unit tests) work on a
 * machine where it has not been built; the first real use then fails with a clear E_NATIVE error.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { constants as osConstants } from 'node:os';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { macToBuffer } from './frames.js';

/** Opaque handle of an immutable check spec in the addon (shared by every attempt of a checker). */
export type CheckSpecHandle = { readonly __checkSpec: unique symbol };
export type CheckJobHandle = { readonly __checkJob: unique symbol };

/** Opaque handle returned by the addon for a raw IPv6 socket. */
type Raw6Handle = { readonly __raw6: unique symbol };

type Raw6NativeCallback = (
  err: (Error & { code?: string }) | null,
  payload?: Buffer,
  src?: string,
  hopLimit?: number,
  ifindex?: number,
  dst?: string,
) => void;

interface NativeBinding {
  packetOpen(ifindex: number): number;
  packetSend(fd: number, ifindex: number, frame: Buffer, dstMac: Buffer): number;
  raw4Open(ifindex: number): number;
  raw4Send(fd: number, packet: Buffer, dst: string): number;
  close(fd: number): void;
  flockExclusive(fd: number): boolean;
  raw6Open(
    ifindex: number,
    protocol: number,
    group: string | null,
    bindToDevice: boolean,
    callback: Raw6NativeCallback,
  ): Raw6Handle;
  raw6Send(handle: Raw6Handle, payload: Buffer, dst: string, ifindex: number, src: string | null): number;
  raw6Close(handle: Raw6Handle): void;
  reusePortListen(address: string, port: number, backlog: number, reusePort?: boolean): number;
  relayEngine(cb: (events: Float64Array, addresses: string[]) => void): RelayEngineHandle;
  relayListen(engine: RelayEngineHandle, fd: number): number;
  relayUnlisten(engine: RelayEngineHandle, listener: number): void;
  relayConnect(engine: RelayEngineHandle, conn: number, address: string, port: number, timeoutMs: number, head: Buffer | null): number;
  relayDestroy(engine: RelayEngineHandle, conn: number, out: Float64Array): boolean;
  relayBytes(engine: RelayEngineHandle, conn: number, out: Float64Array): boolean;
  relayTimeouts(engine: RelayEngineHandle, idleMs: number, finMs: number): void;
  relayClose(engine: RelayEngineHandle): void;
  relaySplice(engine: RelayEngineHandle, afterBytes: number): void;
  relayStats(engine: RelayEngineHandle, out: Float64Array): void;
  raiseThreadNice(delta: number): number;
  checkEngineCallback(cb: (ints: Int32Array, buffers: (Buffer | undefined)[] | undefined) => void): void;
  checkSpec(addr: Buffer, port: number, bindAddr: Buffer | null, request: Buffer | null, flags: number,
    maxBody: number, timeoutMs: number, bodyStatuses: Buffer | null): CheckSpecHandle;
  checkStart(token: number, spec: CheckSpecHandle): void;
  checkAbort(token: number): void;
  checkJobStart(id: number, spec: CheckSpecHandle, okStatuses: Buffer | null, firstDelayMs: number, delayLoopMs: number,
    retryDelayMs: number, retries: number): CheckJobHandle;
  checkJobStop(job: CheckJobHandle): void;
  checkJobStats(job: CheckJobHandle, out: Float64Array): void;
  preciseTimerOpen(callback: () => void): PreciseTimerHandle;
  vrrpSenderOpen(callback: (id: number, gen: number, ageMs: number, vipsAgeMs: number, garps: number, vipsErrno: number) => void): VrrpSenderHandle;
  vrrpSenderSchedule(handle: VrrpSenderHandle, id: number, gen: number, kind: 1 | 2, fd: number, ifindex: number, vrid: number,
    packets: Buffer[], dsts: string[], delayMs: number, periodMs: number, keepPhase: boolean, extras?: TakeoverExtras): void;
  vrrpSenderCancel(handle: VrrpSenderHandle, id: number): void;
  vrrpSenderStats(handle: VrrpSenderHandle, id: number): [number, number, number, number];
  vrrpSenderHeard(handle: VrrpSenderHandle, ifindex: number, vrid: number): number;
  vrrpSenderSetRealtime(handle: VrrpSenderHandle, priority: number, rlimitUs: number): number;
  vrrpSenderClose(handle: VrrpSenderHandle): void;
  preciseTimerArm(handle: PreciseTimerHandle, delayMs: number): void;
  preciseTimerDisarm(handle: PreciseTimerHandle): void;
  preciseTimerClose(handle: PreciseTimerHandle): void;
  nftLoad(): string | null;
  nftOpen(): NftHandle;
  nftRun(handle: NftHandle, commands: string, outputFlags: number): Promise<NftRunResult>;
  nftClose(handle: NftHandle): void;
  nftCounters(family: number, table: string): Promise<Record<string, [number, number]>>;
  conntrackCountByMark(marks: number[]): Promise<{ counts: Record<string, [number, number]>; entries: number }>;
  nftSetElements(family: number, table: string, set: string): Promise<Array<[string, number | null, number, number]>>;
  conntrackDeleteByMark(marks: number[]): Promise<void>;
}

/** Opaque handle of a relay engine (native/relay_engine.c). */
export type RelayEngineHandle = { readonly __relayEngine: unique symbol };

/** Opaque handle of a libnftables context (native/keepalive_native.c). */
export type NftHandle = { readonly __nft: unique symbol };

/** What one libnftables command buffer gave: exit code, printed output and errors, time it took. */
export interface NftRunResult {
  rc: number;
  output: string;
  error: string;
  /** Milliseconds libnftables spent (parse + netlink transaction), measured on the worker thread. */
  ms: number;
}

/** Opaque handle of the VRRP advert sender thread (native/vrrp_sender.c). */
export type VrrpSenderHandle = { readonly __vrrpSender: unique symbol };

/** Opaque handle of a timerfd timer (native/precise_timer.c). */
export type PreciseTimerHandle = { readonly __preciseTimer: unique symbol };

// dist/src/net/native.js -> repo root is three levels up; the addon lives in build/Release there.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const addonPath = path.join(repoRoot, 'build', 'Release', 'keepalive_native.node');

let binding: NativeBinding | undefined;

function native(): NativeBinding {
  if (binding) return binding;
  try {
    const require = createRequire(path.join(repoRoot, 'package.json'));
    binding = require(addonPath) as NativeBinding;
    return binding;
  } catch (err) {
    throw new KeepaliveError(
      'E_NATIVE',
      `cannot load native addon ${addonPath} (run npm run build): ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

/** The errno name (e.g. 'EPERM', 'EAGAIN') behind a socket error raised by this module, if any. */
export function errnoCode(err: unknown): string | undefined {
  const cause = err instanceof KeepaliveError ? err.cause : err;
  const code = (cause as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function socketError(what: string, err: unknown): Error {
  // Bad arguments (TypeError/RangeError from the addon's checks) are caller bugs, not socket
  // failures: let them through unchanged.
  if (err instanceof KeepaliveError || err instanceof TypeError || err instanceof RangeError) return err;
  return new KeepaliveError('E_SOCKET', `${what}: ${errorMessage(err)}`, { cause: err });
}

/** Send-only AF_PACKET socket bound to one interface (protocol 0: never receives). */
export class PacketSocket {
  readonly ifindex: number;
  #fd: number;

  private constructor(fd: number, ifindex: number) {
    this.#fd = fd;
    this.ifindex = ifindex;
  }

  static open(ifindex: number): PacketSocket {
    const n = native();
    try {
      return new PacketSocket(n.packetOpen(ifindex), ifindex);
    } catch (err) {
      throw socketError(`AF_PACKET socket on ifindex ${ifindex}`, err);
    }
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Sends a complete Ethernet frame; dstMac defaults to the frame's own destination. */
  send(frame: Buffer, dstMac?: string | Buffer): number {
    if (this.#fd < 0) throw new KeepaliveError('E_CLOSED', 'packet socket is closed');
    const mac = dstMac === undefined ? frame.subarray(0, 6) : typeof dstMac === 'string' ? macToBuffer(dstMac) : dstMac;
    try {
      return native().packetSend(this.#fd, this.ifindex, frame, Buffer.from(mac));
    } catch (err) {
      throw socketError(`send on ifindex ${this.ifindex}`, err);
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    // Mark closed first: even if close(2) reports an error the fd number must never be reused.
    this.#fd = -1;
    native().close(fd);
  }
}

/**
 * Send-only raw IPv4 socket (IPPROTO_RAW: the caller supplies the IPv4 header) bound to one
 * interface; sends synchronously, multicast not looped back.
 */
export class Raw4SendSocket {
  readonly ifindex: number;
  #fd: number;

  private constructor(fd: number, ifindex: number) {
    this.#fd = fd;
    this.ifindex = ifindex;
  }

  static open(ifindex: number): Raw4SendSocket {
    const n = native();
    try {
      return new Raw4SendSocket(n.raw4Open(ifindex), ifindex);
    } catch (err) {
      throw socketError(`raw IPv4 socket on ifindex ${ifindex}`, err);
    }
  }

  /** The socket's descriptor (-1 once closed), for the advert sender thread (native-sender.ts), which dup()s it. */
  get fd(): number { return this.#fd; }

  /** Sends one IPv4 packet (header included) to `dst`. */
  send(packet: Buffer, dst: string): number {
    if (this.#fd < 0) throw new KeepaliveError('E_CLOSED', 'raw IPv4 socket is closed');
    try {
      return native().raw4Send(this.#fd, packet, dst);
    } catch (err) {
      throw socketError(`raw4 send to ${dst}`, err);
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    native().close(fd);
  }
}

export interface Raw6Message {
  payload: Buffer;
  /** Source address, without a zone suffix (the arrival interface is `ifindex`). */
  src: string;
  /** Destination address the datagram was sent to (IPV6_PKTINFO): the group, or a unicast address. */
  dst: string;
  /** IPv6 hop limit the datagram arrived with (-1 if the kernel did not report it). */
  hopLimit: number;
  ifindex: number;
}

export interface Raw6Options {
  ifindex: number;
  /** IP protocol number; VRRP is 112. */
  protocol?: number;
  /** Multicast group to join on `ifindex`; null joins none (unicast peers). Default ff02::12. */
  group?: string | null;
  /** SO_BINDTODEVICE to `ifindex` so only datagrams arriving there are delivered. */
  bindToDevice?: boolean;
}

export const VRRP_PROTOCOL = 112;
export const VRRP_GROUP_V6 = 'ff02::12';

/**
 * Raw IPv6 socket with hop limit 255 on send, multicast loop off, kernel checksumming off, and a
 * receive path that reports hop limit and arrival interface per datagram. Keeps the process
 * alive while open, like a bound dgram socket.
 */
export class Raw6Socket {
  readonly ifindex: number;
  #handle: Raw6Handle | undefined;

  private constructor(handle: Raw6Handle, ifindex: number) {
    this.#handle = handle;
    this.ifindex = ifindex;
  }

  static open(
    opts: Raw6Options,
    onMessage: (msg: Raw6Message) => void,
    onError: (err: KeepaliveError) => void = (err) => {
      throw err;
    },
  ): Raw6Socket {
    const n = native();
    const group = opts.group === undefined ? VRRP_GROUP_V6 : opts.group;
    const callback: Raw6NativeCallback = (err, payload, src, hopLimit, ifindex, dst) => {
      if (err) onError(new KeepaliveError('E_SOCKET', `raw6 receive: ${err.message}`, { cause: err }));
      else onMessage({ payload: payload!, src: src!, dst: dst!, hopLimit: hopLimit!, ifindex: ifindex! });
    };
    try {
      const handle = n.raw6Open(opts.ifindex, opts.protocol ?? VRRP_PROTOCOL, group, opts.bindToDevice ?? false, callback);
      return new Raw6Socket(handle, opts.ifindex);
    } catch (err) {
      throw socketError(`raw IPv6 socket on ifindex ${opts.ifindex}`, err);
    }
  }

  get closed(): boolean {
    return this.#handle === undefined;
  }

  /**
   * Sends `payload` (no IPv6 header) to `dst` out of this socket's interface, from `src` if given.
   * `ifindex` 0 lets the routing table choose the interface (PING_CHECK).
   */
  send(payload: Buffer, dst: string, src?: string, ifindex: number = this.ifindex): number {
    if (!this.#handle) throw new KeepaliveError('E_CLOSED', 'raw IPv6 socket is closed');
    try {
      return native().raw6Send(this.#handle, payload, dst, ifindex, src ?? null);
    } catch (err) {
      throw socketError(`raw6 send to ${dst}`, err);
    }
  }

  close(): void {
    if (!this.#handle) return;
    const handle = this.#handle;
    this.#handle = undefined;
    native().raw6Close(handle);
  }
}

// ---------------------------------------------------------------------------------------------
// Health-check I/O engine (native/check_engine.c)

/** Codes of a finished attempt besides 0 (success) and positive errno values. */
export const CHECK_IO = Object.freeze({
  TIMEOUT: -1,
  ABORTED: -2,
  /** EOF before the status line and headers were complete. */
  CLOSED_EARLY: -3,
  /** The answer does not start with an HTTP/1.x status line. */
  NOT_HTTP: -4,
  /** Header block over 16 KiB. */
  HEAD_TOO_BIG: -5,
  BAD_CHUNK: -6,
  CLOSED_MID_BODY: -7,
});

/** One attempt as the engine runs it. */
export interface CheckIoSpec {
  /** Target address, 4 or 16 bytes (network order). */
  addr: Buffer;
  port: number;
  /** Source address to bind (bind_to), same family as addr. */
  bindAddr: Buffer | null;
  /** HTTP request to send; null = connect only (TCP_CHECK). */
  request: Buffer | null;
  /** Read the body (de-chunked, at most maxBody bytes). */
  wantBody: boolean;
  /** Hand back the raw header block. */
  wantHead: boolean;
  maxBody: number;
  /** The whole attempt: connect, request, answer. */
  timeoutMs: number;
  /**
   * With wantBody: the body is read only when the status is set in this 1000-bit map (bit s of
   * byte s >> 3); null = always.
   */
  bodyStatuses: Buffer | null;
}

/** Finished attempt: code 0 / errno / CHECK_IO.*, HTTP status (0 when none), and what was asked for. */
export type CheckIoDone = (code: number, status: number, body: Buffer | undefined, head: Buffer | undefined, truncated: boolean) => void;

/**
 * A checker's whole schedule on the engine (checkJobStart): the first attempt after firstDelayMs,
 * then each next one delayLoopMs (retryDelayMs while retrying) after the previous one ended, with
 * keepalived's retry steps (checkStep() in src/lvs/health.ts).
 */
export interface CheckJobPlan {
  firstDelayMs: number;
  delayLoopMs: number;
  retryDelayMs: number;
  retries: number;
  /** The statuses that pass (1000-bit map as bodyStatuses); null: the exchange completing passes (TCP_CHECK). */
  okStatuses: Buffer | null;
}

/** The engine's checker state after an attempt (0 unknown, 1 up, 2 down in the report word). */
export type CheckJobState = 'unknown' | 'up' | 'down';

/**
 * A reported attempt of a job: only those after which the state or the retry count changed, or
 * whose (code, status) differs from the last reported one. elapsedUs: the attempt's duration.
 */
export type CheckJobReport = (code: number, status: number, elapsedUs: number, state: CheckJobState, retrying: number) => void;

/** A job's counters, read from the engine (every attempt, reported or not). */
export interface CheckJobStats {
  attempts: number;
  failures: number;
  unknowns: number;
  /** Duration of the last finished attempt, ms; null before the first. */
  lastDurationMs: number | null;
  /** Time since the last attempt ended, ms; null before the first. */
  sinceLastMs: number | null;
}

export interface CheckJob {
  /** No attempt starts any more, the one in flight is aborted, nothing more is reported. Idempotent. */
  stop(): void;
  stats(): CheckJobStats;
}

const JOB_STATES: readonly CheckJobState[] = ['unknown', 'up', 'down'];

const CE_INTS = 8;
const FLAG_HTTP = 1;
const FLAG_BODY = 2;
const FLAG_HEAD = 4;

/**
 * The per-process (per worker) check engine: attempts run on the addon's own thread; results come
 * back on this thread in batches. The engine keeps the event loop alive only while attempts are
 * in flight.
 */
export class CheckEngine {
  static #instance: CheckEngine | undefined;
  readonly #waiting = new Map<number, CheckIoDone>();
  readonly #jobs = new Map<number, CheckJobReport>();
  #next = 0;
  #nextJob = 0;
  readonly #statsOut = new Float64Array(5);

  private constructor() {
    native().checkEngineCallback((ints, buffers) => this.#deliver(ints, buffers));
  }

  static get(): CheckEngine {
    return (CheckEngine.#instance ??= new CheckEngine());
  }

  /** Attempts in flight. */
  get inFlight(): number { return this.#waiting.size; }

  /** The addon's copy of `spec`, to start attempts from (made once per checker). Bad arguments throw. */
  spec(spec: CheckIoSpec): CheckSpecHandle {
    const flags = (spec.request ? FLAG_HTTP : 0) | (spec.wantBody ? FLAG_BODY : 0) | (spec.wantHead ? FLAG_HEAD : 0);
    return native().checkSpec(spec.addr, spec.port, spec.bindAddr, spec.request, flags, spec.maxBody, spec.timeoutMs, spec.bodyStatuses);
  }

  /**
   * Starts one attempt; `done` is called exactly once, on this thread, never synchronously.
   * Returns the token for abort().
   */
  start(spec: CheckSpecHandle, done: CheckIoDone): number {
    const token = (this.#next = (this.#next + 1) & 0x7fffffff);
    native().checkStart(token, spec);
    this.#waiting.set(token, done);
    return token;
  }

  /** Ends the attempt now with CHECK_IO.ABORTED (nothing happens when it has already ended). */
  abort(token: number): void {
    if (this.#waiting.has(token)) native().checkAbort(token);
  }

  /** Jobs running. */
  get jobs(): number { return this.#jobs.size; }

  /**
   * Hands a checker's schedule to the engine: `spec` must read no body and no header block.
   * `report` is called on this thread for the attempts that may change something (CheckJobReport).
   */
  job(spec: CheckSpecHandle, plan: CheckJobPlan, report: CheckJobReport): CheckJob {
    let id = (this.#nextJob = (this.#nextJob + 1) & 0x7fffffff);
    while (this.#jobs.has(id)) id = (this.#nextJob = (this.#nextJob + 1) & 0x7fffffff);
    const handle = native().checkJobStart(id, spec, plan.okStatuses, Math.round(plan.firstDelayMs), Math.round(plan.delayLoopMs),
      Math.round(plan.retryDelayMs), plan.retries);
    this.#jobs.set(id, report);
    let stopped = false;
    const out = this.#statsOut;
    return {
      stop: () => {
        if (stopped) return;
        stopped = true;
        this.#jobs.delete(id);
        native().checkJobStop(handle);
      },
      stats: () => {
        native().checkJobStats(handle, out);
        return {
          attempts: out[0]!,
          failures: out[1]!,
          unknowns: out[2]!,
          lastDurationMs: out[3]! < 0 ? null : out[3]! / 1000,
          sinceLastMs: out[4]! < 0 ? null : out[4]!,
        };
      },
    };
  }

  #deliver(ints: Int32Array, buffers: (Buffer | undefined)[] | undefined): void {
    for (let i = 0; i < ints.length; i += CE_INTS) {
      const word = ints[i + 7]!;
      if (word !== 0) {
        const report = this.#jobs.get(ints[i]!);
        if (!report) continue; // stopped meanwhile
        try {
          report(ints[i + 1]!, ints[i + 2]!, ints[i + 3]!, JOB_STATES[(word >> 4) & 0xf] ?? 'unknown', word >> 8);
        } catch (err) {
          queueMicrotask(() => { throw err; });
        }
        continue;
      }
      const done = this.#waiting.get(ints[i]!);
      if (!done) continue;
      this.#waiting.delete(ints[i]!);
      const bi = ints[i + 4]!;
      const hi = ints[i + 5]!;
      try {
        done(ints[i + 1]!, ints[i + 2]!, bi >= 0 ? buffers?.[bi] : undefined, hi >= 0 ? buffers?.[hi] : undefined, ints[i + 6] !== 0);
      } catch (err) {
        // The rest of the batch is still delivered; the error surfaces as an uncaught exception.
        queueMicrotask(() => { throw err; });
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Precise timer (native/precise_timer.c)

/**
 * One timerfd on the event loop: `arm(ms)` fires `callback` once, ms (fractional) from now, to the
 * microsecond and without busy waiting. Keeps the loop alive while armed.
 */
export class PreciseTimer {
  #handle: PreciseTimerHandle | undefined;

  constructor(callback: () => void) {
    try {
      this.#handle = native().preciseTimerOpen(callback);
    } catch (err) {
      throw socketError('timerfd', err);
    }
  }

  arm(delayMs: number): void {
    if (this.#handle) native().preciseTimerArm(this.#handle, Math.max(0, delayMs));
  }

  disarm(): void {
    if (this.#handle) native().preciseTimerDisarm(this.#handle);
  }

  close(): void {
    if (!this.#handle) return;
    const h = this.#handle;
    this.#handle = undefined;
    native().preciseTimerClose(h);
  }
}

// ---------------------------------------------------------------------------------------------
// VRRP advert sender thread (native/vrrp_sender.c)

/** One job's frames: IPv4 packets (header included) sent on `fd` (a raw IPv4 send socket), one per destination. */
export interface AdvertFrames {
  fd: number;
  ifindex: number;
  vrid: number;
  packets: Buffer[];
  dsts: string[];
}

/**
 * What the advert sender thread does right after a takeover's advert (and only if it sent it): the
 * VIPs through its own rtnetlink socket (`nl`: `nlCount` complete RTM_NEWADDR requests, e.g. from
 * Rtnl.addAddressRequest, concatenated), then, once the kernel acknowledged every one, the
 * gratuitous ARP `garps` (complete Ethernet frames) on interface `garpIfindex`.
 */
export interface TakeoverExtras {
  nl: Buffer;
  nlCount: number;
  garpIfindex: number;
  garps: Buffer[];
}

/** What the thread did of a takeover's extras: VIPs in `vipsAgeMs` ago (undefined: not added, see vipsErrno), GARPs sent. */
export interface TakeoverDone {
  vipsAgeMs: number | undefined;
  vipsErrno: number;
  garps: number;
}

/**
 * The advert sender thread: sends prebuilt adverts on an absolute monotonic schedule (periodic
 * jobs) or once at a deadline unless a packet of the VRID arrived since (takeover jobs), off the
 * event loop. See native/vrrp_sender.c. One per process; jobs are identified by small integers.
 */
export class AdvertSender {
  #handle: VrrpSenderHandle | undefined;
  readonly #reports = new Map<number, (gen: number, ageMs: number, done: TakeoverDone) => void>();
  #nextId = 1;

  constructor() {
    try {
      this.#handle = native().vrrpSenderOpen((id, gen, ageMs, vipsAgeMs, garps, vipsErrno) =>
        this.#reports.get(id)?.(gen, ageMs, { vipsAgeMs: vipsAgeMs < 0 ? undefined : vipsAgeMs, vipsErrno, garps }));
    } catch (err) {
      throw socketError('VRRP advert sender', err);
    }
  }

  /** A fresh job id; `onReport(gen, ageMs, done)` hears its takeovers (ageMs -1: not sent; done: its extras). */
  job(onReport: (gen: number, ageMs: number, done: TakeoverDone) => void): number {
    const id = this.#nextId++;
    this.#reports.set(id, onReport);
    return id;
  }

  /** `extras`: a takeover's VIPs and GARPs, done by the thread right after its advert (TakeoverExtras). */
  schedule(id: number, gen: number, kind: 'periodic' | 'takeover', frames: AdvertFrames, delayMs: number, periodMs: number, keepPhase: boolean, extras?: TakeoverExtras): void {
    if (!this.#handle) throw new KeepaliveError('E_CLOSED', 'VRRP advert sender is closed');
    native().vrrpSenderSchedule(this.#handle, id, gen, kind === 'periodic' ? 1 : 2, frames.fd, frames.ifindex, frames.vrid,
      frames.packets, frames.dsts, Math.max(0, delayMs), periodMs, keepPhase, kind === 'takeover' ? extras : undefined);
  }

  cancel(id: number): void {
    if (this.#handle) native().vrrpSenderCancel(this.#handle, id);
  }

  /** Adverts sent, send errors, the largest lateness (µs) of job `id` and of that the thread's wake-up. */
  stats(id: number): { sent: number; errors: number; maxLateUs: number; maxWakeLateUs: number } {
    if (!this.#handle) return { sent: 0, errors: 0, maxLateUs: 0, maxWakeLateUs: 0 };
    const [sent, errors, maxLateUs, maxWakeLateUs] = native().vrrpSenderStats(this.#handle, id);
    return { sent, errors, maxLateUs, maxWakeLateUs };
  }

  /** Milliseconds since the thread last saw a VRRP packet of `vrid` on `ifindex`; undefined if unknown. */
  heardAgo(ifindex: number, vrid: number): number | undefined {
    if (!this.#handle) return undefined;
    const age = native().vrrpSenderHeard(this.#handle, ifindex, vrid);
    return age < 0 ? undefined : age;
  }

  /**
   * The thread's scheduling: SCHED_RR at `priority` (1..99; 0 = SCHED_OTHER), with RLIMIT_RTTIME
   * soft rlimitUs / 2, hard rlimitUs (0 = unchanged) as keepalived's vrrp_rt_priority /
   * vrrp_rlimit_rttime, for this thread only. Returns undefined when applied, else the errno name
   * (EPERM: no CAP_SYS_NICE and RLIMIT_RTPRIO too low; the thread keeps its previous policy).
   */
  setRealtime(priority: number, rlimitUs: number): string | undefined {
    if (!this.#handle) throw new KeepaliveError('E_CLOSED', 'VRRP advert sender is closed');
    const err = native().vrrpSenderSetRealtime(this.#handle, priority, rlimitUs);
    if (err === 0) return undefined;
    return Object.entries(osConstants.errno).find(([, v]) => v === err)?.[0] ?? `errno ${err}`;
  }

  close(): void {
    if (!this.#handle) return;
    const h = this.#handle;
    this.#handle = undefined;
    native().vrrpSenderClose(h);
  }
}

/**
 * A listening TCP socket on address:port with SO_REUSEPORT, as an fd for net.Server.listen({ fd }):
 * several proxy workers each own one and the kernel spreads connections over them. Throws
 * E_SOCKET with the errno as cause code (EADDRNOTAVAIL while the VIP is not here, EADDRINUSE).
 */
export function reusePortListen(address: string, port: number, backlog: number): number {
  try {
    return native().reusePortListen(address, port, backlog);
  } catch (err) {
    throw socketError(`listen on ${address.includes(':') ? `[${address}]` : address}:${port}`, err);
  }
}

/**
 * A listening TCP socket on address:port as an fd: with SO_REUSEPORT when `reusePort` (see
 * reusePortListen), else exclusive (SO_REUSEADDR only: a second listener gets EADDRINUSE, as with
 * Node's own listen). Throws E_SOCKET with the errno as cause code.
 */
export function tcpListen(address: string, port: number, backlog: number, reusePort: boolean): number {
  try {
    return native().reusePortListen(address, port, backlog, reusePort);
  } catch (err) {
    throw socketError(`listen on ${address.includes(':') ? `[${address}]` : address}:${port}`, err);
  }
}

/** Event kinds of the relay engine's batches (RL_E_* in native/relay_engine.c). */
export const RELAY_ACCEPT = 1;
export const RELAY_CONNECTED = 2;
export const RELAY_CONNECT_FAILED = 3;
export const RELAY_HALF_CLOSED = 4;
export const RELAY_CLOSED = 5;
/** Doubles per event: [kind, conn, a, b, c, 0]. */
export const RELAY_EVENT_SIZE = 6;
/** RELAY_CLOSED reasons. */
export const RELAY_CLOSED_DONE = 0;
export const RELAY_CLOSED_ERROR = 1;
export const RELAY_CLOSED_IDLE = 2;

/** RelayEngine.spliceStats(). */
export interface RelaySpliceStats {
  /** Bytes written to a destination by splice(2) (also counted in the connections' in/out bytes). */
  spliced_bytes: number;
  /** Pipes created (a pipe is reused from the engine's pool when one is free). */
  pipes_made: number;
  /** Pipes holding bytes now (a direction takes one per stretch of bytes and gives it back empty). */
  pipes_in_use: number;
  /** Directions that went back to recv/send (splice refused, no pipe to be had). */
  fallbacks: number;
}

/**
 * The proxy's native TCP byte path (native/relay_engine.c), bound to the calling thread's event
 * loop: the engine accepts on listeners it owns, connects where it is told and moves bytes both
 * ways without JavaScript; `onEvents` gets its decisions-to-take in batches (see RELAY_*).
 */
export class RelayEngine {
  readonly #h: RelayEngineHandle;
  readonly #n: NativeBinding;

  constructor(onEvents: (events: Float64Array, addresses: string[]) => void) {
    this.#n = native();
    this.#h = this.#n.relayEngine(onEvents);
  }

  /** Hands a listening fd (tcpListen) to the engine, which owns it from then on; the listener id. */
  listen(fd: number): number {
    try {
      return this.#n.relayListen(this.#h, fd);
    } catch (err) {
      throw socketError('relay listen', err);
    }
  }

  unlisten(listener: number): void {
    this.#n.relayUnlisten(this.#h, listener);
  }

  /** Starts the real-server connect of an accepted client; 0, or the errno of an immediate failure. */
  connect(conn: number, address: string, port: number, timeoutMs: number, head: Buffer | null): number {
    return this.#n.relayConnect(this.#h, conn, address, port, Math.max(1, Math.round(timeoutMs)), head);
  }

  /** Closes both sides (no event follows); false when the connection is gone already. `out` = [in, out] bytes. */
  destroy(conn: number, out: Float64Array): boolean {
    return this.#n.relayDestroy(this.#h, conn, out);
  }

  /** The live connection's [in, out] bytes into `out`; false when it is gone. */
  bytes(conn: number, out: Float64Array): boolean {
    return this.#n.relayBytes(this.#h, conn, out);
  }

  /** Idle timeouts of established connections (before / after a FIN). */
  timeouts(idleMs: number, finMs: number): void {
    this.#n.relayTimeouts(this.#h, Math.max(1, Math.round(idleMs)), Math.max(1, Math.round(finMs)));
  }

  /**
   * Zero-copy for streams: a direction that has moved `afterBytes` and keeps filling the 64 KiB
   * buffer moves on with splice(2) through a pooled pipe; -1: never (recv/send only).
   */
  splice(afterBytes: number): void {
    this.#n.relaySplice(this.#h, afterBytes < 0 ? -1 : Math.round(afterBytes));
  }

  /** What splicing did so far on this engine. */
  spliceStats(): RelaySpliceStats {
    const out = new Float64Array(4);
    this.#n.relayStats(this.#h, out);
    return { spliced_bytes: out[0]!, pipes_made: out[1]!, pipes_in_use: out[2]!, fallbacks: out[3]! };
  }

  /** Every listener and connection closed, no events; the engine stays usable. */
  closeAll(): void {
    this.#n.relayClose(this.#h);
  }
}

/**
 * Raises the nice value of the calling thread only (Linux keeps one per thread) by `delta`; needs
 * no privilege. Returns the new value, or undefined when the system refused.
 */
export function raiseThreadNice(delta: number): number | undefined {
  try {
    return native().raiseThreadNice(delta);
  } catch {
    return undefined;
  }
}

/** libnftables output flags (libnftables(3)): NFT_CTX_OUTPUT_JSON. */
export const NFT_OUTPUT_JSON = 1 << 4;

/**
 * libnftables through the addon (dlopen of libnftables.so.1 at run time). Each run() is one
 * command buffer executed on the libuv thread pool; a context runs one buffer at a time.
 */
export const libnftables = {
  /** Null when libnftables can be used, else why not (dlopen's message). Loads the addon. */
  problem(): string | null {
    return native().nftLoad();
  },
  open(): NftHandle {
    try {
      return native().nftOpen();
    } catch (err) {
      if (err instanceof KeepaliveError) throw err;
      throw new KeepaliveError('E_NATIVE', `libnftables: ${errorMessage(err)}`, { cause: err });
    }
  },
  run(handle: NftHandle, commands: string, outputFlags = 0): Promise<NftRunResult> {
    return native().nftRun(handle, commands, outputFlags);
  },
  close(handle: NftHandle): void {
    native().nftClose(handle);
  },
  /**
   * Named counters of one table (family: NFPROTO_INET 1, NFPROTO_NETDEV 5) from one raw
   * nfnetlink dump on the thread pool: name -> [packets, bytes].
   */
  counters(family: number, table: string): Promise<Record<string, [number, number]>> {
    return native().nftCounters(family, table);
  },
  /**
   * Elements of one set or map from one raw nfnetlink dump on the thread pool: [key bytes as hex,
   * data as a host-order u32 (marks) or null, ms until expiry, timeout ms] (0 = none).
   */
  setElements(family: number, table: string, set: string): Promise<Array<[string, number | null, number, number]>> {
    return native().nftSetElements(family, table, set);
  },
};

/**
 * Conntrack entries by connection mark, from one ctnetlink dump on the thread pool: for each of
 * `marks` that has entries, [TCP ESTABLISHED, everything else]; `entries`: the table's size.
 */
export function conntrackCountByMark(marks: readonly number[]): Promise<{ counts: Map<number, { active: number; inactive: number }>; entries: number }> {
  return native()
    .conntrackCountByMark([...marks])
    .then((r) => ({ counts: new Map(Object.entries(r.counts).map(([k, [a, i]]) => [Number(k), { active: a, inactive: i }])), entries: r.entries }));
}

/** Deletes the conntrack entries carrying any of `marks` (ctnetlink, on the thread pool). */
export function conntrackDeleteByMark(marks: readonly number[]): Promise<void> {
  return native().conntrackDeleteByMark([...marks]);
}

/** True when the addon can be loaded (for diagnostics; operations throw E_NATIVE otherwise). */
export function nativeAvailable(): boolean {
  try {
    native();
    return true;
  } catch {
    return false;
  }
}

/**
 * flock(fd, LOCK_EX | LOCK_NB) on a descriptor opened with node:fs: true when this process now
 * holds the lock, false when another one does. Throws E_NATIVE when the addon is not built.
 */
export function flockExclusive(fd: number): boolean {
  const n = native();
  try {
    return n.flockExclusive(fd);
  } catch (err) {
    throw new KeepaliveError('E_SOCKET', `flock: ${errorMessage(err)}`, { cause: err });
  }
}
