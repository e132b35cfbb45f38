// The "busy director" load shared by the jitter and failover benchmarks: the director also checks
// BUSY_CHECKS real servers (r1's many-port nginx, HTTP_GET every 1 s) and proxies wrk -c50 through
// one of them. keepalive-ts does both itself (BUSY_CHECKS virtual servers of the PROXY kind on the
// director's own address, proxy_workers default: one per CPU); beside keepalived, HAProxy does them
// on the same host (keepalived's own virtual servers need ip_vs, absent here): the same listeners,
// the same checks and the same request (scale.ts haproxyChecksConfig), nbthread = one per CPU like
// our proxy workers.
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Director } from '../test/lib/daemon.js';
import { runWrk, tuneForLoad, virtualServerToml, type WrkResult } from '../test/lib/reliability.js';
import { haproxyCmd } from './health.js';
import { waitFor, type Lab, type LabHost } from './lab.js';
import { haproxyChecksConfig, startManyPortNginx } from './scale.js';

export const BUSY_CHECKS = 1000;
const BUSY_RS_BASE = 10_000;
const BUSY_VS_BASE = 20_000;

/** The real servers (one nginx on r1 listening on BUSY_CHECKS ports); tunes the director and client for load. */
export async function startBusyReals(lab: Lab, r1: LabHost, tune: LabHost[]): Promise<void> {
  for (const h of tune) await tuneForLoad(h);
  await startManyPortNginx(lab, r1, Array.from({ length: BUSY_CHECKS }, (_, i) => BUSY_RS_BASE + i));
}

/** keepalive-ts: the BUSY_CHECKS virtual servers (TOML to append to the director's config). */
export function busyServicesToml(director: string, real: string): string {
  return Array.from({ length: BUSY_CHECKS }, (_, i) => virtualServerToml({ address: director, port: BUSY_VS_BASE + i, reals: [{ ip: real, port: BUSY_RS_BASE + i }], delayLoop: 1 })).join('\n');
}

/** keepalive-ts: resolves once every busy virtual server serves (its first checks passed). */
export async function waitBusyServing(d: Director): Promise<void> {
  await waitFor(async () => (await d.status()).virtual_servers.every((v) => v.serving && v.real_servers.every((r) => r.up)), 60_000, 'every busy virtual server serving', 200);
}

/** Beside keepalived: HAProxy on `host` doing the same checks and proxying; resolves once every first check passed. */
export async function startBusyHaproxy(lab: Lab, host: LabHost, director: string, real: string): Promise<void> {
  const hdir = join(lab.tmpDir, 'haproxy');
  await mkdir(hdir, { recursive: true });
  await writeFile(join(hdir, 'haproxy.cfg'), haproxyChecksConfig({
    dir: hdir, delayLoop: 1, n: BUSY_CHECKS, threads: availableParallelism(), bind: director, real, vsBase: BUSY_VS_BASE, rsBase: BUSY_RS_BASE, maxconn: 4000,
  }));
  host.spawn(['haproxy', '-db', '-f', join(hdir, 'haproxy.cfg')]);
  const sock = join(hdir, 'stats.sock');
  await waitFor(async () => {
    const csv = (await haproxyCmd(sock, 'show stat', 2_000).catch(() => '')).split('\n');
    const ci = csv[0]!.replace(/^# /, '').split(',').indexOf('check_status');
    return ci >= 0 && csv.filter((l) => /^vs\d+,rs,/.test(l) && l.split(',')[ci] === 'L7OK').length === BUSY_CHECKS;
  }, 60_000, 'haproxy: every first check passed', 200);
}

/** wrk -t1 -c50 from `client` through the first busy virtual server of `director`. */
export function busyWrk(client: LabHost, director: string, seconds: number): Promise<WrkResult> {
  return runWrk(client, `http://${director}:${BUSY_VS_BASE}/`, { threads: 1, conns: 50, seconds });
}
