/**
 * vrrp_track_process, the shell: counts the processes matching each [[vrrp_track_process]] and
 * reports when a quorum is gained or lost. The matching and quorum rules are pure (tracking.ts).
 *
 * Where the events come from:
 *   - the kernel's process events connector (NETLINK_CONNECTOR, CN_IDX_PROC), as keepalived: a
 *     full /proc scan at start, then every fork / exec / comm change / exit arrives as an event
 *     and only that one pid is (re)read. A process that dies is seen within the time it takes
 *     the event to reach the loop (well under a millisecond of work).
 *   - /proc polling where the connector is not available: the kernel serves process events in the
 *     initial network namespace only, so a daemon running in its own namespace (containers, the
 *     namespace labs) rescans /proc every PROCESS_POLL_MS instead. A death is then seen within
 *     PROCESS_POLL_MS plus one scan.
 * Either way a connector error (events lost: ENOBUFS) triggers a rescan. All file reads are
 * asynchronous: nothing here holds the VRRP event loop.
 */
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import type { VrrpTrackProcessConfig } from '../config/index.js';
import { errorMessage } from '../util/errors.js';
import { processMatchSpec, processMatches, processQuorumMet, processTransition, type ProcessEntry, type ProcessMatchSpec } from './tracking.js';

/** Rescan interval when the process events connector is not available. */
export const PROCESS_POLL_MS = 500;

const NETLINK_CONNECTOR = 11;
const CN_IDX_PROC = 1;
const CN_VAL_PROC = 1;
const PROC_CN_MCAST_LISTEN = 1;
const NLMSG_DONE = 3;
const PROC_EVENT_FORK = 0x1;
const PROC_EVENT_EXEC = 0x2;
const PROC_EVENT_COMM = 0x200;
const PROC_EVENT_EXIT = 0x80000000;

interface RawSocket {
  on(ev: 'message', cb: (msg: Buffer) => void): unknown;
  on(ev: 'error', cb: (err: Error) => void): unknown;
  send(msg: Uint8Array[], opts: object, cb: (err?: Error) => void): void;
  close(): void;
}

interface Tracked {
  cfg: VrrpTrackProcessConfig;
  spec: ProcessMatchSpec;
  pids: Set<number>;
  ok: boolean | null;
  timer: NodeJS.Timeout | undefined;
}

export interface ProcessMonitorOptions {
  log: Logger;
  /** A tracked process's status changed (true: quorum met). */
  onChange: (name: string, ok: boolean) => void;
  /** Force /proc polling (tests); default: the connector when the kernel offers it. */
  mode?: 'auto' | 'poll';
  pollMs?: number;
  /** Where /proc is (tests never need another). */
  proc?: string;
}

/** /proc/PID/stat's comm and state; null for a vanished pid or a zombie. */
export function parseStat(text: string): { comm: string; state: string } | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const state = text.slice(close + 2, close + 3);
  if (state === 'Z' || state === 'X' || state === '') return null;
  return { comm: text.slice(open + 1, close), state };
}

/** argv from /proc/PID/cmdline (NUL-separated, NUL-terminated). */
export function parseCmdline(buf: Buffer): string[] {
  const text = buf.toString('utf8');
  const parts = text.split('\0');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export class ProcessMonitor {
  readonly #tracked = new Map<string, Tracked>();
  readonly #opts: ProcessMonitorOptions;
  readonly #proc: string;
  #mode: 'connector' | 'poll' | 'stopped' = 'stopped';
  #socket: RawSocket | undefined;
  #poll: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #rescanWanted = false;
  #scans = 0;

  constructor(configs: readonly VrrpTrackProcessConfig[], opts: ProcessMonitorOptions) {
    this.#opts = opts;
    this.#proc = opts.proc ?? '/proc';
    for (const cfg of configs) this.#add(cfg);
  }

  /** 'connector' (kernel events), 'poll' (rescans every pollMs) or 'stopped'. */
  get mode(): 'connector' | 'poll' | 'stopped' {
    return this.#mode;
  }

  /** Full /proc scans done so far. */
  get scans(): number {
    return this.#scans;
  }

  /** true: quorum met; false: not; null: not scanned yet / unknown name. */
  status(name: string): boolean | null {
    return this.#tracked.get(name)?.ok ?? null;
  }

  /** Matching pids right now (status, tests). */
  count(name: string): number {
    return this.#tracked.get(name)?.pids.size ?? 0;
  }

  #add(cfg: VrrpTrackProcessConfig): void {
    this.#tracked.set(cfg.name, { cfg, spec: processMatchSpec(cfg), pids: new Set(), ok: null, timer: undefined });
  }

  get #needCmdline(): boolean {
    return [...this.#tracked.values()].some((t) => t.spec.fullCommand);
  }

  /** Scans /proc once, then follows process events (or polls). Resolves after the first scan. */
  async start(): Promise<void> {
    if (this.#tracked.size === 0) return;
    const connected = this.#opts.mode === 'poll' ? false : await this.#connect();
    this.#mode = connected ? 'connector' : 'poll';
    await this.rescan();
    if (!connected) {
      this.#poll = setInterval(() => void this.rescan(), this.#opts.pollMs ?? PROCESS_POLL_MS);
      this.#poll.unref?.();
    }
    this.#opts.log.info({ mode: this.#mode, processes: [...this.#tracked.keys()] }, `track_process: following processes by ${this.#mode === 'connector' ? 'kernel process events' : `/proc polling every ${this.#opts.pollMs ?? PROCESS_POLL_MS} ms`}`);
  }

  stop(): void {
    this.#mode = 'stopped';
    clearInterval(this.#poll);
    this.#poll = undefined;
    try { this.#socket?.close(); } catch { /* already closed */ }
    this.#socket = undefined;
    for (const t of this.#tracked.values()) clearTimeout(t.timer);
  }

  /** Reload: new set of tracked processes; kept ones (same settings) keep their state. */
  async update(configs: readonly VrrpTrackProcessConfig[]): Promise<void> {
    const next = new Map(configs.map((c) => [c.name, c]));
    for (const [name, t] of this.#tracked) {
      const c = next.get(name);
      if (!c || JSON.stringify(c) !== JSON.stringify(t.cfg)) {
        clearTimeout(t.timer);
        this.#tracked.delete(name);
      }
    }
    for (const c of configs) if (!this.#tracked.has(c.name)) this.#add(c);
    if (this.#mode === 'stopped') await this.start();
    else await this.rescan();
  }

  /** One full /proc scan; concurrent calls share it (and one more runs after, if asked meanwhile). */
  rescan(): Promise<void> {
    if (this.#scanning) {
      this.#rescanWanted = true;
      return this.#scanning;
    }
    this.#scanning = (async () => {
      try {
        do {
          this.#rescanWanted = false;
          await this.#scanOnce();
        } while (this.#rescanWanted && this.#mode !== 'stopped');
      } finally {
        this.#scanning = undefined;
      }
    })();
    return this.#scanning;
  }

  async #scanOnce(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.#proc);
    } catch (err) {
      this.#opts.log.error({ err: errorMessage(err) }, `track_process: cannot read ${this.#proc}`);
      return;
    }
    const found = new Map<string, Set<number>>([...this.#tracked.keys()].map((k) => [k, new Set<number>()]));
    const needCmdline = this.#needCmdline;
    await Promise.all(names.filter((n) => /^[1-9]\d*$/.test(n)).map(async (n) => {
      const entry = await this.#read(Number(n), needCmdline);
      if (!entry) return;
      for (const [name, t] of this.#tracked) if (processMatches(t.spec, entry)) found.get(name)?.add(entry.pid);
    }));
    this.#scans++;
    for (const [name, t] of this.#tracked) {
      t.pids = found.get(name) ?? new Set();
      this.#evaluate(t);
    }
  }

  async #read(pid: number, needCmdline: boolean): Promise<ProcessEntry | null> {
    try {
      const stat = parseStat(await readFile(`${this.#proc}/${pid}/stat`, 'utf8'));
      if (!stat) return null;
      const argv = needCmdline ? parseCmdline(await readFile(`${this.#proc}/${pid}/cmdline`)) : [];
      return { pid, comm: stat.comm, argv };
    } catch {
      return null; // gone meanwhile
    }
  }

  /** A process appeared or changed (fork, exec, comm): (re)check it against every tracked process. */
  async #recheck(pid: number): Promise<void> {
    const entry = await this.#read(pid, this.#needCmdline);
    if (this.#mode === 'stopped') return;
    for (const t of this.#tracked.values()) {
      const had = t.pids.has(pid);
      const has = entry !== null && processMatches(t.spec, entry);
      if (had === has) continue;
      if (has) t.pids.add(pid);
      else t.pids.delete(pid);
      this.#evaluate(t);
    }
  }

  #gone(pid: number): void {
    for (const t of this.#tracked.values()) if (t.pids.delete(pid)) this.#evaluate(t);
  }

  #evaluate(t: Tracked): void {
    const met = processQuorumMet(t.pids.size, t.cfg.quorum, t.cfg.quorum_max);
    // A pending delayed change that no longer applies is dropped.
    if (t.timer && met === t.ok) {
      clearTimeout(t.timer);
      t.timer = undefined;
    }
    const step = processTransition(t.ok, met, { forkDelayMs: t.cfg.fork_delay * 1000, terminateDelayMs: t.cfg.terminate_delay * 1000 });
    if (!step) return;
    if (step.after === undefined) {
      this.#set(t, step.ok);
      return;
    }
    if (t.timer) return; // already waiting for this very change
    t.timer = setTimeout(() => {
      t.timer = undefined;
      if (processQuorumMet(t.pids.size, t.cfg.quorum, t.cfg.quorum_max) === step.ok) this.#set(t, step.ok);
    }, step.after);
  }

  #set(t: Tracked, ok: boolean): void {
    if (t.ok === ok) return;
    t.ok = ok;
    this.#opts.log.info({ track_process: t.cfg.name, ok, processes: t.pids.size }, `track_process ${t.cfg.name}: ${ok ? 'quorum met' : 'quorum lost'} (${t.pids.size} running)`);
    this.#opts.onChange(t.cfg.name, ok);
  }

  /** Opens the process events connector; false where the kernel does not offer it to us. */
  async #connect(): Promise<boolean> {
    let sock: RawSocket;
    try {
      const { RawNetlinkSocket } = createRequire(import.meta.url)('netlink') as { RawNetlinkSocket: new (proto: number, opts: object) => RawSocket };
      sock = new RawNetlinkSocket(NETLINK_CONNECTOR, { localGroups: CN_IDX_PROC });
    } catch (err) {
      this.#opts.log.debug({ err: errorMessage(err) }, 'track_process: no process events connector');
      return false;
    }
    const cn = Buffer.alloc(24);
    cn.writeUInt32LE(CN_IDX_PROC, 0);
    cn.writeUInt32LE(CN_VAL_PROC, 4);
    cn.writeUInt16LE(4, 16);
    cn.writeUInt32LE(PROC_CN_MCAST_LISTEN, 20);
    const hdr = Buffer.alloc(16);
    hdr.writeUInt32LE(16 + cn.length, 0);
    hdr.writeUInt16LE(NLMSG_DONE, 4);
    hdr.writeUInt32LE(process.pid, 12);
    const ok = await new Promise<boolean>((resolve) => {
      sock.on('error', (err) => {
        // Events were lost (ENOBUFS) or the socket failed: count from scratch.
        this.#opts.log.warn({ err: errorMessage(err) }, 'track_process: process events connector error; rescanning /proc');
        void this.rescan();
      });
      sock.send([hdr, cn], {}, (err) => {
        if (err) this.#opts.log.info({ err: errorMessage(err) }, 'track_process: the process events connector is not available here (network namespace?)');
        resolve(!err);
      });
    });
    if (!ok) {
      try { sock.close(); } catch { /* ignore */ }
      return false;
    }
    sock.on('message', (msg) => this.#onEvents(msg));
    this.#socket = sock;
    return true;
  }

  #onEvents(buf: Buffer): void {
    let off = 0;
    while (off + 16 <= buf.length) {
      const len = buf.readUInt32LE(off);
      if (len < 16 || off + len > buf.length) break;
      // nlmsghdr (16) + cn_msg (20) + proc_event: what (4), cpu (4), timestamp (8), data.
      const ev = off + 36;
      if (len >= 36 + 16) {
        const what = buf.readUInt32LE(ev);
        const data = ev + 16;
        if (what === PROC_EVENT_FORK && len >= 36 + 16 + 16) {
          const pid = buf.readUInt32LE(data + 8);
          const tgid = buf.readUInt32LE(data + 12);
          if (pid === tgid) void this.#recheck(pid);
        } else if ((what === PROC_EVENT_EXEC || what === PROC_EVENT_COMM) && len >= 36 + 16 + 8) {
          const pid = buf.readUInt32LE(data);
          const tgid = buf.readUInt32LE(data + 4);
          if (pid === tgid) void this.#recheck(pid);
        } else if (what === PROC_EVENT_EXIT && len >= 36 + 16 + 8) {
          const pid = buf.readUInt32LE(data);
          const tgid = buf.readUInt32LE(data + 4);
          if (pid === tgid) this.#gone(pid);
        }
      }
      off += (len + 3) & ~3;
    }
  }
}
