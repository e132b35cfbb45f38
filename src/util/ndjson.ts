/**
 * Newline-delimited JSON framing for the control socket. Pure: feed chunks, get complete lines.
 * A line longer than `maxLine` bytes is reported once as `overflow` and the connection should be
 * closed: we never buffer without bound for a client that never sends a newline.
 */
export type FrameEvent = { kind: 'line'; line: string } | { kind: 'overflow' };

export class LineSplitter {
  private buf = '';
  private overflowed = false;
  constructor(private readonly maxLine: number) {}

  push(chunk: string): FrameEvent[] {
    if (this.overflowed) return [];
    const out: FrameEvent[] = [];
    // The buffer holds no newline between pushes: only a chunk with one completes a line, and the
    // buffer is measured in bytes only when it could be too long (UTF-8 takes at most 3 bytes per
    // UTF-16 unit). A 30 MB reply read in 64 KiB chunks was otherwise scanned whole per chunk.
    const complete = chunk.includes('\n');
    this.buf += chunk;
    let nl: number;
    while (complete && (nl = this.buf.indexOf('\n')) !== -1) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (Buffer.byteLength(line) > this.maxLine) return this.overflow(out);
      const trimmed = line.replace(/\r$/, '');
      if (trimmed.trim() !== '') out.push({ kind: 'line', line: trimmed });
    }
    if (this.buf.length * 3 > this.maxLine && Buffer.byteLength(this.buf) > this.maxLine) return this.overflow(out);
    return out;
  }

  private overflow(out: FrameEvent[]): FrameEvent[] {
    this.overflowed = true;
    this.buf = '';
    out.push({ kind: 'overflow' });
    return out;
  }
}

export interface ControlRequest {
  id?: string | number;
  cmd: string;
  args?: Record<string, unknown>;
}

export type ControlReply =
  | { id?: string | number; ok: true; result: unknown }
  | { id?: string | number; ok: false; error: { code: string; message: string; details?: unknown } };

/** Validates one request line; returns an error reply text for anything that is not a request. */
export function parseRequest(line: string): { ok: true; req: ControlRequest } | { ok: false; message: string } {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { ok: false, message: 'request is not valid JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, message: 'request must be a JSON object' };
  const o = v as Record<string, unknown>;
  if (typeof o.cmd !== 'string') return { ok: false, message: 'request needs a string "cmd"' };
  if (o.id !== undefined && typeof o.id !== 'string' && typeof o.id !== 'number') return { ok: false, message: '"id" must be a string or number' };
  if (o.args !== undefined && (typeof o.args !== 'object' || o.args === null || Array.isArray(o.args))) return { ok: false, message: '"args" must be an object' };
  return { ok: true, req: { id: o.id as string | number | undefined, cmd: o.cmd, args: o.args as Record<string, unknown> | undefined } };
}
