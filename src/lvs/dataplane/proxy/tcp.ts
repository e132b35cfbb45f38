/**
 * TCP virtual service (worker side), node:net relay: the fallback when the native relay
 * (tcp-relay.ts over native/relay_engine.c, which subclasses this class and keeps its
 * bookkeeping) is off or cannot start. A paused-on-accept listener; each client gets a real
 * server from persistence or the scheduler, and a connect with a timeout. A failed connect
 * (refused, unreachable, timeout) tries the next real server, excluding those that already
 * failed for this client, then the sorry server, and only then closes the client: a real
 * server that died between two health checks costs no client connection.
 *
 * Once connected the optional PROXY header goes first, then the two sockets are piped both
 * ways; no JavaScript runs per chunk. Both sockets allow half-open: a FIN from one side is
 * forwarded as end() to the other; an error on either destroys both. Byte counts come from
 * the client socket's bytesRead (in) / bytesWritten (out) at close, or at stats time for
 * live connections.
 *
 * Limits (descriptor exhaustion must not reach the control plane): every client holds a slot of
 * the worker-wide Admission budget from accept to close, and counts against its address's
 * maxConnsPerSource; a client over either limit is closed at once. When the budget is used up
 * the listener pauses (closed: the kernel refuses new connections without spending a descriptor
 * here) and is opened again below the low-water mark. An established connection idle for the tcp
 * timeout (after a FIN: tcpfin; keepalived's lvs_timeouts) is closed, like an IPVS entry expiring.
 */

import net from 'node:net';
import { canonicalAddress, type Endpoint, type IpFamily } from '../../../util/endpoint.js';
import type { ConnRef, ServiceSpec, ServiceStats } from '../contract.js';
import { Admission, Dest, ServiceCore, SourceCounts, type EventSink } from './conntable.js';
import { reusePortListen } from '../../../net/native.js';
import { encodeProxyHeader } from './proxy-protocol.js';
import type { ScheduleContext } from './types.js';

const DEFAULT_CONNECT_TIMEOUT_MS = 3000;
/** IPVS defaults (ipvsadm --set): established 900 s, after FIN 120 s. */
const DEFAULT_IDLE_TIMEOUT_MS = 900_000;
const DEFAULT_FIN_TIMEOUT_MS = 120_000;
/** A paused listener that cannot be opened again (address gone) retries this often. */
const RELISTEN_RETRY_MS = 1000;

function noop(): void {}

/** A proxied connection as the service's bookkeeping sees it (node:net sockets or the native relay). */
export interface LiveConn {
  /** 'a' = established (active), 'i' = closing (inactive). */
  state: 'a' | 'i';
  readonly dest: Dest;
  readonly clientEndpoint: Endpoint;
  /** Abort both sides. */
  destroy(): void;
  /** Bytes so far: [from the client, to the client]. */
  bytes(): readonly [number, number];
}

class TcpConn implements LiveConn {
  state: 'a' | 'i' = 'a';
  closes = 0;

  constructor(
    readonly client: net.Socket,
    readonly upstream: net.Socket,
    readonly dest: Dest,
    readonly clientEndpoint: Endpoint,
  ) {}

  get clientAddress(): string {
    return this.clientEndpoint.address;
  }

  get family(): IpFamily {
    return this.clientEndpoint.family;
  }

  /** Abort both sockets. */
  destroy(): void {
    this.client.destroy();
    this.upstream.destroy();
  }

  bytes(): readonly [number, number] {
    return [this.client.bytesRead, this.client.bytesWritten];
  }
}

/** Something that holds an open listener. */
export interface Listener {
  close(): void;
}

export class TcpService {
  readonly core: ServiceCore;
  protected server: Listener | null = null;
  /** Live proxied connections. */
  readonly conns = new Set<LiveConn>();
  /** Clients still waiting for a real-server connect. */
  protected readonly pending = new Set<{ destroy(): void }>();
  protected draining = false;
  private drainWaiters: Array<() => void> = [];
  private emitConnEvents = false;
  /** serve() was asked for and no unserve() since: the listener is open, or paused. */
  private wanted = false;
  /** The listener is closed because the connection budget is used up. */
  private paused = false;
  private relistenTimer: NodeJS.Timeout | null = null;
  readonly sources = new SourceCounts();
  /** Clients closed at once: the budget or their address's maxConnsPerSource was used up. */
  refused = 0;
  /** Connections closed by the idle timeouts. */
  idleClosed = 0;

  /**
   * reusePort: this worker is one of several serving the service, each with its own SO_REUSEPORT
   * socket (the addon makes it; Node 20's net cannot). Otherwise one exclusive listener.
   */
  constructor(spec: ServiceSpec, emit: EventSink, protected readonly admission: Admission = new Admission(), protected readonly reusePort = false, cursor?: Int32Array) {
    this.core = new ServiceCore(spec, emit, reusePort ? cursor : undefined);
  }

  /** What moves the bytes (stats().relay). */
  protected get relayKind(): 'native' | 'node' {
    return 'node';
  }

  setEventsEnabled(on: boolean): void {
    this.emitConnEvents = on;
  }

  get serving(): boolean {
    return this.server !== null || (this.wanted && this.paused);
  }

  serve(): Promise<void> {
    if (this.server) return Promise.resolve();
    this.draining = false;
    if (this.admission.paused) {
      // At the connection budget: opened by resume() once below the low-water mark.
      this.wanted = true;
      this.paused = true;
      return Promise.resolve();
    }
    return this.listen().then(() => { this.wanted = true; });
  }

  /** The budget is used up: close the listener (kept wanted). */
  pause(): void {
    if (!this.server) return;
    this.paused = true;
    this.server.close();
    this.server = null;
  }

  /** Back below the low-water mark: open the listener again. */
  resume(): void {
    if (!this.paused || !this.wanted || this.draining || this.server) return;
    if (this.relistenTimer) clearTimeout(this.relistenTimer);
    this.relistenTimer = null;
    this.listen().then(
      () => { this.paused = false; },
      () => {
        // The address may have gone meanwhile; try again unless unserved or paused again.
        this.relistenTimer = setTimeout(() => { this.relistenTimer = null; if (!this.admission.paused) this.resume(); }, RELISTEN_RETRY_MS);
      },
    );
  }

  /** Opens the listener (this.server) or rejects with the errno as `code`. */
  protected listen(): Promise<void> {
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (c) => this.accept(c));
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        server.close();
        reject(err);
      };
      server.once('error', onError);
      let fd: number | undefined;
      if (this.reusePort) {
        try {
          fd = reusePortListen(this.core.address, this.core.port, 4096);
        } catch (err) {
          // The cause carries the errno (EADDRNOTAVAIL while the VIP is not here yet): keep it visible.
          const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
          reject(Object.assign(new Error((err as Error).message), { code: cause?.code }));
          return;
        }
      }
      const onListening = () => {
        server.off('error', onError);
        server.on('error', noop);
        this.server = { close: () => server.close() };
        resolve();
      };
      if (fd !== undefined) server.listen({ fd }, onListening);
      else server.listen({ host: this.core.address, port: this.core.port, backlog: 4096, exclusive: true }, onListening);
    });
  }

  /**
   * Stop accepting now; wait up to drainMs for open connections, then destroy the rest. A client
   * still waiting for its real-server connect is an open connection too: it is drained, not reset.
   */
  unserve(drainMs: number): Promise<void> {
    this.draining = true;
    this.wanted = false;
    this.paused = false;
    if (this.relistenTimer) clearTimeout(this.relistenTimer);
    this.relistenTimer = null;
    if (this.server) {
      this.server.close();
      this.server = null;
    }
    if (this.conns.size === 0 && this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        for (const c of [...this.pending]) c.destroy();
        for (const c of [...this.conns]) c.destroy();
        done();
      }, drainMs);
      const done = () => {
        clearTimeout(timer);
        this.drainWaiters = this.drainWaiters.filter((w) => w !== done);
        resolve();
      };
      this.drainWaiters.push(done);
    });
  }

  destroyAll(): void {
    this.draining = true;
    this.wanted = false;
    this.paused = false;
    if (this.relistenTimer) clearTimeout(this.relistenTimer);
    this.relistenTimer = null;
    if (this.server) {
      this.server.close();
      this.server = null;
    }
    for (const c of this.pending) c.destroy();
    for (const c of [...this.conns]) c.destroy();
  }

  /**
   * A new client: not while draining, within maxConnsPerSource and the worker's budget. Returns its
   * scheduling context, the slot and per-source count taken (give them back with releaseClient);
   * null (counted as refused where a limit said no) when the client must be closed.
   */
  protected admit(clientAddress: string | undefined, clientPort: number | undefined): ScheduleContext | null {
    if (this.draining || clientAddress === undefined || clientPort === undefined) return null;
    const a = canonicalAddress(clientAddress);
    return a ? this.admitCanonical(a.address, a.family, clientPort) : null;
  }

  /** admit() for an address already in canonical text. */
  protected admitCanonical(address: string, family: IpFamily, clientPort: number): ScheduleContext | null {
    if (this.draining) return null;
    const a = { address, family };
    if (!this.sources.tryAcquire(a.address, this.core.spec.proxy?.maxConnsPerSource)) {
      this.refused++;
      return null;
    }
    if (!this.admission.tryAcquire()) {
      this.sources.release(a.address);
      this.refused++;
      return null;
    }
    return { clientAddress: a.address, clientPort, family: a.family, virtualAddress: this.core.address };
  }

  /** The client is gone: its slot and per-source count go back. */
  protected releaseClient(ctx: ScheduleContext): void {
    this.sources.release(ctx.clientAddress);
    this.admission.release();
  }

  /**
   * The next destination to try (the sorry server once no real server is left; `failed` = those
   * whose connect failed for this client), counted as inactive until connected; null (counted as
   * dropped) when none is left.
   */
  protected choose(ctx: ScheduleContext, failed: Set<Dest> | null, sorryTried: boolean): { dest: Dest; sorryTried: boolean } | null {
    let dest = this.core.pick(ctx, failed);
    if (dest === null && !sorryTried && this.core.sorryDest) {
      dest = this.core.sorryDest;
      sorryTried = true;
    }
    if (dest === null) {
      this.core.dropped++;
      return null;
    }
    dest.inactConns++;
    dest.checkThresholds();
    return { dest, sorryTried };
  }

  /** A connect attempt to `d` ended (failed or connected): it no longer counts as inactive. */
  protected attemptEnded(d: Dest, failed: boolean): void {
    d.inactConns--;
    if (!failed) return; // connected: counted active at once, the total does not change
    d.checkThresholds();
    d.connectErrors++;
  }

  /** Established: counted active, reported to sync. */
  protected opened(conn: LiveConn): void {
    const d = conn.dest;
    d.activeConns++;
    d.conns++;
    this.core.conns++;
    this.conns.add(conn);
    if (this.emitConnEvents && !d.sorry) this.core.emit({ type: 'conn_new', ...this.ref(conn) });
  }

  /** A first FIN: the connection counts as inactive from now on. */
  protected halfClosed(conn: LiveConn): void {
    if (conn.state !== 'a') return;
    conn.state = 'i';
    conn.dest.activeConns--;
    conn.dest.inactConns++;
  }

  private accept(client: net.Socket): void {
    client.on('error', noop);
    const ctx = this.admit(client.remoteAddress, client.remotePort);
    if (!ctx) {
      client.destroy();
      return;
    }
    // The slot and the per-source count are held until the client socket is gone.
    client.once('close', () => this.releaseClient(ctx));
    this.pending.add(client);
    this.attempt(client, ctx, null, false);
  }

  private attempt(client: net.Socket, ctx: ScheduleContext, failed: Set<Dest> | null, sorryTried: boolean): void {
    if (client.destroyed) {
      this.pending.delete(client);
      this.drainCheck();
      return;
    }
    const chosen = this.choose(ctx, failed, sorryTried);
    if (chosen === null) {
      this.pending.delete(client);
      client.destroy();
      this.drainCheck();
      return;
    }
    const d = chosen.dest;
    sorryTried = chosen.sorryTried;
    const upstream = net.connect({ host: d.address, port: d.port, allowHalfOpen: true, noDelay: true });
    let settled = false;
    const fail = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.off('close', onClientClose);
      upstream.destroy();
      if (client.destroyed) d.inactConns--, d.checkThresholds();
      else this.attemptEnded(d, true);
      if (client.destroyed) {
        this.pending.delete(client);
        this.drainCheck();
        return;
      }
      const f = failed ?? new Set<Dest>();
      f.add(d);
      this.attempt(client, ctx, f, sorryTried || d.sorry);
    };
    const onClientClose = () => fail();
    const timer = setTimeout(fail, this.core.spec.proxy?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    client.once('close', onClientClose);
    upstream.on('error', fail);
    upstream.once('connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.off('close', onClientClose);
      upstream.off('error', fail);
      this.pending.delete(client);
      this.attemptEnded(d, false);
      this.established(client, upstream, d, ctx);
    });
  }

  private established(client: net.Socket, upstream: net.Socket, d: Dest, ctx: ScheduleContext): void {
    const core = this.core;
    const conn = new TcpConn(client, upstream, d, { address: ctx.clientAddress, family: ctx.family, port: ctx.clientPort ?? 0 });
    this.opened(conn);
    upstream.on('error', noop);
    const head = this.proxyHeader(ctx, client.localAddress ?? core.address, client.localPort ?? core.port);
    if (head) upstream.write(head);
    // Idle timeouts: the client socket sees every byte of both directions (read or written).
    client.setTimeout(this.admission.tcpTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
    client.on('timeout', () => {
      this.idleClosed++;
      conn.destroy();
    });
    const onEnd = () => {
      if (conn.state === 'a') {
        this.halfClosed(conn);
        client.setTimeout(this.admission.tcpFinTimeoutMs ?? DEFAULT_FIN_TIMEOUT_MS);
      }
    };
    client.once('end', onEnd);
    upstream.once('end', onEnd);
    // An error aborts both directions; a clean close leaves the other side to finish its
    // half (it closes by itself once its FIN went out and the peer's came in).
    const onClose = (hadError: boolean) => {
      if (hadError) conn.destroy();
      if (++conn.closes === 2) this.finished(conn, client.bytesRead, client.bytesWritten);
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
    client.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** The PROXY protocol header the real server gets first, when the service asks for one. */
  protected proxyHeader(ctx: ScheduleContext, dstAddress: string, dstPort: number): Buffer | null {
    const pp = this.core.spec.proxy?.proxyProtocol;
    if (pp !== 'v1' && pp !== 'v2') return null;
    return encodeProxyHeader(pp, { srcAddress: ctx.clientAddress, srcPort: ctx.clientPort ?? 0, dstAddress, dstPort });
  }

  /** Both sides are closed: the connection leaves the table with its byte counts. */
  protected finished(conn: LiveConn, inBytes: number, outBytes: number): void {
    const d = conn.dest;
    if (conn.state === 'a') d.activeConns--;
    else d.inactConns--;
    d.checkThresholds();
    d.inBytes += inBytes;
    d.outBytes += outBytes;
    this.core.inBytes += inBytes;
    this.core.outBytes += outBytes;
    this.conns.delete(conn);
    if (this.emitConnEvents && !d.sorry) this.core.emit({ type: 'conn_end', ...this.ref(conn), inBytes, outBytes });
    if (!d.inPool && d.live === 0) this.core.gc();
    this.drainCheck();
  }

  /** Ends a drain once no connection is open and none is waiting for its real server. */
  protected drainCheck(): void {
    if (this.conns.size === 0 && this.pending.size === 0 && this.drainWaiters.length > 0) for (const w of [...this.drainWaiters]) w();
  }

  /** Keep persistence templates of live connections from expiring. */
  housekeeping(): void {
    this.core.persistence?.sweep();
    if (this.core.touchDue()) {
      const seen = new Set<string>();
      for (const c of this.conns) {
        const a = c.clientEndpoint.address;
        if (seen.has(a)) continue;
        seen.add(a);
        if (!c.dest.sorry) this.core.touch(a, c.clientEndpoint.family, c.dest);
      }
    }
  }

  /** A connection as the contract names it. */
  ref(c: LiveConn): ConnRef {
    return { service: this.core.key, protocol: 'tcp', client: c.clientEndpoint, virtual: this.core.virtual, dest: c.dest.endpoint };
  }

  stats(): ServiceStats {
    const core = this.core;
    const live = new Map<Dest, [number, number]>();
    for (const c of this.conns) {
      const acc = live.get(c.dest) ?? [0, 0];
      const [i, o] = c.bytes();
      acc[0] += i;
      acc[1] += o;
      live.set(c.dest, acc);
    }
    let liveIn = 0;
    let liveOut = 0;
    const dests = [...core.all.values()].map((d) => {
      const l = live.get(d) ?? [0, 0];
      liveIn += l[0];
      liveOut += l[1];
      return core.destStats(d, l[0], l[1]);
    });
    return {
      key: core.key,
      kind: 'PROXY',
      serving: this.serving,
      draining: this.draining && this.conns.size > 0,
      sorry: core.sorryDest !== null && core.noRealServer,
      scheduler_in_effect: core.schedulerInEffect,
      conns: core.conns,
      in_pkts: null,
      out_pkts: null,
      in_bytes: core.inBytes + liveIn,
      out_bytes: core.outBytes + liveOut,
      active_conns: dests.reduce((a, r) => a + (r.active_conns ?? 0), 0),
      inact_conns: dests.reduce((a, r) => a + (r.inact_conns ?? 0), 0),
      dropped: core.dropped,
      relay: this.relayKind,
      dests,
    };
  }
}
