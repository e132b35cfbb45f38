/**
 * The BIRD supervisor (shell): runs this director's own BIRD 2 with the generated config, in
 * keepalive-ts's runtime directory, with its own control socket and pid file, never the system's
 * bird service. It
 *   - starts `bird -f -c <dir>/bird.conf -s <dir>/bird.ctl -P <dir>/bird.pid` under
 *     `setpriv --pdeathsig KILL`, so BIRD dies with keepalive-ts (a dead keepalive-ts must not
 *     keep attracting traffic through a BIRD left behind);
 *   - restarts it with backoff (1 s doubling to 30 s) when it dies on its own;
 *   - applies a new config with `birdc configure` (after `bird -p` accepted it), so protocols whose
 *     configuration did not change keep their sessions;
 *   - reads `show protocols all` / `show bfd sessions` every few seconds for status and metrics;
 *   - stops it (SIGTERM: BIRD closes its sessions with a Cease) when keepalive-ts stops.
 * Every call is asynchronous and none of them is on the VRRP event loop's path.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BgpConfig } from '../config/types.js';
import { birdConfig } from './bird-config.js';
import type { Logger } from 'pino';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { parseBfdSessions, parseShowProtocols, type BfdSession, type BirdProtocol } from './bird-status.js';

export interface BirdBinaries {
  bird: string;
  birdc: string;
  /** util-linux setpriv, for --pdeathsig; null when absent (BIRD then outlives a killed keepalive-ts). */
  setpriv: string | null;
  /** "2.0.12". */
  version: string;
}

const SEARCH = ['/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin', '/usr/local/bin', '/bin'];

function which(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

/**
 * Finds bird and birdc (BIRD 2). Throws E_BIRD_MISSING naming the Debian package when they are not
 * installed or are BIRD 1.
 */
export function findBird(): BirdBinaries {
  const bird = which('bird');
  const birdc = which('birdc');
  if (!bird || !birdc) {
    throw new KeepaliveError('E_BIRD_MISSING', `[bgp] needs BIRD 2, and ${!bird ? 'bird' : 'birdc'} is not installed: install the Debian package bird2 (apt-get install bird2)`);
  }
  const r = spawnSync(bird, ['--version'], { encoding: 'utf8', timeout: 5000 });
  const m = /BIRD version (\d+)\.(\S+)/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`);
  if (!m) throw new KeepaliveError('E_BIRD_MISSING', `[bgp] needs BIRD 2, and ${bird} --version did not say which BIRD it is: install the Debian package bird2`);
  if (m[1] !== '2') throw new KeepaliveError('E_BIRD_MISSING', `[bgp] needs BIRD 2, and ${bird} is BIRD ${m[1]}.${m[2]}: install the Debian package bird2`);
  return { bird, birdc, setpriv: which('setpriv'), version: `${m[1]}.${m[2]}` };
}

/** `bird -p -c file`, synchronously: for `keepalive-ts check`, never for the daemon. */
export function checkBirdConfigSync(bin: Pick<BirdBinaries, 'bird'>, file: string): string | null {
  const r = spawnSync(bin.bird, ['-p', '-c', file], { encoding: 'utf8', timeout: 10_000 });
  if (r.status === 0) return null;
  return `${r.stderr ?? ''}${r.stdout ?? ''}`.trim() || (r.error?.message ?? `bird -p exited with ${r.status}`);
}

/**
 * The host side of [bgp] for `keepalive-ts check`: BIRD 2 installed and accepting the bird.conf
 * generated from this config. The problem, or undefined.
 */
export function birdHostProblem(bgp: BgpConfig, sourceFile: string): string | undefined {
  let bin: BirdBinaries;
  try {
    bin = findBird();
  } catch (err) {
    return errorMessage(err);
  }
  const dir = mkdtempSync(join(tmpdir(), 'keepalive-ts-check-'));
  try {
    const file = join(dir, 'bird.conf');
    writeFileSync(file, birdConfig(bgp, { sourceFile }), { mode: 0o600 });
    const problem = checkBirdConfigSync(bin, file);
    return problem === null ? undefined : `BIRD ${bin.version} refuses the bird.conf generated from [bgp]: ${problem}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `bird -p -c file` (asynchronously): null when BIRD accepts the config, else its complaint. */
export function checkBirdConfig(bin: Pick<BirdBinaries, 'bird'>, file: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(bin.bird, ['-p', '-c', file], { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve(err ? (`${stderr}${stdout}`.trim() || err.message) : null);
    });
  });
}

export interface BirdSnapshot {
  running: boolean;
  pid: number | null;
  restarts: number;
  lastError: string | null;
  protocols: BirdProtocol[];
  bfd: BfdSession[];
  /** Epoch ms of the last successful read, null before the first one. */
  readAt: number | null;
}

export interface BirdSupervisorOptions {
  runtimeDir: string;
  binaries: BirdBinaries;
  log: Logger;
  /** Called after each status read whose BGP states differ from the previous one. */
  onChange?: () => void;
  /** Status poll interval (default 2 s). */
  pollMs?: number;
}

const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30_000;
const STABLE_MS = 60_000;
const BIRDC_TIMEOUT_MS = 3000;

export class BirdSupervisor {
  readonly configFile: string;
  readonly controlSocket: string;
  readonly pidFile: string;
  #child: ChildProcess | undefined;
  #startedAt = 0;
  #restarts = 0;
  #failures = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #stopping = false;
  #lastError: string | null = null;
  #protocols: BirdProtocol[] = [];
  #bfd: BfdSession[] = [];
  #readAt: number | null = null;
  #exited: Promise<void> = Promise.resolve();

  constructor(private readonly opts: BirdSupervisorOptions) {
    this.configFile = join(opts.runtimeDir, 'bird.conf');
    this.controlSocket = join(opts.runtimeDir, 'bird.ctl');
    this.pidFile = join(opts.runtimeDir, 'bird.pid');
  }

  /**
   * Writes the config (refused as a whole if `bird -p` rejects it), kills a BIRD a crashed
   * keepalive-ts left on this runtime directory, and starts BIRD. Does not wait for sessions.
   */
  async start(configText: string): Promise<void> {
    mkdirSync(this.opts.runtimeDir, { recursive: true, mode: 0o700 });
    await this.#writeConfig(configText);
    this.#killLeftover();
    this.#spawn();
    this.#poll = setInterval(() => void this.refresh(), this.opts.pollMs ?? 2000);
    this.#poll.unref();
  }

  async #writeConfig(text: string): Promise<void> {
    const tmp = `${this.configFile}.new`;
    writeFileSync(tmp, text, { mode: 0o600 });
    const problem = await checkBirdConfig(this.opts.binaries, tmp);
    if (problem !== null) {
      rmSync(tmp, { force: true });
      throw new KeepaliveError('E_BIRD', `BIRD refused the generated config: ${problem}`);
    }
    renameSync(tmp, this.configFile);
  }

  /** A BIRD still running on our pid file and control socket (its keepalive-ts was killed). */
  #killLeftover(): void {
    let pid: number;
    try {
      pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    } catch {
      return;
    }
    if (!Number.isInteger(pid) || pid <= 1) return;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      return; // not running
    }
    if (!cmdline.includes('bird') || !cmdline.includes(this.controlSocket)) return;
    this.opts.log.warn({ pid }, 'killing a BIRD left running on this runtime directory');
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }

  #spawn(): void {
    if (this.#stopping) return;
    const b = this.opts.binaries;
    const birdArgs = ['-f', '-c', this.configFile, '-s', this.controlSocket, '-P', this.pidFile];
    const [cmd, args] = b.setpriv ? [b.setpriv, ['--pdeathsig', 'KILL', b.bird, ...birdArgs]] : [b.bird, birdArgs];
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#startedAt = Date.now();
    const log = this.opts.log;
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          logBirdLine(log, buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
    }
    this.#exited = new Promise((resolve) => {
      child.once('error', (err) => {
        this.#lastError = `cannot start BIRD: ${err.message}`;
        log.error({ err: err.message }, 'cannot start BIRD');
      });
      child.once('close', (code, signal) => {
        resolve();
        if (this.#child !== child) return;
        this.#child = undefined;
        this.#protocols = [];
        this.#bfd = [];
        this.opts.onChange?.();
        if (this.#stopping) return;
        const ranMs = Date.now() - this.#startedAt;
        this.#failures = ranMs >= STABLE_MS ? 1 : this.#failures + 1;
        const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** (this.#failures - 1));
        this.#lastError = `BIRD exited (${signal ?? `code ${code}`}) after ${Math.round(ranMs / 100) / 10} s`;
        log.error({ code, signal, restart_in_ms: delay }, `${this.#lastError}; restarting`);
        this.#restartTimer = setTimeout(() => {
          this.#restarts++;
          this.#spawn();
        }, delay);
      });
    });
    log.info({ pid: child.pid, config: this.configFile, control_socket: this.controlSocket }, 'BIRD started');
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null;
  }

  /** `birdc -s <socket> <command...>`; rejects with E_BIRD on failure. */
  birdc(command: string[], timeoutMs = BIRDC_TIMEOUT_MS): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(this.opts.binaries.birdc, ['-s', this.controlSocket, ...command], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) reject(new KeepaliveError('E_BIRD', `birdc ${command.join(' ')}: ${(stderr || stdout || errorMessage(err)).trim()}`, { cause: err }));
        else resolve(stdout);
      });
    });
  }

  /**
   * Applies a new config: checked with `bird -p`, written, then `birdc configure`. BIRD restarts
   * only the protocols whose configuration changed. When BIRD is not running the file is simply
   * what it will start with.
   */
  async configure(text: string): Promise<void> {
    await this.#writeConfig(text);
    if (!this.running) return;
    let last: unknown;
    // Right after a (re)start the socket may not be listening yet.
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        const out = await this.birdc(['configure']);
        if (/Reconfigur(ed|ation in progress)|queueing/.test(out)) {
          this.opts.log.info('BIRD reconfigured');
          return;
        }
        throw new KeepaliveError('E_BIRD', `birdc configure: ${out.trim()}`);
      } catch (err) {
        last = err;
        if (!/connect|No such file|Connection refused/i.test(errorMessage(err))) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw last instanceof Error ? last : new KeepaliveError('E_BIRD', errorMessage(last));
  }

  /** Reads protocols and BFD sessions; keeps the last good read when BIRD does not answer. */
  async refresh(): Promise<void> {
    if (!this.running) return;
    try {
      const [protocols, bfd] = await Promise.all([this.birdc(['show', 'protocols', 'all']), this.birdc(['show', 'bfd', 'sessions']).catch(() => '')]);
      const before = summary(this.#protocols, this.#bfd);
      this.#protocols = parseShowProtocols(protocols);
      this.#bfd = parseBfdSessions(bfd);
      this.#readAt = Date.now();
      if (summary(this.#protocols, this.#bfd) !== before) this.opts.onChange?.();
    } catch (err) {
      if (this.running) this.opts.log.debug({ err: errorMessage(err) }, 'cannot read BIRD status');
    }
  }

  snapshot(): BirdSnapshot {
    return {
      running: this.running,
      pid: this.running ? (this.#child?.pid ?? null) : null,
      restarts: this.#restarts,
      lastError: this.#lastError,
      protocols: this.#protocols,
      bfd: this.#bfd,
      readAt: this.#readAt,
    };
  }

  /** SIGTERM (BIRD closes its sessions with a Cease), SIGKILL after 3 s. Idempotent. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    clearInterval(this.#poll);
    const child = this.#child;
    if (child && child.exitCode === null) {
      // setpriv exec()s bird, so the child pid is BIRD's own.
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await this.#exited;
      clearTimeout(killer);
    }
    this.#child = undefined;
    for (const f of [this.controlSocket, this.pidFile]) if (existsSync(f)) rmSync(f, { force: true });
  }
}

function summary(protocols: BirdProtocol[], bfd: BfdSession[]): string {
  return JSON.stringify([protocols.map((p) => [p.name, p.state, p.bgp?.state, p.channels.map((c) => c.exported)]), bfd.map((s) => [s.address, s.state])]);
}

/** BIRD's own log line ("2026-11-29 10:11:56.614 <INFO> Reconfiguring") at a matching level. */
function logBirdLine(log: Logger, line: string): void {
  const m = /<([A-Z]+)>\s*(.*)$/.exec(line);
  const text = m ? m[2]! : line;
  if (text.trim() === '') return;
  const level = m?.[1];
  if (level === 'ERR' || level === 'FATAL' || level === 'BUG') log.error({ bird: text }, `bird: ${text}`);
  else if (level === 'WARN' || level === 'RMT' || level === 'AUTH') log.warn({ bird: text }, `bird: ${text}`);
  else log.info({ bird: text }, `bird: ${text}`);
}
