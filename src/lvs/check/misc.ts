/**
 * MISC_CHECK (keepalived check_misc.c): run `misc_path` (keepalived-style argv, no shell)
 * with misc_timeout; the exit status decides.
 *
 * Without misc_dynamic: exit 0 = success, anything else (exit 1..255, killed, timed out,
 * could not start) = failure.
 *
 * With misc_dynamic (keepalived.conf(5) MISC_CHECK and misc_check_child_thread()):
 *   exit 0       success, weight unchanged (no `weight` in the result);
 *   exit 1       failure;
 *   exit 2..255  success, weight = status - 2 (0..253). keepalived applies it as
 *                "RS weight += status - 2 - configured weight", so with a single MISC_CHECK
 *                the RS weight becomes status - 2; src/lvs/health.ts combines several.
 * A timeout (keepalived: SIGTERM then SIGKILL; runCommand: SIGKILL at misc_timeout) or a
 * death by signal is a failure.
 *
 * Limits of src/util/exec.ts runCommand (owned elsewhere): it cannot switch to `user`, and it
 * takes no AbortSignal, so at abort the attempt resolves "aborted" at once while the child
 * runs on until it exits or misc_timeout kills it.
 */
import type { MiscCheck } from '../../config/types.js';
import { runCommand, type CommandResult, resolveUser, type RunAs } from '../../util/exec.js';
import { ABORTED, raceAbort, timeoutMs, type CheckResult, type Checker } from './types.js';

/** Maps a finished command to a result (exported for tests of the mapping itself). */
export function miscResult(r: CommandResult, dynamic: boolean, timeoutSeconds: number): CheckResult {
  if (r.error !== undefined) return { ok: false, detail: `could not run: ${r.error}` };
  if (r.timedOut) return { ok: false, detail: `timed out after ${timeoutSeconds} s` };
  if (r.code === null) return { ok: false, detail: `killed by ${r.signal ?? 'signal'}` };
  if (r.code === 0) return { ok: true, detail: 'exit 0' };
  if (dynamic && r.code >= 2 && r.code <= 255) return { ok: true, detail: `exit ${r.code}`, weight: r.code - 2 };
  return { ok: false, detail: `exit ${r.code}` };
}

export function createMiscChecker(cfg: MiscCheck): Checker {
  const ms = timeoutMs(cfg.misc_timeout);
  // Resolved once: an unknown user is a configuration problem reported by every attempt.
  let runAs: RunAs | undefined;
  let userError: string | undefined;
  try {
    runAs = cfg.user ? resolveUser(cfg.user) : undefined;
  } catch (err) {
    userError = (err as Error).message;
  }
  return {
    type: 'MISC_CHECK',
    async run(signal) {
      if (signal.aborted) return ABORTED;
      if (userError) return { ok: false, detail: `MISC_CHECK user: ${userError}` };
      const r = await raceAbort<CommandResult | null>(runCommand(cfg.misc_path, [], ms, { runAs, signal }), signal, null);
      return r === null ? ABORTED : miscResult(r, cfg.misc_dynamic, cfg.misc_timeout);
    },
  };
}
