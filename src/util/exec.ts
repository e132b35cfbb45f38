import { spawn } from 'node:child_process';

/**
 * Splits a script line into argv the way keepalived does (no shell): whitespace separates words,
 * single or double quotes group them, a backslash escapes the next character.
 */
export function splitCommand(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** spawn itself failed (no such file, not executable). */
  error?: string;
}

/** Runs a script line plus extra arguments; kills it (SIGKILL) after timeoutMs. Never rejects. */
export function runCommand(line: string, extraArgs: string[] = [], timeoutMs = 0): Promise<CommandResult> {
  const argv = [...splitCommand(line), ...extraArgs];
  return new Promise((resolve) => {
    if (argv.length === 0) return resolve({ code: null, signal: null, timedOut: false, error: 'empty command' });
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', detached: false });
    child.once('error', (err) => { if (timer) clearTimeout(timer); resolve({ code: null, signal: null, timedOut: false, error: err.message }); });
    child.once('exit', (code, signal) => { if (timer) clearTimeout(timer); resolve({ code, signal, timedOut }); });
    if (timeoutMs > 0) timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
  });
}
