/**
 * UDP virtual service (worker side): one datagram socket bound to the service address.
 * A flow is keyed by the client's address:port; its first datagram picks a real server
 * (persistence, then the scheduler, then the sorry server) and opens an upstream socket for
 * it, whose replies are sent back to the client from the service socket, so they come from
 * the virtual address. A flow ends after `udpFlowTimeoutMs` (default 300 s, the IPVS udp
 * timeout) without datagrams in either direction.
 *
 * Flows count as inactive connections, as ipvsadm shows UDP. With `ops` (one-packet
 * scheduling) every client datagram is scheduled on its own and counted as one connection;
 * the per-client upstream socket is kept only to route replies back (not counted).
 *
 * A flow whose real server goes to weight 0 keeps it until idle (quiescing). A flow whose
 * real server was removed from the pool is re-scheduled on its next datagram when
 * `expireNodestConn` (default true): keepalived removes a server from the pool when it fails
 * its check, and sending into a dead server until the flow idles out would black-hole the
 * client. With expireNodestConn false the flow keeps its removed server until idle.
 */

import dgram from 'node:dgram';
import { canonicalAddress, endpointText, type Endpoint, type IpFamily } from '../../../util/endpoint.js';
import type { ConnRef, ServiceSpec, ServiceStats, UdpFlowEntry } from '../contract.js';
import { Admission, Dest, SourceCounts, ServiceCore, type EventSink } from './conntable.js';
import type { ScheduleContext } from './types.js';

const DEFAULT_FLOW_TIMEOUT_MS = 300_000;

function noop(): void {}

interface Flow {
  readonly key: string;
  readonly client: Endpoint;
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly family: IpFamily;
  /** The flow's real server; null with ops. */
  dest: Dest | null;
  readonly up: dgram.Socket;
  lastSeen: number;
}

interface RestoredFlow {
  dest: string;
  expiresAt: number;
}

export class UdpService {
  readonly core: ServiceCore;
  private sock: dgram.Socket | null = null;
  private bound = false;
  readonly flows = new Map<string, Flow>();
  private readonly restored = new Map<string, RestoredFlow>();
  private draining = false;
  private drainDone: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerEvery = 0;
  readonly sources = new SourceCounts();
  /** New flows not created: the budget or their address's maxConnsPerSource was used up. */
  refused = 0;

  /**
   * Every flow holds an upstream socket (one descriptor): it takes a slot of the worker-wide
   * Admission budget and counts against its address's maxConnsPerSource; a new flow over either
   * limit is not created (its datagram is dropped and counted as refused).
   */
  constructor(spec: ServiceSpec, emit: EventSink, private readonly admission: Admission = new Admission()) {
    this.core = new ServiceCore(spec, emit);
    this.armTimer();
  }

  get serving(): boolean {
    return this.bound && !this.draining;
  }

  get timeoutMs(): number {
    return this.core.spec.proxy?.udpFlowTimeoutMs ?? this.admission.udpTimeoutMs ?? DEFAULT_FLOW_TIMEOUT_MS;
  }

  /** Re-arm the sweep timer when the flow timeout changed (called after applySpec). */
  armTimer(): void {
    const every = Math.max(20, Math.min(1000, Math.floor(this.timeoutMs / 4)));
    if (this.timer && every === this.timerEvery) return;
    if (this.timer) clearInterval(this.timer);
    this.timerEvery = every;
    this.timer = setInterval(() => this.sweep(), every);
  }

  serve(): Promise<void> {
    if (this.sock && this.bound) {
      this.draining = false;
      return Promise.resolve();
    }
    this.draining = false;
    const sock = dgram.createSocket({ type: this.core.family === 6 ? 'udp6' : 'udp4' });
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        sock.close();
        reject(err);
      };
      sock.once('error', onError);
      sock.on('message', (msg, rinfo) => this.fromClient(msg, rinfo));
      sock.bind({ address: this.core.address, port: this.core.port, exclusive: true }, () => {
        sock.off('error', onError);
        sock.on('error', noop);
        this.sock = sock;
        this.bound = true;
        resolve();
      });
    });
  }

  /** No new flows from now on; open flows continue for up to drainMs, then everything closes. */
  unserve(drainMs: number): Promise<void> {
    if (!this.sock) return Promise.resolve();
    if (this.drainDone) {
      // Already draining: a shorter drain (0 = now, e.g. a second stop signal) ends it at once;
      // the first caller's promise resolves through drainDone.
      if (drainMs === 0) this.drainDone();
      return Promise.resolve();
    }
    this.draining = true;
    if (this.flows.size === 0 || drainMs === 0) {
      this.closeAll();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => this.drainDone?.(), drainMs);
      this.drainDone = () => {
        clearTimeout(t);
        this.drainDone = null;
        this.closeAll();
        resolve();
      };
    });
  }

  destroyAll(): void {
    this.draining = true;
    this.closeAll();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private closeAll(): void {
    for (const f of [...this.flows.values()]) this.expire(f);
    if (this.sock) {
      try {
        this.sock.close();
      } catch {
        /* already closed */
      }
    }
    this.sock = null;
    this.bound = false;
    this.drainDone = null;
  }

  /** A flow learned from the peer: the client's next datagram goes to its destination (if still pooled). */
  restoreFlow(f: UdpFlowEntry): void {
    if (!(f.expiresInMs > 0) || f.client.family !== this.core.family) return;
    const key = `${f.client.address}|${f.client.port}`;
    if (this.flows.has(key)) return;
    this.restored.set(key, { dest: endpointText(f.dest), expiresAt: Date.now() + Math.min(f.expiresInMs, this.timeoutMs) });
  }

  private pickFor(ctx: ScheduleContext, key: string | null): Dest | null {
    if (key !== null && this.restored.size > 0) {
      const r = this.restored.get(key);
      if (r) {
        this.restored.delete(key);
        const d = this.core.all.get(r.dest);
        if (r.expiresAt > Date.now() && d && d.inPool && !d.sorry) return d;
      }
    }
    return this.core.pick(ctx, null) ?? this.core.sorryDest;
  }

  private fromClient(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const core = this.core;
    const key = `${rinfo.address}|${rinfo.port}`;
    let flow = this.flows.get(key);
    const now = Date.now();
    const ops = core.spec.ops;
    let dest: Dest | null;
    if (flow) {
      flow.lastSeen = now;
      if (ops) {
        dest = this.pickFor(this.ctx(flow.clientAddress, flow.clientPort, flow.family), null);
        if (dest) dest.conns++, core.conns++;
      } else {
        dest = flow.dest!;
        if (!dest.inPool && core.spec.proxy?.expireNodestConn !== false) {
          const next = this.pickFor(this.ctx(flow.clientAddress, flow.clientPort, flow.family), null);
          this.releaseFlowDest(flow, true);
          dest = next;
          if (dest) this.bindFlowDest(flow, dest);
          else {
            this.expire(flow);
            flow = undefined;
          }
        }
      }
    } else {
      if (this.draining) return;
      const a = canonicalAddress(rinfo.address);
      if (!a) return;
      dest = this.pickFor(this.ctx(a.address, rinfo.port, a.family), key);
      if (dest === null) {
        core.dropped++;
        return;
      }
      if (!this.sources.tryAcquire(a.address, core.spec.proxy?.maxConnsPerSource)) {
        this.refused++;
        return;
      }
      if (!this.admission.tryAcquire()) {
        this.sources.release(a.address);
        this.refused++;
        return;
      }
      const up = dgram.createSocket({ type: dest.family === 6 ? 'udp6' : 'udp4' });
      up.on('error', noop);
      const client: Endpoint = { address: a.address, family: a.family, port: rinfo.port };
      const f: Flow = { key, client, clientAddress: a.address, clientPort: rinfo.port, family: a.family, dest: null, up, lastSeen: now };
      up.on('message', (reply, r) => this.fromServer(f, reply, r));
      this.flows.set(key, f);
      flow = f;
      if (ops) dest.conns++, core.conns++;
      else this.bindFlowDest(f, dest);
    }
    if (!dest || !flow) {
      core.dropped++;
      return;
    }
    dest.inBytes += msg.length;
    core.inBytes += msg.length;
    dest.inPkts++;
    core.inPkts++;
    flow.up.send(msg, dest.port, dest.address);
  }

  private ctx(clientAddress: string, clientPort: number, family: IpFamily): ScheduleContext {
    return { clientAddress, clientPort, family, virtualAddress: this.core.address };
  }

  private bindFlowDest(f: Flow, d: Dest): void {
    f.dest = d;
    d.inactConns++;
    d.checkThresholds();
    d.conns++;
    this.core.conns++;
    if (!d.sorry) this.core.emit({ type: 'udp_flow_new', ...this.ref(f, d), timeoutMs: this.timeoutMs });
  }

  private releaseFlowDest(f: Flow, emit: boolean): void {
    const d = f.dest;
    if (!d) return;
    f.dest = null;
    d.inactConns--;
    d.checkThresholds();
    if (emit && !d.sorry) this.core.emit({ type: 'udp_flow_expired', ...this.ref(f, d) });
    if (!d.inPool && d.live === 0) this.core.gc();
  }

  private fromServer(f: Flow, reply: Buffer, r: dgram.RemoteInfo): void {
    const from = canonicalAddress(r.address);
    if (!from) return;
    const rkey = endpointText({ address: from.address, port: r.port });
    let d: Dest | undefined;
    if (f.dest) {
      if (f.dest.text !== rkey) return;
      d = f.dest;
    } else {
      for (const x of this.core.all.values()) if (x.text === rkey) d = x;
      if (!d) return;
    }
    if (!this.sock || this.flows.get(f.key) !== f) return;
    f.lastSeen = Date.now();
    d.outBytes += reply.length;
    this.core.outBytes += reply.length;
    d.outPkts++;
    this.core.outPkts++;
    this.sock.send(reply, f.clientPort, f.clientAddress);
  }

  private expire(f: Flow): void {
    if (this.flows.get(f.key) !== f) return;
    this.flows.delete(f.key);
    this.sources.release(f.clientAddress);
    this.admission.release();
    this.releaseFlowDest(f, true);
    try {
      f.up.close();
    } catch {
      /* already closed */
    }
  }

  private sweep(): void {
    const now = Date.now();
    const timeout = this.timeoutMs;
    const persistent = this.core.touchDue();
    this.core.persistence?.sweep();
    for (const f of this.flows.values()) {
      if (now - f.lastSeen >= timeout) this.expire(f);
      else if (persistent && f.dest && !f.dest.sorry) this.core.touch(f.clientAddress, f.family, f.dest);
    }
    for (const [k, r] of this.restored) if (r.expiresAt <= now) this.restored.delete(k);
    if (this.draining && this.flows.size === 0) this.drainDone?.();
  }

  /** A flow as the contract names it. */
  ref(f: Flow, d: Dest): ConnRef {
    return { service: this.core.key, protocol: 'udp', client: f.client, virtual: this.core.virtual, dest: d.endpoint };
  }

  /** Live flows with the idle time they have left. */
  flowEntries(now: number): UdpFlowEntry[] {
    const out: UdpFlowEntry[] = [];
    for (const f of this.flows.values()) {
      if (!f.dest || f.dest.sorry) continue;
      const left = this.timeoutMs - (now - f.lastSeen);
      if (left > 0) out.push({ type: 'udp_flow', ...this.ref(f, f.dest), expiresInMs: left });
    }
    return out;
  }

  stats(): ServiceStats {
    const core = this.core;
    const dests = [...core.all.values()].map((d) => core.destStats(d, 0, 0));
    return {
      key: core.key,
      kind: 'PROXY',
      serving: this.serving,
      draining: this.draining && this.flows.size > 0,
      sorry: core.sorryDest !== null && core.noRealServer,
      scheduler_in_effect: core.schedulerInEffect,
      conns: core.conns,
      in_pkts: core.inPkts,
      out_pkts: core.outPkts,
      in_bytes: core.inBytes,
      out_bytes: core.outBytes,
      active_conns: 0,
      inact_conns: dests.reduce((a, r) => a + (r.inact_conns ?? 0), 0),
      dropped: core.dropped,
      dests,
    };
  }
}
