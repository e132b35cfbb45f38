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
 * the connection opened.
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

  constructor() {
    this.engine = new RelayEngine((ev, addrs) => this.dispatch(ev, addrs));
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
    private readonly onDestroyed: (conn: RelayConn, inBytes: number, outBytes: number) => void,
  ) {}

  destroy(): void {
    const out = this.hub.scratch;
    if (!this.hub.engine.destroy(this.id, out)) return;
    this.hub.handlers.delete(this.id);
    this.onDestroyed(this, out[0]!, out[1]!);
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
    const ctx = this.admit(address, port);
    if (!ctx) {
      this.hub.engine.destroy(id, this.hub.scratch);
      return;
    }
    const hub = this.hub;
    let dest: Dest | null = null;
    let failed: Set<Dest> | null = null;
    let sorryTried = false;
    const pending = {
      destroy: () => {
        if (!hub.engine.destroy(id, hub.scratch)) return;
        hub.handlers.delete(id);
        if (dest) dest.inactConns--, dest.checkThresholds();
        gone();
      },
    };
    const gone = () => {
      this.pending.delete(pending);
      this.releaseClient(ctx);
      this.drainCheck();
    };
    const timeoutMs = this.core.spec.proxy?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const head = this.proxyHeader(ctx, this.core.address, this.core.port);
    const attempt = (): void => {
      for (;;) {
        const chosen = this.choose(ctx, failed, sorryTried);
        if (chosen === null) {
          dest = null;
          hub.engine.destroy(id, hub.scratch);
          hub.handlers.delete(id);
          gone();
          return;
        }
        dest = chosen.dest;
        sorryTried = chosen.sorryTried;
        const errno = hub.engine.connect(id, dest.address, dest.port, timeoutMs, head);
        if (errno === 0) return;
        failNow();
      }
    };
    const failNow = () => {
      const d = dest!;
      this.attemptEnded(d, true);
      (failed ??= new Set()).add(d);
      sorryTried ||= d.sorry;
      dest = null;
    };
    let conn: RelayConn | null = null;
    hub.handlers.set(id, {
      connected: () => {
        const d = dest!;
        dest = null;
        this.pending.delete(pending);
        this.attemptEnded(d, false);
        conn = new RelayConn(hub, id, d, { address: ctx.clientAddress, family: ctx.family, port: ctx.clientPort ?? 0 }, (c, i, o) => this.ended(c, ctx, i, o));
        this.opened(conn);
      },
      connectFailed: () => {
        failNow();
        attempt();
      },
      halfClosed: () => {
        if (conn) this.halfClosed(conn);
      },
      closed: (inBytes, outBytes, reason) => {
        if (!conn) {
          // Closed before connected (cannot happen today: the engine only closes relaying connections).
          pending.destroy();
          return;
        }
        if (reason === RELAY_CLOSED_IDLE) this.idleClosed++;
        this.ended(conn, ctx, inBytes, outBytes);
      },
    });
    this.pending.add(pending);
    attempt();
  }

  private ended(conn: RelayConn, ctx: ScheduleContext, inBytes: number, outBytes: number): void {
    this.releaseClient(ctx);
    this.finished(conn, inBytes, outBytes);
  }
}
