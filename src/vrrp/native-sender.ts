/**
 * The timing executor of the VRRP instances (instance.ts TimerExecutor) on the addon's sender thread
 * (native/vrrp_sender.c): a MASTER's adverts leave on an absolute schedule and a BACKUP's first
 * advert at takeover leaves at its deadline, neither waiting for the event loop. The frames are the
 * hub's (the same bytes the JS path would send); what to send and when comes from the pure state
 * machine (state.ts timerPlan), re-handed over at every change.
 *
 * Without the addon (pure unit tests) there is no executor and the instances use their clock as
 * before. IPv6 instances have none either: their adverts still leave from the event loop.
 */
import { AdvertSender, type AdvertFrames, type TakeoverExtras } from '../net/native.js';
import type { Clock, NativeTakeover, TimerExecutor } from './instance.js';
import type { TimerPlan } from './state.js';

let shared: AdvertSender | null | undefined;

/** The process's sender thread, or null without the addon. */
export function advertSender(): AdvertSender | null {
  if (shared === undefined) {
    try {
      shared = new AdvertSender();
    } catch {
      shared = null;
    }
  }
  return shared;
}

/**
 * An executor for one instance. `frames(priority)`: the packets of the advert at that priority, or
 * undefined when the transport cannot hand them over (the instance then keeps its JS timer).
 * `extras()`: what the thread does right after a takeover's advert (its VIPs and gratuitous ARPs),
 * or undefined when the shell must do all of it (read at every hand-over, like the frames).
 */
export function nativeExecutor(sender: AdvertSender, clock: Clock, frames: (priority: number) => AdvertFrames | undefined,
  extras?: () => TakeoverExtras | undefined): TimerExecutor {
  let gen = 0;
  let where: { ifindex: number; vrid: number } | undefined;
  let fired: ((sentAt: number | undefined, done?: NativeTakeover) => void) | undefined;
  let handed = false;
  // Takeover callbacks of the last few generations: a job that ran just before the shell replaced it
  // still reports, and VIPs its thread added must reach that (stale) callback, which takes them out.
  const recent = new Map<number, (sentAt: number | undefined, done?: NativeTakeover) => void>();
  const id = sender.job((g, ageMs, d) => {
    const now = clock.now();
    const done = ageMs >= 0 && d.vipsAgeMs !== undefined ? { vipsAt: now - d.vipsAgeMs, vipsErrno: d.vipsErrno, garps: d.garps } : undefined;
    if (g !== gen || !fired) {
      const stale = recent.get(g);
      recent.delete(g);
      if (stale && done) stale(now - ageMs, done);
      return;
    }
    const f = fired;
    fired = undefined;
    recent.delete(g);
    f(ageMs < 0 ? undefined : now - ageMs, handed && ageMs >= 0 ? done ?? { vipsAt: undefined, vipsErrno: d.vipsErrno, garps: d.garps } : undefined);
  });
  return {
    run(plan: TimerPlan, keepPhase: boolean, onFired: (sentAt: number | undefined, done?: NativeTakeover) => void): boolean {
      const f = frames(plan.priority);
      if (!f) return false;
      where = { ifindex: f.ifindex, vrid: f.vrid };
      gen = (gen + 1) >>> 0;
      fired = plan.kind === 'takeover' ? onFired : undefined;
      const x = plan.kind === 'takeover' ? extras?.() : undefined;
      handed = x !== undefined;
      if (x) {
        recent.set(gen, onFired);
        for (const g of recent.keys()) if (recent.size > 4) recent.delete(g);
      }
      const delay = plan.at - clock.now();
      sender.schedule(id, gen, plan.kind, f, delay, plan.kind === 'periodic' ? plan.intervalMs : 0, keepPhase, x);
      return true;
    },
    cancel(): void {
      gen = (gen + 1) >>> 0;
      fired = undefined;
      sender.cancel(id);
    },
    heardAt(): number | undefined {
      const ago = where && sender.heardAgo(where.ifindex, where.vrid);
      return ago === undefined ? undefined : clock.now() - ago;
    },
    get sent(): number {
      return sender.stats(id).sent;
    },
    get lateness(): { maxLateUs: number; maxWakeLateUs: number } {
      const { maxLateUs, maxWakeLateUs } = sender.stats(id);
      return { maxLateUs, maxWakeLateUs };
    },
  };
}
