/**
 * Conntrackd: runs and drives one conntrackd (FTFW over UDP on the dedicated sync link) for
 * keepalive-ts, as keepalived users do with conntrackd + primary-backup.sh, without the script:
 *
 *  - start(): writes conntrackd.conf into keepalive-ts's runtime directory (its own lock file,
 *    control socket and log), ends a conntrackd a previous keepalive-ts left running (kill -9 of
 *    the daemon leaves its child), installs the guard table (one nft transaction), spawns
 *    conntrackd in the foreground and supervises it (restarted with a back-off if it exits);
 *  - setRole(): queues the commands of keepalived's script for the new role (conntrackd-plan.ts
 *    ROLE_COMMANDS, ordered by conntrackd-queue.ts RoleQueue). Nothing waits for them: the VRRP
 *    event loop calls setRole and goes on; a newer role replaces commands not started yet; a
 *    MASTER abandons the BACKUP command under way; the same role again is a no-op;
 *  - promote(): the MASTER sequence, resolving once the external cache is committed (bounded):
 *    a new master's VIP add waits for it (not its state machine);
 *  - status(): `conntrackd -s` (read every few seconds, off the event loop), the last commit, the
 *    commands run and failed, and the guard table's counters (peer datagrams accepted, others
 *    dropped by reason);
 *  - close(): after a handover, lets the peer acknowledge the last updates (bounded), then stops
 *    conntrackd and removes the guard table. conntrackd runs in its own process group.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, openSync, readSync, closeSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { libnftables } from '../net/native.js';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { LibnftablesTransport } from '../lvs/dataplane/nftables/transport.js';
import type { ConntrackdConfig } from '../config/types.js';
import {
  conntrackdConf,
  conntrackdPaths,
  conntrackdSettings,
  GUARD_COUNTERS,
  GUARD_TABLE,
  guardRemoval,
  guardRuleset,
  parseConntrackdQueues,
  parseConntrackdStats,
  type ConntrackdRole,
  type ConntrackdStats,
} from './conntrackd-plan.js';
import { RoleQueue, type RunningCommand } from './conntrackd-queue.js';

export interface ConntrackdLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ConntrackdOptions {
  readonly config: ConntrackdConfig;
  /** sync.interface: the dedicated link conntrackd talks on. */
  readonly interface: string;
  /** Runtime directory for conntrackd's files (created 0700). */
  readonly dir: string;
  readonly log?: ConntrackdLog;
  /** How often `conntrackd -s` is read for status (ms). Default 2000. */
  readonly statsMs?: number;
}

export interface GuardCounters {
  accepted: number;
  drop_interface: number;
  drop_source: number;
}

export interface ConntrackdStatus {
  running: boolean;
  pid: number | null;
  restarts: number;
  role: ConntrackdRole;
  address: string;
  destination_address: string;
  port: number;
  commands_run: number;
  commands_failed: number;
  last_error: string | null;
  /** Last promotion: when (ms since epoch), how long the -c … -B sequence took. */
  last_commit: { at: number; ms: number } | null;
  /** Last completed demotion sequence (-t -n): when (the resync request, ms since epoch). */
  last_resync_request: number | null;
  /** Commits of entries that reached the external cache after a promotion's commit. */
  late_commits: number;
  stats: ConntrackdStats | null;
  /** Datagrams to conntrackd's port: accepted from the peer, dropped by reason (packets). */
  guard: GuardCounters | null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** How long after a promotion late entries of the external cache are still committed (ms). */
const CATCH_UP_MS = 3000;

/** Bound of one `conntrackd -C conf <opt>` (ms): a hung one is ended and logged. */
const COMMAND_TIMEOUT_MS = 5000;

/** A command slower than this is logged with its duration (ms). */
const SLOW_COMMAND_MS = 1000;

/** The first IPv4 address of an interface, or undefined. */
function ipv4Of(ifname: string): string | undefined {
  return networkInterfaces()[ifname]?.find((a) => a.family === 'IPv4')?.address;
}

export class Conntrackd {
  readonly #opts: ConntrackdOptions;
  readonly #paths: ReturnType<typeof conntrackdPaths>;
  readonly #address: string;
  #child: ChildProcess | undefined;
  #closing = false;
  #restarts = 0;
  /** The role sequences, one command at a time. */
  readonly #queue: RoleQueue;
  /** The last MASTER sequence has committed the external cache (-c done). */
  #committed = false;
  /** promote() callers waiting for that commit. */
  readonly #commitWaiters: Array<() => void> = [];
  #commandsRun = 0;
  #commandsFailed = 0;
  #lastError: string | null = null;
  #lastCommit: { at: number; ms: number } | null = null;
  #lastResync: number | null = null;
  #lateCommits = 0;
  #stats: ConntrackdStats | null = null;
  #guard: GuardCounters | null = null;
  #statsTimer: NodeJS.Timeout | undefined;
  #nft: LibnftablesTransport | undefined;

  private constructor(opts: ConntrackdOptions, address: string) {
    this.#opts = opts;
    this.#paths = conntrackdPaths(opts.dir);
    this.#address = address;
    this.#queue = new RoleQueue({
      run: (opt) => (opt === '-f' ? { done: this.#flushAfterCommit().then(() => true), abort: () => undefined } : this.#start1(opt)),
      onAbandon: (opt, role, ms) => {
        this.#opts.log?.warn({ opt, role, ms: Math.round(ms) }, 'conntrackd: MASTER: abandoned the command of the previous role still under way; committing first');
      },
      onCommit: ({ ok, ms }) => {
        if (ok) {
          this.#committed = true;
          this.#opts.log?.info({ ms: Math.round(ms) }, 'conntrackd: MASTER: external cache committed to the kernel');
        } else {
          this.#opts.log?.warn({ ms: Math.round(ms), err: this.#lastError }, 'conntrackd: MASTER: committing the external cache failed; the peer\'s connections are not in the kernel');
        }
        this.#releaseCommitWaiters();
      },
      onSequenceDone: async (role, ms) => {
        this.#releaseCommitWaiters();
        if (role === 'master') {
          this.#lastCommit = { at: Date.now(), ms };
          this.#opts.log?.info({ ms: Math.round(ms) }, 'conntrackd: MASTER: caches resynchronised, bulk update sent');
          await this.#catchUp();
        } else {
          this.#lastResync = Date.now();
        }
      },
    });
  }

  static async start(opts: ConntrackdOptions): Promise<Conntrackd> {
    try {
      accessSync(opts.config.binary, constants.X_OK);
    } catch {
      throw new KeepaliveError('E_DATAPLANE_UNAVAILABLE', `sync.conntrackd.binary ${opts.config.binary} is not an executable (install the Debian package conntrackd)`);
    }
    const address = opts.config.address ?? ipv4Of(opts.interface);
    if (!address) throw new KeepaliveError('E_CONFIG_INVALID', `sync.conntrackd: interface ${opts.interface} has no IPv4 address; set sync.conntrackd.address`);
    const c = new Conntrackd(opts, address);
    await c.#start();
    return c;
  }

  get role(): ConntrackdRole {
    return this.#queue.role;
  }

  async #start(): Promise<void> {
    const o = this.#opts;
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    this.#killStale();
    writeFileSync(this.#paths.conf, conntrackdConf(conntrackdSettings(o.config, o.interface, this.#address, o.dir)), { mode: 0o600 });
    this.#nft = new LibnftablesTransport();
    await this.#nft.run(guardRuleset({ destination: o.config.destination_address, port: o.config.port, interface: o.interface }));
    this.#spawn();
    await this.#waitSocket(5000);
    this.setRole('backup');
    const every = o.statsMs ?? 2000;
    const tick = () => {
      this.#statsTimer = setTimeout(() => void this.refreshStats().finally(() => !this.#closing && tick()), every);
      this.#statsTimer.unref();
    };
    tick();
  }

  /** A conntrackd left by a previous run of keepalive-ts with this runtime directory (kill -9). */
  #killStale(): void {
    let pid: number;
    try {
      pid = Number(readFileSync(this.#paths.pid, 'utf8').trim());
    } catch {
      pid = 0;
    }
    if (pid > 1) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (cmd.includes('conntrackd') && cmd.includes(this.#paths.conf)) {
          process.kill(pid, 'SIGKILL');
          this.#opts.log?.warn({ pid }, 'conntrackd: ended the conntrackd a previous keepalive-ts left running');
        }
      } catch {
        /* not running */
      }
    }
    for (const f of [this.#paths.lock, this.#paths.socket, this.#paths.pid]) rmSync(f, { force: true });
  }

  #spawn(): void {
    // Its own process group: a signal to the daemon's group (Ctrl-C, kill of the group) must not
    // end conntrackd before a graceful stop has handed the connections over; close() ends it.
    const child = spawn(this.#opts.config.binary, ['-C', this.#paths.conf], { stdio: 'ignore', detached: true });
    this.#child = child;
    child.on('error', (err) => {
      this.#lastError = `cannot run ${this.#opts.config.binary}: ${err.message} (install the Debian package conntrackd)`;
      this.#opts.log?.warn({ err: err.message }, 'conntrackd: cannot run');
    });
    if (child.pid) writeFileSync(this.#paths.pid, `${child.pid}\n`);
    child.on('exit', (code, signal) => {
      if (this.#child === child) this.#child = undefined;
      if (this.#closing) return;
      this.#restarts++;
      const delay = Math.min(10_000, 500 * 2 ** Math.min(5, this.#restarts - 1));
      this.#lastError = `conntrackd exited (${signal ?? `code ${code}`}); restarting in ${delay} ms`;
      this.#opts.log?.warn({ code, signal, delay }, 'conntrackd exited; restarting');
      setTimeout(() => {
        if (this.#closing) return;
        for (const f of [this.#paths.lock, this.#paths.socket]) rmSync(f, { force: true });
        this.#spawn();
        void this.#waitSocket(5000).then(() => this.setRole(this.#queue.role, true), () => undefined);
      }, delay).unref();
    });
  }

  async #waitSocket(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      try {
        if (statSync(this.#paths.socket).isSocket()) return;
      } catch {
        /* not yet */
      }
      if (!this.#child) break;
      await sleep(20);
    }
    throw new KeepaliveError('E_DATAPLANE_UNAVAILABLE', `conntrackd did not open its control socket ${this.#paths.socket} (see ${this.#paths.log})${this.#lastError ? `: ${this.#lastError}` : ''}`);
  }

  /**
   * Follows the VRRP role of sync.instance. Returns at once; the commands run in the background
   * (the promise, for tests, settles when this role's sequence finished).
   */
  setRole(role: ConntrackdRole, force = false): Promise<void> {
    // The same role again (promote() before the VIPs, then the ownership callback after them):
    // its sequence is queued, running or done already (RoleQueue).
    const q = this.#queue;
    if (force || role !== q.role) {
      if (role === 'master') this.#committed = false;
      else this.#releaseCommitWaiters();
    }
    return q.set(role, force);
  }

  /**
   * Becoming MASTER, before the VIPs go up: queues the MASTER sequence (as setRole) and resolves
   * once the external cache is committed to the kernel (`-c` done), or after `limitMs`, whichever
   * comes first. The first packet that reaches the VIP then finds the peer's connections.
   */
  promote(limitMs: number): Promise<void> {
    if (this.#closing || (this.#queue.role === 'master' && this.#committed)) return Promise.resolve();
    const committed = new Promise<boolean>((resolve) => this.#commitWaiters.push(() => resolve(true)));
    void this.setRole('master');
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), limitMs); });
    return Promise.race([committed, limit]).then((inTime) => {
      clearTimeout(timer);
      if (inTime) return;
      // Every promotion ends in a log line: the VIPs go up without the commit (it goes on).
      const cur = this.#queue.current;
      this.#opts.log?.warn(
        { limit_ms: limitMs, ...(cur ? { command: cur.opt, command_role: cur.role, command_ms: Math.round(performance.now() - cur.since) } : {}) },
        'conntrackd: MASTER: external cache not committed within the limit; the VIPs go up now (the commit goes on)',
      );
    });
  }

  #releaseCommitWaiters(): void {
    for (const w of this.#commitWaiters.splice(0)) w();
  }

  /**
   * Entries that reach the external cache just after the commit (a director that starts and
   * preempts at once asked the peer for a resync a moment before; the answer can land after the
   * promotion) would wait for the next promotion: for a few seconds after becoming MASTER, any
   * entry in the external cache is committed too.
   */
  async #catchUp(): Promise<void> {
    const until = Date.now() + CATCH_UP_MS;
    while (Date.now() < until && this.#queue.role === 'master' && !this.#queue.queued && !this.#closing) {
      await sleep(200);
      const st = await this.#readStats();
      if (!st?.external || st.external.active === 0) continue;
      this.#lateCommits++;
      this.#opts.log?.info({ entries: st.external.active }, 'conntrackd: MASTER: committing entries that arrived after the promotion');
      await this.#run('-c');
      await this.#flushAfterCommit();
      await this.#run('-R');
    }
  }

  #readStats(): Promise<ConntrackdStats | null> {
    return new Promise((resolve) => {
      execFile(this.#opts.config.binary, ['-C', this.#paths.conf, '-s'], { timeout: 5000 }, (err, stdout) => resolve(err ? null : parseConntrackdStats(stdout)));
    });
  }

  /** Runs one `conntrackd -C conf <opt>`; failures are counted, never thrown. */
  #run(opt: string): Promise<boolean> {
    return this.#start1(opt).done;
  }

  /**
   * Starts one `conntrackd -C conf <opt>` (bounded by COMMAND_TIMEOUT_MS); abort() ends its client
   * (conntrackd itself goes on). Failures, timeouts and slow commands are logged with their duration.
   */
  #start1(opt: string): RunningCommand {
    const t0 = performance.now();
    let aborted = false;
    let child: ChildProcess | undefined;
    const done = new Promise<boolean>((resolve) => {
      child = execFile(this.#opts.config.binary, ['-C', this.#paths.conf, opt], { timeout: COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        const ms = Math.round(performance.now() - t0);
        this.#commandsRun++;
        if (aborted) {
          resolve(false);
        } else if (err) {
          this.#commandsFailed++;
          const timedOut = (err as { killed?: boolean }).killed === true;
          this.#lastError = timedOut ? `conntrackd ${opt}: no answer within ${COMMAND_TIMEOUT_MS} ms` : `conntrackd ${opt}: ${(stderr || stdout || err.message).trim().split('\n')[0]}`;
          this.#opts.log?.warn({ opt, ms, err: this.#lastError }, 'conntrackd command failed');
          resolve(false);
        } else {
          if (ms >= SLOW_COMMAND_MS) this.#opts.log?.info({ opt, ms }, 'conntrackd: slow command');
          resolve(true);
        }
      });
    });
    return {
      done,
      abort: () => {
        aborted = true;
        child?.kill('SIGKILL');
      },
    };
  }

  /**
   * `-f` right after `-c` is refused while the commit is still being acknowledged ("ignoring flush
   * command, commit still in progress" in the log, exit code 0): retried until it is taken.
   */
  async #flushAfterCommit(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const before = this.#logSize();
      await this.#run('-f');
      if (!this.#logSince(before).includes('ignoring flush command')) return;
      await sleep(20);
    }
    this.#lastError = 'conntrackd -f: commit still in progress after 2 s';
  }

  #logSize(): number {
    try {
      return statSync(this.#paths.log).size;
    } catch {
      return 0;
    }
  }

  #logSince(offset: number): string {
    try {
      const fd = openSync(this.#paths.log, 'r');
      try {
        const size = statSync(this.#paths.log).size;
        const len = Math.min(64 * 1024, Math.max(0, size - offset));
        const buf = Buffer.alloc(len);
        readSync(fd, buf, 0, len, offset);
        return buf.toString('utf8');
      } finally {
        closeSync(fd);
      }
    } catch {
      return '';
    }
  }

  /** Reads `conntrackd -s` and the guard counters (background; status() returns the last figures). */
  async refreshStats(): Promise<void> {
    this.#stats = await this.#readStats();
    try {
      const raw = await libnftables.counters(1, GUARD_TABLE);
      this.#guard = {
        accepted: raw[GUARD_COUNTERS.accepted]?.[0] ?? 0,
        drop_interface: raw[GUARD_COUNTERS.wrongInterface]?.[0] ?? 0,
        drop_source: raw[GUARD_COUNTERS.wrongSource]?.[0] ?? 0,
      };
    } catch (err) {
      this.#guard = null;
      this.#lastError = `reading the guard table: ${errorMessage(err)}`;
    }
  }

  status(): ConntrackdStatus {
    return {
      running: this.#child !== undefined && this.#child.exitCode === null,
      pid: this.#child?.pid ?? null,
      restarts: this.#restarts,
      role: this.#queue.role,
      address: this.#address,
      destination_address: this.#opts.config.destination_address,
      port: this.#opts.config.port,
      commands_run: this.#commandsRun,
      commands_failed: this.#commandsFailed,
      last_error: this.#lastError,
      last_commit: this.#lastCommit,
      last_resync_request: this.#lastResync,
      late_commits: this.#lateCommits,
      stats: this.#stats,
      guard: this.#guard,
    };
  }

  /** Messages conntrackd has not sent yet or the peer has not acknowledged (FTFW), null when unknown. */
  #unacknowledged(): Promise<number | null> {
    return new Promise((resolve) => {
      execFile(this.#opts.config.binary, ['-C', this.#paths.conf, '-s', 'queue'], { timeout: 2000 }, (err, stdout) => {
        const q = err ? null : parseConntrackdQueues(stdout);
        resolve(q && q.has('txqueue') ? (q.get('txqueue') ?? 0) + (q.get('rsqueue') ?? 0) : null);
      });
    });
  }

  /**
   * Stops conntrackd and removes the guard table. Idempotent. First (a graceful stop: the peer has
   * taken over) conntrackd gets up to `settleMs` to have its last updates acknowledged by the peer
   * (FTFW acknowledges within about a second), so entries the peer's late commits still need are
   * not lost with it; then SIGTERM, and SIGKILL after 2 s.
   */
  async close(settleMs = 0): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#queue.close();
    this.#releaseCommitWaiters();
    clearTimeout(this.#statsTimer);
    const child = this.#child;
    if (child && child.exitCode === null && settleMs > 0) {
      const t0 = Date.now();
      // The role sequence under way (the BACKUP one, -t -n, queued when the VIPs went) finishes first.
      await Promise.race([this.#queue.idle, sleep(settleMs)]);
      let left = await this.#unacknowledged();
      while (left !== null && left > 0 && Date.now() - t0 < settleMs && child.exitCode === null) {
        await sleep(50);
        left = await this.#unacknowledged();
      }
      this.#opts.log?.info({ unacknowledged: left, waited_ms: Date.now() - t0 }, 'conntrackd: last updates acknowledged by the peer; stopping it');
    }
    if (child && child.exitCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(t);
    }
    for (const f of [this.#paths.lock, this.#paths.socket, this.#paths.pid]) rmSync(f, { force: true });
    try {
      await this.#nft?.run(guardRemoval());
    } catch (err) {
      this.#opts.log?.warn({ err: errorMessage(err) }, 'conntrackd: removing the guard table failed');
    } finally {
      this.#nft?.close();
    }
  }
}
