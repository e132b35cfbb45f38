/**
 * Files the daemon owns while it runs (its pid file, the lock next to its control socket), taken
 * before anything else starts so that a second `run` fails at once, without touching the first
 * daemon's files, running a check or a script:
 *
 * - opened with O_NOFOLLOW (a symlink at the path is refused, never followed) and O_CREAT, then
 *   checked with fstat: a regular file, owned by the daemon's uid, one link (no hard link to
 *   something else) — anything else is refused (E_UNSAFE_PATH);
 * - locked with flock(LOCK_EX | LOCK_NB) (native addon): held by another process -> E_ALREADY_RUNNING
 *   naming the pid written in it; the lock dies with the process, so a stale file left by a
 *   kill -9 is simply taken over;
 * - after locking, the path must still name the locked inode (a daemon that was removing it in the
 *   same moment would otherwise leave two holders);
 * - its content becomes our pid (truncate, write; no fsync: readers see it through the page cache, a
 *   pid file is stale after a crash of the machine anyway, and an fsync cost up to ~95 ms of
 *   start-up before the first advert on a busy disk);
 * - release() removes the path only if it still names our inode, then closes (unlocks).
 */
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { KeepaliveError, errorMessage } from '../util/errors.js';
import { flockExclusive } from '../net/native.js';

export class LockedFile {
  #fd: number;
  readonly #ino: number;
  readonly #dev: number;

  private constructor(readonly path: string, fd: number, ino: number, dev: number) {
    this.#fd = fd;
    this.#ino = ino;
    this.#dev = dev;
  }

  /** Takes `path` for this process (see the module comment); `what` names it in errors. */
  static acquire(path: string, what: string, lock: (fd: number) => boolean = flockExclusive): LockedFile {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    for (let attempt = 0; attempt < 3; attempt++) {
      let fd: number;
      try {
        fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o644); // libuv adds O_CLOEXEC
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ELOOP') throw new KeepaliveError('E_UNSAFE_PATH', `${what} ${path} is a symlink; refusing to follow it`);
        throw new KeepaliveError('E_UNSAFE_PATH', `cannot open ${what} ${path}: ${errorMessage(err)}`, { cause: err });
      }
      const st = fstatSync(fd);
      const uid = process.getuid?.() ?? st.uid;
      const problem = !st.isFile() ? 'is not a regular file' : st.uid !== uid ? `is owned by uid ${st.uid}, not ${uid}` : st.nlink !== 1 ? `has ${st.nlink} hard links` : undefined;
      if (problem) {
        closeSync(fd);
        throw new KeepaliveError('E_UNSAFE_PATH', `${what} ${path} ${problem}; refusing to use it`);
      }
      let locked: boolean;
      try {
        locked = lock(fd);
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      if (!locked) {
        closeSync(fd);
        let holder = '';
        try { holder = readFileSync(path, 'utf8').trim(); } catch { /* gone meanwhile */ }
        throw new KeepaliveError('E_ALREADY_RUNNING', `${what} ${path} is locked: keepalive-ts is already running${/^\d+$/.test(holder) ? ` (pid ${holder})` : ''}`);
      }
      let same = false;
      try {
        const now = statSync(path);
        same = now.ino === st.ino && now.dev === st.dev;
      } catch { /* removed by its previous holder in the meantime */ }
      if (!same) { closeSync(fd); continue; }
      ftruncateSync(fd, 0);
      writeSync(fd, `${process.pid}\n`, 0);
      return new LockedFile(path, fd, st.ino, st.dev);
    }
    throw new KeepaliveError('E_ALREADY_RUNNING', `${what} ${path} keeps changing under us; is another keepalive-ts starting?`);
  }

  /** Removes the file if the path still names ours, and unlocks. Idempotent. */
  release(): void {
    if (this.#fd < 0) return;
    try {
      const st = statSync(this.path);
      if (st.ino === this.#ino && st.dev === this.#dev) unlinkSync(this.path);
    } catch { /* already gone */ }
    closeSync(this.#fd);
    this.#fd = -1;
  }
}
