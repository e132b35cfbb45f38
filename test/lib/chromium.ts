// Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for tests of the
// status page: a tiny CDP client of our own. It talks over --remote-debugging-pipe (fd 3: commands
// to the browser, fd 4: replies and events; one JSON message per NUL-terminated frame) instead of
// --remote-debugging-port: no WebSocket client is needed (Node 20 has none built in), no port is
// opened, and the browser can run inside a lab namespace (`ip netns exec`) while this process,
// outside it, still drives it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { killGroup, sleep } from './procs.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Flags of a quiet, throwaway headless browser (no sandbox: tests run as root). */
export function chromiumArgs(userDataDir: string): string[] {
  return [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--mute-audio',
    '--disable-dev-shm-usage', `--user-data-dir=${userDataDir}`, '--remote-debugging-pipe', 'about:blank',
  ];
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  method: string;
}

export class Chromium {
  readonly #proc: ChildProcess;
  readonly #in: Writable;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #buf = '';
  #stderr = '';
  #exited = false;

  private constructor(proc: ChildProcess) {
    this.#proc = proc;
    this.#in = proc.stdio[3] as Writable;
    const out = proc.stdio[4] as Readable;
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => this.#onData(chunk));
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => { this.#stderr = (this.#stderr + d).slice(-8000); });
    proc.once('exit', () => {
      this.#exited = true;
      for (const p of this.#pending.values()) p.reject(new Error(`chromium exited during ${p.method}:\n${this.#stderr}`));
      this.#pending.clear();
    });
  }

  /** Starts the browser, inside network namespace `netns` if given. */
  static async launch(opts: { userDataDir: string; netns?: string }): Promise<Chromium> {
    await mkdir(opts.userDataDir, { recursive: true });
    const cmd = [...(opts.netns ? ['ip', 'netns', 'exec', opts.netns] : []), CHROMIUM, ...chromiumArgs(opts.userDataDir)];
    const proc = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true });
    const browser = new Chromium(proc);
    await browser.send('Browser.getVersion', {}, undefined, 30_000);
    return browser;
  }

  /** The last lines chromium wrote to stderr (for failure messages). */
  get stderr(): string {
    return this.#stderr;
  }

  #onData(chunk: string): void {
    this.#buf += chunk;
    let i: number;
    while ((i = this.#buf.indexOf('\0')) >= 0) {
      const frame = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(i + 1);
      let msg: { id?: number; result?: unknown; error?: { message: string } };
      try { msg = JSON.parse(frame) as typeof msg; } catch { continue; }
      if (msg.id === undefined) continue; // an event: this client polls instead of listening
      const p = this.#pending.get(msg.id);
      if (!p) continue;
      this.#pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
    }
  }

  /** Sends one command (to a page when sessionId is given) and resolves with its result. */
  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}, sessionId?: string, timeoutMs = 15_000): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(`chromium has exited:\n${this.#stderr}`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no reply within ${timeoutMs} ms\n${this.#stderr}`));
      }, timeoutMs);
      this.#pending.set(id, {
        method,
        resolve: (v) => { clearTimeout(timer); resolve(v as T); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.#in.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  /** Opens `url` in a new page of the given viewport size. */
  async open(url: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
    const { targetId } = await this.send<{ targetId: string }>('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(this, sessionId);
    await this.send('Emulation.setDeviceMetricsOverride', { ...viewport, deviceScaleFactor: 1, mobile: false }, sessionId);
    const nav = await this.send<{ errorText?: string }>('Page.navigate', { url }, sessionId, 30_000);
    if (nav.errorText) throw new Error(`cannot load ${url}: ${nav.errorText}`);
    // Page.navigate returns once the response starts; wait for the document itself.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ready = await page.evaluate<boolean>(`location.href !== 'about:blank' && document.readyState === 'complete' && document.body !== null`).catch(() => false);
      if (ready) return page;
      if (Date.now() > deadline) throw new Error(`${url} did not finish loading within 30 s`);
      await sleep(50);
    }
  }

  /** Closes the browser; kills its process group if it does not exit. Idempotent. */
  async close(): Promise<void> {
    if (this.#exited) return;
    await this.send('Browser.close', {}, undefined, 5_000).catch(() => undefined);
    for (let i = 0; i < 50 && !this.#exited; i++) await sleep(100);
    if (!this.#exited) killGroup(this.#proc.pid, 'SIGKILL');
  }
}

export class Page {
  constructor(private readonly browser: Chromium, readonly sessionId: string) {}

  /** Evaluates a JS expression in the page (promises awaited) and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.browser.send<{ result: { value?: T }; exceptionDetails?: { text: string; exception?: { description?: string } } }>(
      'Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, this.sessionId);
    if (r.exceptionDetails) throw new Error(`page threw: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  /** Writes a PNG of the whole page to `path`. */
  async screenshot(path: string): Promise<void> {
    const { data } = await this.browser.send<{ data: string }>('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, this.sessionId, 30_000);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, Buffer.from(data, 'base64'));
  }
}
