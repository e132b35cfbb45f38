import { pino, type Logger, type LevelWithSilent } from 'pino';
import type { Writable } from 'node:stream';

export type { Logger };
export type LogFormat = 'json' | 'pretty';
export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name']);

/** One human line per record: `12:00:01.234 INFO  msg key=value …`. */
export function formatPretty(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString().slice(11, 23) : '';
  const level = (LEVEL_NAMES[Number(rec.level)] ?? String(rec.level)).padEnd(5);
  const extras = Object.entries(rec)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${level} ${String(rec.msg ?? '')}${extras ? ` ${extras}` : ''}\n`;
}

export function createLogger(opts: { level?: LevelWithSilent; format?: LogFormat; destination?: Writable } = {}): Logger {
  const out = opts.destination ?? process.stderr;
  const stream = opts.format === 'pretty' ? { write: (line: string) => out.write(formatPretty(line)) } : out;
  return pino({ level: opts.level ?? 'info', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.epochTime }, stream);
}
