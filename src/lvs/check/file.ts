/**
 * FILE_CHECK (keepalived check_file.c + trackers/track_file.c, the real-server side).
 *
 * The file's first 127 bytes are read as a number the way keepalived does (strtol base 0:
 * leading blanks, optional sign, "0x" hex, leading-0 octal, anything after the number
 * ignored; no number = 0). A file that does not exist or cannot be read counts as 0, like
 * keepalived. A number outside [-2^31, 2^31] is ignored (the previous value stays, as
 * keepalived logs "Invalid number ... ignoring").
 *
 * - weight = 0: value 0 = success, any other value = failure.
 * - weight != 0: status = value x weight (clamped to the int range). Status INT_MIN is
 *   keepalived's IPVS_WEIGHT_FAULT = failure; any other status = success with
 *   `weightOffset = status`, which keepalived adds to the real server's weight
 *   (src/lvs/health.ts does the adding).
 *
 * keepalived re-reads the file on inotify events; keepalive-ts reads it on every attempt
 * (delay_loop), so a change is seen within delay_loop seconds.
 */
import { open } from 'node:fs/promises';
import type { FileCheck } from '../../config/types.js';
import { ABORTED, raceAbort, type CheckResult, type Checker } from './types.js';

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

/** C strtol(s, NULL, 0) over the text; NaN when the value is out of keepalived's range. */
export function parseTrackFileValue(text: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)?/.exec(text)!;
  const digits = m[2];
  if (digits === undefined) return 0;
  let v: bigint;
  if (/^0[xX]/.test(digits)) v = BigInt(digits);
  else if (digits.length > 1 && digits.startsWith('0')) v = BigInt('0o' + digits.slice(1));
  else v = BigInt(digits);
  if (m[1] === '-') v = -v;
  if (v < BigInt(INT_MIN) || v > BigInt(INT_MAX) + 1n) return Number.NaN;
  return Number(v);
}

/** keepalived weight_range(): clamp to the C int range. */
function weightRange(v: number): number {
  return Math.min(INT_MAX, Math.max(INT_MIN, v));
}

export function createFileChecker(cfg: FileCheck): Checker {
  let last = 0;
  async function readValue(): Promise<{ value: number; note: string }> {
    let text = '';
    try {
      const fh = await open(cfg.file, 'r');
      try {
        const buf = Buffer.alloc(127);
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        text = buf.subarray(0, bytesRead).toString('latin1');
      } finally {
        await fh.close();
      }
    } catch (err) {
      return { value: 0, note: ` (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}, counted as 0)` };
    }
    const v = parseTrackFileValue(text);
    if (Number.isNaN(v)) return { value: last, note: ` (invalid number ignored, kept ${last})` };
    return { value: v, note: '' };
  }
  return {
    type: 'FILE_CHECK',
    async run(signal) {
      if (signal.aborted) return ABORTED;
      const r = await raceAbort<{ value: number; note: string } | null>(readValue(), signal, null);
      if (r === null) return ABORTED;
      last = r.value;
      const base = `${cfg.file} = ${r.value}${r.note}`;
      if (cfg.weight === 0) return r.value === 0 ? { ok: true, detail: base } : { ok: false, detail: `${base}: non-zero` };
      const status = weightRange(r.value * cfg.weight);
      if (status === INT_MIN) return { ok: false, detail: `${base}: x ${cfg.weight} = fault` };
      return { ok: true, detail: `${base}: x ${cfg.weight} = ${status}`, weightOffset: status };
    },
  };
}
