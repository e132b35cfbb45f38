/**
 * RoleQueue: the order in which conntrackd's role sequences (conntrackd-plan.ts ROLE_COMMANDS) run,
 * without I/O (the command runner is injected; Conntrackd runs `conntrackd -C conf <opt>`).
 *
 *  - one command at a time; a newer role replaces the commands of the older one not started yet;
 *  - the same role again while its sequence is queued, running or done is a no-op;
 *  - a MASTER promotion never waits behind the BACKUP/FAULT sequence: the command of that sequence
 *    under way (`-t`, `-n`; slow or hung under load) is abandoned (its client ended) and `-c` runs
 *    at once, so the new master's VIPs, which wait for the commit, are not held by it;
 *  - every commit attempt ends in onCommit with its outcome (committed or failed / timed out).
 */
import { ROLE_COMMANDS, type ConntrackdRole } from './conntrackd-plan.js';

/** One command under way: settles true (done), false (failed / timed out); abort() ends it early. */
export interface RunningCommand {
  readonly done: Promise<boolean>;
  abort(): void;
}

export interface CommitOutcome {
  readonly ok: boolean;
  /** Since the MASTER sequence started (ms). */
  readonly ms: number;
  /** Why not committed (ok false): `-c` failed or timed out. */
  readonly reason?: 'failed';
}

export interface RoleQueueHooks {
  run(opt: string, role: ConntrackdRole): RunningCommand;
  /** The MASTER sequence's `-c` finished, committed or not. */
  onCommit?(outcome: CommitOutcome): void;
  /** A sequence ran to its end (not replaced). */
  onSequenceDone?(role: ConntrackdRole, ms: number): Promise<void> | void;
  /** A command of `role` was abandoned for a MASTER promotion. */
  onAbandon?(opt: string, role: ConntrackdRole, ms: number): void;
  now?(): number;
}

export class RoleQueue {
  readonly #hooks: RoleQueueHooks;
  #role: ConntrackdRole = 'backup';
  #queued: ConntrackdRole | null = null;
  #started: ConntrackdRole | null = null;
  #running: Promise<void> | undefined;
  #current: { opt: string; role: ConntrackdRole; since: number; cmd: RunningCommand } | undefined;
  #closed = false;

  constructor(hooks: RoleQueueHooks) {
    this.#hooks = hooks;
  }

  get role(): ConntrackdRole {
    return this.#role;
  }

  /** A role is waiting to start (a sequence in progress should give way). */
  get queued(): ConntrackdRole | null {
    return this.#queued;
  }

  /** The command under way, for logs: option, role, since when (ms of now()). */
  get current(): { opt: string; role: ConntrackdRole; since: number } | undefined {
    const c = this.#current;
    return c ? { opt: c.opt, role: c.role, since: c.since } : undefined;
  }

  /** Settles when no sequence runs. */
  get idle(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  #now(): number {
    return this.#hooks.now?.() ?? performance.now();
  }

  /** Queues `role`'s sequence (force: again, e.g. after conntrackd restarted). Resolves when the queue is idle. */
  set(role: ConntrackdRole, force = false): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (!force && role === this.#role && (this.#queued === role || this.#started === role)) return this.idle;
    this.#role = role;
    this.#queued = role;
    const cur = this.#current;
    if (role === 'master' && cur && cur.role !== 'master') {
      this.#hooks.onAbandon?.(cur.opt, cur.role, this.#now() - cur.since);
      cur.cmd.abort();
    }
    this.#running ??= this.#drain().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** No sequence starts any more (the one under way runs to its end). */
  close(): void {
    this.#closed = true;
    this.#queued = null;
  }

  async #drain(): Promise<void> {
    while (this.#queued && !this.#closed) {
      const role = this.#queued;
      this.#queued = null;
      this.#started = role;
      const t0 = this.#now();
      let replaced = false;
      for (const opt of ROLE_COMMANDS[role]) {
        if (this.#queued && this.#queued !== role) {
          replaced = true; // a newer role: its sequence replaces the rest
          break;
        }
        const cmd = this.#hooks.run(opt, role);
        this.#current = { opt, role, since: this.#now(), cmd };
        let ok: boolean;
        try {
          ok = await cmd.done;
        } finally {
          this.#current = undefined;
        }
        if (opt === '-c' && role === 'master') this.#hooks.onCommit?.(ok ? { ok, ms: this.#now() - t0 } : { ok, ms: this.#now() - t0, reason: 'failed' });
      }
      if (!replaced) await this.#hooks.onSequenceDone?.(role, this.#now() - t0);
    }
  }
}
