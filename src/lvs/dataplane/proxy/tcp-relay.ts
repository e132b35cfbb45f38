/**
 * TCP virtual services on the native relay (native/relay_engine.c): the same service as
 * TcpService (tcp.ts) — admission, per-source limits, scheduling, persistence, sorry server,
 * connect retries, drain, events for sync, counters — with the byte path in C. The engine owns
 * the listening socket and every proxied socket; JavaScript runs a few times per connection (once
 * per loop turn for a batch): accepted -> pick a real server and start the connect; connect
 * failed -> the next server (or the sorry server, or close); connected / first FIN / closed ->
 * the counters. No node:net Socket, no stream, no JavaScript per chunk.
 *
 * Which TCP services use it: all of them while the addon loads (ProxyDataplaneOptions.nativeRelay,
 * default true); UDP services stay on udp.ts. stats().extra.relay_native / relay_node count them.
 *
 * Differences with tcp.ts, none visible through the contract: a client that closes while its
 * real-server connect is in progress is noticed once connected (its FIN is passed on), not
 * before; idle timeouts are the worker's current ones (setLimits) rather than those in force when
 * the connection opened; a FIN is passed on at the end of the engine's next loop turn (not in
 * the turn it was read), so that when both sides close at about the same time one close() per
 * socket does it without a shutdown() (HAProxy saves the same syscall).
 */

import {
  RELAY_ACCEPT,
  RELAY_CLOSED,
  RELAY_CLOSED_IDLE,
  RELAY_CONNECT_FAILED,
  RELAY_CONNECTED,
  RELAY_EVENT_SIZE,
  RELAY_HALF_CLOSED,
  RelayEngine,
  tcpListen,
} from '../../../net/native.js';
import type { Endpoint } from '../../../util/endpoint.js';
import type { ServiceSpec } from '../contract.js';
import type { Admission, Dest, EventSink } from './conntable.js';
import { TcpService, type LiveConn } from './tcp.js';
import type { ScheduleContext } from './types.js';

const DEFAULT_CONNECT_TIMEOUT_MS = 3000;
/** IPVS defaults (ipvsadm --set): established 900 s, after FIN 120 s. */
const DEFAULT_IDLE_TIMEOUT_MS = 900_000;
const DEFAULT_FIN_TIMEOUT_MS = 120_000;

/** What a connection id's events go to. */
interface Handler {
  connected(): void;
  connectFailed(errno: number): void;
  halfClosed(): void;
  closed(inBytes: number, outBytes: number, reason: number): void;
}

/** One relay engine per worker thread, shared by its TCP services. */
export class RelayHub {
  readonly engine: RelayEngine;
  readonly listeners = new Map<number, RelayTcpService>();
  readonly handlers = new Map<number, Handler>();
  readonly scratch = new Float64Array(2);

  /** spliceAfterBytes: see ProxyDataplaneOptions.spliceAfterBytes (undefined: the engine's default). */
  constructor(spliceAfterBytes?: number) {
    this.engine = new RelayEngine((ev, addrs) => this.dispatch(ev, addrs));
    if (spliceAfterBytes !== undefined) this.engine.splice(spliceAfterBytes);
  }

  /** Idle timeouts of established connections (undefined: the IPVS defaults). */
  timeouts(idleMs: number | undefined, finMs: number | undefined): void {
    this.engine.timeouts(idleMs ?? DEFAULT_IDLE_TIMEOUT_MS, finMs ?? DEFAULT_FIN_TIMEOUT_MS);
  }

  private dispatch(ev: Float64Array, addrs: string[]): void {
    let a = 0;
    for (let i = 0; i < ev.length; i += RELAY_EVENT_SIZE) {
      const kind = ev[i]!;
      const id = ev[i + 1]!;
      if (kind === RELAY_ACCEPT) {
        const address = addrs[a++]!;
        const svc = this.listeners.get(ev[i + 2]!);
        if (svc) svc.accepted(id, address, ev[i + 3]!);
        else this.engine.destroy(id, this.scratch);
        continue;
      }
      const h = this.handlers.get(id);
      if (!h) continue;
      if (kind === RELAY_CONNECTED) h.connected();
      else if (kind === RELAY_CONNECT_FAILED) h.connectFailed(ev[i + 2]!);
      else if (kind === RELAY_HALF_CLOSED) h.halfClosed();
      else if (kind === RELAY_CLOSED) {
        this.handlers.delete(id);
        h.closed(ev[i + 2]!, ev[i + 3]!, ev[i + 4]!);
      }
    }
  }
}

class RelayConn implements LiveConn {
  state: 'a' | 'i' = 'a';

  constructor(
    private readonly hub: RelayHub,
    readonly id: number,
    readonly dest: Dest,
    readonly clientEndpoint: Endpoint,
    private readonly svc: RelayTcpService,
    readonly ctx: ScheduleContext,
  ) {}

  destroy(): void {
    const out = this.hub.scratch;
    if (!this.hub.engine.destroy(this.id, out)) return;
    this.hub.handlers.delete(this.id);
    this.svc.connClosed(this, out[0]!, out[1]!, false);
  }

  bytes(): readonly [number, number] {
    const out = this.hub.scratch;
    return this.hub.engine.bytes(this.id, out) ? [out[0]!, out[1]!] : [0, 0];
  }
}

export class RelayTcpService extends TcpService {
  constructor(spec: ServiceSpec, emit: EventSink, admission: Admission, reusePort: boolean, cursor: Int32Array | undefined, private readonly hub: RelayHub) {
    super(spec, emit, admission, reusePort, cursor);
  }

  protected override get relayKind(): 'native' | 'node' {
    return 'native';
  }

  protected override listen(): Promise<void> {
    let lid: number;
    try {
      lid = this.hub.engine.listen(tcpListen(this.core.address, this.core.port, 4096, this.reusePort));
    } catch (err) {
      // The cause carries the errno (EADDRNOTAVAIL while the VIP is not here yet): keep it visible.
      const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
      return Promise.reject(Object.assign(new Error((err as Error).message), { code: cause?.code }));
    }
    this.hub.listeners.set(lid, this);
    this.server = {
      close: () => {
        this.hub.listeners.delete(lid);
        this.hub.engine.unlisten(lid);
      },
    };
    return Promise.resolve();
  }

  /** A client the engine accepted on this service's listener. */
  accepted(id: number, address: string, port: number): void {
    // The engine's inet_ntop text is canonical for IPv4; IPv6 goes through the parser.
    const ctx = address.includes(':') ? this.admit(address, port) : this.admitCanonical(address, 4, port);
    if (!ctx) {
      this.hub.engine.destroy(id, this.hub.scratch);
      return;
    }
    const client = new RelayClient(this, this.hub, id, ctx);
    this.hub.handlers.set(id, client);
    this.pending.add(client);
    client.attempt();
  }

  // The steps of one client (RelayClient), with the bookkeeping of TcpService.
  /** @internal */ chooseFor(c: RelayClient): Dest | null {
    const chosen = this.choose(c.ctx, c.failed, c.sorryTried);
    if (!chosen) return null;
    c.sorryTried = chosen.sorryTried;
    return chosen.dest;
  }

  /** @internal */ connectFailed(c: RelayClient, d: Dest): void {
    this.attemptEnded(d, true);
    (c.failed ??= new Set()).add(d);
    c.sorryTried ||= d.sorry;
  }

  /** @internal */ connected(c: RelayClient, d: Dest): RelayConn {
    this.pending.delete(c);
    this.attemptEnded(d, false);
    const conn = new RelayConn(this.hub, c.id, d, { address: c.ctx.clientAddress, family: c.ctx.family, port: c.ctx.clientPort ?? 0 }, this, c.ctx);
    this.opened(conn);
    return conn;
  }

  /** @internal */ gone(c: RelayClient): void {
    this.pending.delete(c);
    this.releaseClient(c.ctx);
    this.drainCheck();
  }

  /** @internal */ connHalfClosed(conn: RelayConn): void {
    this.halfClosed(conn);
  }

  /** @internal */ connClosed(conn: RelayConn, inBytes: number, outBytes: number, idle: boolean): void {
    if (idle) this.idleClosed++;
    this.releaseClient(conn.ctx);
    this.finished(conn, inBytes, outBytes);
  }

  /** @internal */ get connectTimeoutMs(): number {
    return this.core.spec.proxy?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  /** @internal */ head(ctx: ScheduleContext): Buffer | null {
    return this.proxyHeader(ctx, this.core.address, this.core.port);
  }
}

/** One accepted client, from its first connect attempt to its close. */
class RelayClient implements Handler {
  /** The destination being connected to. */
  dest: Dest | null = null;
  failed: Set<Dest> | null = null;
  sorryTried = false;
  conn: RelayConn | null = null;

  constructor(
    private readonly svc: RelayTcpService,
    private readonly hub: RelayHub,
    readonly id: number,
    readonly ctx: ScheduleContext,
  ) {}

  /** Connect to the next destination; none left: the client is closed (counted as dropped). */
  attempt(): void {
    const svc = this.svc;
    for (;;) {
      const d = svc.chooseFor(this);
      if (d === null) {
        this.dest = null;
        this.hub.engine.destroy(this.id, this.hub.scratch);
        this.hub.handlers.delete(this.id);
        svc.gone(this);
        return;
      }
      this.dest = d;
      const errno = this.hub.engine.connect(this.id, d.address, d.port, svc.connectTimeoutMs, svc.head(this.ctx));
      if (errno === 0) return;
      this.dest = null;
      svc.connectFailed(this, d);
    }
  }

  /** Drain timeout or shutdown while still connecting. */
  destroy(): void {
    if (!this.hub.engine.destroy(this.id, this.hub.scratch)) return;
    this.hub.handlers.delete(this.id);
    const d = this.dest;
    this.dest = null;
    if (d) d.inactConns--, d.checkThresholds();
    this.svc.gone(this);
  }

  connected(): void {
    const d = this.dest!;
    this.dest = null;
    this.conn = this.svc.connected(this, d);
  }

  connectFailed(): void {
    const d = this.dest!;
    this.dest = null;
    this.svc.connectFailed(this, d);
    this.attempt();
  }

  halfClosed(): void {
    if (this.conn) this.svc.connHalfClosed(this.conn);
  }

  closed(inBytes: number, outBytes: number, reason: number): void {
    // The engine only closes relaying connections on its own.
    if (this.conn) this.svc.connClosed(this.conn, inBytes, outBytes, reason === RELAY_CLOSED_IDLE);
  }
}
