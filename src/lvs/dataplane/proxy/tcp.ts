/**
 * TCP virtual service (worker side): a paused-on-accept listener; each client gets a real
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

class TcpConn {
  /** 'a' = established (active), 'i' = closing (inactive). */
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
}

export class TcpService {
  readonly core: ServiceCore;
  private server: net.Server | null = null;
  /** Live proxied connections. */
  readonly conns = new Set<TcpConn>();
  /** Client sockets still waiting for a real-server connect. */
  private readonly pending = new Set<net.Socket>();
  private draining = false;
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
  constructor(spec: ServiceSpec, emit: EventSink, private readonly admission: Admission = new Admission(), private readonly reusePort = false, cursor?: Int32Array) {
    this.core = new ServiceCore(spec, emit, reusePort ? cursor : undefined);
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

  private listen(): Promise<void> {
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
        this.server = server;
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

  private accept(client: net.Socket): void {
    client.on('error', noop);
    if (this.draining) {
      client.destroy();
      return;
    }
    const clientAddress = client.remoteAddress;
    const clientPort = client.remotePort;
    if (clientAddress === undefined || clientPort === undefined) {
      client.destroy();
      return;
    }
    const a = canonicalAddress(clientAddress);
    if (!a) {
      client.destroy();
      return;
    }
    if (!this.sources.tryAcquire(a.address, this.core.spec.proxy?.maxConnsPerSource)) {
      this.refused++;
      client.destroy();
      return;
    }
    if (!this.admission.tryAcquire()) {
      this.sources.release(a.address);
      this.refused++;
      client.destroy();
      return;
    }
    // The slot and the per-source count are held until the client socket is gone.
    client.once('close', () => {
      this.sources.release(a.address);
      this.admission.release();
    });
    this.pending.add(client);
    const ctx: ScheduleContext = { clientAddress: a.address, clientPort, family: a.family, virtualAddress: this.core.address };
    this.attempt(client, ctx, null, false);
  }

  private attempt(client: net.Socket, ctx: ScheduleContext, failed: Set<Dest> | null, sorryTried: boolean): void {
    if (client.destroyed) {
      this.pending.delete(client);
      this.drainCheck();
      return;
    }
    let dest = this.core.pick(ctx, failed);
    if (dest === null && !sorryTried && this.core.sorryDest) {
      dest = this.core.sorryDest;
      sorryTried = true;
    }
    if (dest === null) {
      this.pending.delete(client);
      this.core.dropped++;
      client.destroy();
      this.drainCheck();
      return;
    }
    const d = dest;
    d.inactConns++;
    d.checkThresholds();
    const upstream = net.connect({ host: d.address, port: d.port, allowHalfOpen: true, noDelay: true });
    let settled = false;
    const fail = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.off('close', onClientClose);
      upstream.destroy();
      d.inactConns--;
      d.checkThresholds();
      if (client.destroyed) {
        this.pending.delete(client);
        this.drainCheck();
        return;
      }
      d.connectErrors++;
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
      d.inactConns--;
      this.established(client, upstream, d, ctx);
    });
  }

  private established(client: net.Socket, upstream: net.Socket, d: Dest, ctx: ScheduleContext): void {
    const core = this.core;
    const conn = new TcpConn(client, upstream, d, { address: ctx.clientAddress, family: ctx.family, port: ctx.clientPort ?? 0 });
    d.activeConns++;
    d.conns++;
    core.conns++;
    this.conns.add(conn);
    if (this.emitConnEvents && !d.sorry) core.emit({ type: 'conn_new', ...this.ref(conn) });
    upstream.on('error', noop);
    const pp = core.spec.proxy?.proxyProtocol;
    if (pp === 'v1' || pp === 'v2') {
      upstream.write(
        encodeProxyHeader(pp, {
          srcAddress: conn.clientAddress,
          srcPort: conn.clientEndpoint.port,
          dstAddress: client.localAddress ?? core.address,
          dstPort: client.localPort ?? core.port,
        }),
      );
    }
    // Idle timeouts: the client socket sees every byte of both directions (read or written).
    client.setTimeout(this.admission.tcpTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
    client.on('timeout', () => {
      this.idleClosed++;
      conn.destroy();
    });
    const onEnd = () => {
      if (conn.state === 'a') {
        conn.state = 'i';
        d.activeConns--;
        d.inactConns++;
        client.setTimeout(this.admission.tcpFinTimeoutMs ?? DEFAULT_FIN_TIMEOUT_MS);
      }
    };
    client.once('end', onEnd);
    upstream.once('end', onEnd);
    // An error aborts both directions; a clean close leaves the other side to finish its
    // half (it closes by itself once its FIN went out and the peer's came in).
    const onClose = (hadError: boolean) => {
      if (hadError) conn.destroy();
      if (++conn.closes === 2) this.finished(conn);
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
    client.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private finished(conn: TcpConn): void {
    const d = conn.dest;
    if (conn.state === 'a') d.activeConns--;
    else d.inactConns--;
    d.checkThresholds();
    const inBytes = conn.client.bytesRead;
    const outBytes = conn.client.bytesWritten;
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
  private drainCheck(): void {
    if (this.conns.size === 0 && this.pending.size === 0 && this.drainWaiters.length > 0) for (const w of [...this.drainWaiters]) w();
  }

  /** Keep persistence templates of live connections from expiring. */
  housekeeping(): void {
    this.core.persistence?.sweep();
    if (this.core.touchDue()) {
      const seen = new Set<string>();
      for (const c of this.conns) {
        if (seen.has(c.clientAddress)) continue;
        seen.add(c.clientAddress);
        if (!c.dest.sorry) this.core.touch(c.clientAddress, c.family, c.dest);
      }
    }
  }

  /** A connection as the contract names it. */
  ref(c: TcpConn): ConnRef {
    return { service: this.core.key, protocol: 'tcp', client: c.clientEndpoint, virtual: this.core.virtual, dest: c.dest.endpoint };
  }

  stats(): ServiceStats {
    const core = this.core;
    const live = new Map<Dest, [number, number]>();
    for (const c of this.conns) {
      const acc = live.get(c.dest) ?? [0, 0];
      acc[0] += c.client.bytesRead;
      acc[1] += c.client.bytesWritten;
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
      dests,
    };
  }
}
