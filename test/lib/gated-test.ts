// Tests that need something a machine may lack (network namespaces, IPv6 on loopback). Without it
// such a test is skipped with the reason in its title, or fails when KEEPALIVE_TS_REQUIRE_NETNS=1
// (which .ci/run and scripts/fresh-machine-test.sh set), so that a run cannot pass vacuously.
// Only tests whose subject is the missing thing are gated; a test that merely needs some loopback
// address uses 127.0.0.1.
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { installTerminationGuard } from './procs.js';

export interface Availability {
  ok: boolean;
  reason?: string;
}

// Every test file that registers a gated test is a harness user: a timeout or Ctrl-C must still
// remove what it started.
installTerminationGuard();

export function gatedTest(
  title: string,
  avail: Availability,
  what: string,
  fn: (t: ExecutionContext) => Promise<void> | void,
): void {
  if (avail.ok) {
    test(title, fn);
  } else if (process.env.KEEPALIVE_TS_REQUIRE_NETNS === '1') {
    test(title, (t) => {
      t.fail(`${what} required (KEEPALIVE_TS_REQUIRE_NETNS=1) but unavailable: ${avail.reason}`);
    });
  } else {
    test.skip(`${title} [skipped: ${avail.reason}]`, () => {});
  }
}

/** Whether /proc/net/if_inet6's text lists ::1 on an interface. */
export function hasIpv6Loopback(ifInet6: string): boolean {
  return ifInet6.split('\n').some((l) => l.trim().startsWith('00000000000000000000000000000001 '));
}

let v6: Availability | undefined;

/** Whether ::1 exists in this process's network namespace. */
export function ipv6LoopbackAvailable(): Availability {
  v6 ??= probeIpv6Loopback();
  return v6;
}

function probeIpv6Loopback(): Availability {
  let text: string;
  try {
    text = readFileSync('/proc/net/if_inet6', 'utf8');
  } catch {
    return { ok: false, reason: 'IPv6 is disabled in this kernel (no /proc/net/if_inet6)' };
  }
  if (!hasIpv6Loopback(text)) {
    return { ok: false, reason: 'no ::1 on loopback (IPv6 disabled here: net.ipv6.conf.lo.disable_ipv6 = 1, as in a default Docker container)' };
  }
  return { ok: true };
}

/** A test whose subject is IPv6 over loopback (::1). */
export function ipv6Test(title: string, fn: (t: ExecutionContext) => Promise<void> | void): void {
  gatedTest(title, ipv6LoopbackAvailable(), 'IPv6 on loopback (::1)', fn);
}
