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
 * The script runs through the daemon's ScriptRunner (src/util/script.ts): as its `user`, else
 * global.script_user, else keepalived_script / the daemon's user; a script refused by script
 * security never runs and the attempt is 'unknown' (keepalived disables such a checker), as is
 * one that could not start for lack of descriptors (EMFILE/ENFILE).
 */
import type { MiscCheck } from '../../config/types.js';
import type { CommandResult } from '../../util/exec.js';
import { ScriptRunner, type ScriptRunResult } from '../../util/script.js';
import { ABORTED, LOCAL_RESOURCE_ERRORS, raceAbort, timeoutMs, type CheckResult, type Checker, type CheckerOptions } from './types.js';

/** Maps a finished command to a result (exported for tests of the mapping itself). */
export function miscResult(r: CommandResult, dynamic: boolean, timeoutSeconds: number): CheckResult {
  if (r.error !== undefined && r.errno !== undefined && LOCAL_RESOURCE_ERRORS.has(r.errno)) {
    return { ok: false, unknown: true, detail: `could not run: ${r.error} (no descriptor left on this director: result unknown)` };
  }
  if (r.error !== undefined) return { ok: false, detail: `could not run: ${r.error}` };
  if (r.timedOut) return { ok: false, detail: `timed out after ${timeoutSeconds} s` };
  if (r.code === null) return { ok: false, detail: `killed by ${r.signal ?? 'signal'}` };
  if (r.code === 0) return { ok: true, detail: 'exit 0' };
  if (dynamic && r.code >= 2 && r.code <= 255) return { ok: true, detail: `exit ${r.code}`, weight: r.code - 2 };
  return { ok: false, detail: `exit ${r.code}` };
}

/** The runner used when the caller passes none: the default policy (no script_user, no security). */
let defaultRunner: ScriptRunner | undefined;

export function createMiscChecker(cfg: MiscCheck, opts: CheckerOptions = {}): Checker {
  const ms = timeoutMs(cfg.misc_timeout);
  const scripts = opts.scripts ?? (defaultRunner ??= new ScriptRunner({ policy: () => ({ enable_script_security: false }) }));
  return {
    type: 'MISC_CHECK',
    async run(signal) {
      if (signal.aborted) return ABORTED;
      const r = await raceAbort<ScriptRunResult | null>(scripts.run(cfg.misc_path, [], ms, cfg.user, signal), signal, null);
      if (r === null) return ABORTED;
      if (r.refused !== undefined) return { ok: false, unknown: true, detail: `script refused: ${r.refused}` };
      return miscResult(r as CommandResult, cfg.misc_dynamic, cfg.misc_timeout);
    },
  };
}
