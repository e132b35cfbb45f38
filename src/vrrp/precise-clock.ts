/**
 * The VRRP clock of the daemon: every instance's timer (advert, master down, preempt delay) on one
 * timerfd of the addon (native/precise_timer.c), ordered in a binary heap.
 *
 * Why: Node's setTimeout is armed in whole milliseconds from the loop's cached time and can fire
 * up to a millisecond late or early; the previous clock covered the last 1.5 ms before each
 * deadline with setImmediate turns (busy polling: with 100 instances the loop spun for a good part
 * of every second, and a spinning thread is the first the scheduler makes wait). A timerfd wakes
 * the loop when the deadline passes, to the microsecond, and costs nothing in between.
 *
 * Falls back to the setTimeout + setImmediate clock when the addon cannot be loaded (pure unit
 * tests); the daemon cannot run without the addon anyway.
 */
import { PreciseTimer } from '../net/native.js';
import { spinClock, type Clock } from './instance.js';

/** A deadline this close (ms) counts as reached: timerfd and performance.now() read the same clock, a few µs apart. */
const EARLY_MS = 0.02;

interface Entry {
  at: number;
  seq: number;
  fn: (() => void) | undefined;
  /** Position in the heap, -1 once out of it. */
  pos: number;
}

class HeapClock implements Clock {
  readonly #heap: Entry[] = [];
  #seq = 0;
  #timer: PreciseTimer | undefined;
  #firing = false;

  constructor(timer: (fire: () => void) => PreciseTimer) {
    this.#timer = timer(() => this.#fire());
  }

  now(): number {
    return performance.now();
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const e: Entry = { at: performance.now() + Math.max(0, ms), seq: this.#seq++, fn, pos: this.#heap.length };
    this.#heap.push(e);
    this.#up(e.pos);
    if (this.#heap[0] === e && !this.#firing) this.#arm();
    return e;
  }

  clearTimeout(handle: unknown): void {
    const e = handle as Entry | undefined;
    if (!e || e.pos < 0) return;
    const wasTop = e.pos === 0;
    this.#remove(e.pos);
    e.fn = undefined;
    if (wasTop && !this.#firing) this.#arm();
  }

  #arm(): void {
    const top = this.#heap[0];
    if (!top) this.#timer?.disarm();
    else this.#timer?.arm(top.at - performance.now());
  }

  #fire(): void {
    this.#firing = true;
    try {
      for (;;) {
        const top = this.#heap[0];
        if (!top || top.at > performance.now() + EARLY_MS) break;
        this.#remove(0);
        const fn = top.fn;
        top.fn = undefined;
        try {
          fn?.();
        } catch (err) {
          // The other deadlines still run; the error surfaces as an uncaught exception.
          queueMicrotask(() => { throw err; });
        }
      }
    } finally {
      this.#firing = false;
      this.#arm();
    }
  }

  #less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #swap(i: number, j: number): void {
    const h = this.#heap;
    const a = h[i]!;
    const b = h[j]!;
    h[i] = b;
    h[j] = a;
    b.pos = i;
    a.pos = j;
  }

  #up(i: number): void {
    const h = this.#heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[parent]!)) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const h = this.#heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }

  #remove(i: number): void {
    const h = this.#heap;
    const e = h[i]!;
    const last = h.pop()!;
    e.pos = -1;
    if (last === e) return;
    h[i] = last;
    last.pos = i;
    this.#down(i);
    this.#up(last.pos);
  }
}

let shared: Clock | undefined;

/** The daemon's VRRP clock (one timerfd for the process), or the spinning fallback without the addon. */
export function preciseClock(): Clock {
  if (!shared) {
    try {
      shared = new HeapClock((fire) => new PreciseTimer(fire));
    } catch {
      shared = spinClock;
    }
  }
  return shared;
}
