/**
 * Facts about the director the ruleset depends on, looked up with iproute2 and /proc (a thin
 * shell; the builder takes the answers as plain inputs):
 *  - where client traffic for a DR service arrives (the interface holding the VIP),
 *  - through which interface a DR real server is on-link (and whether it is on-link at all),
 *  - whether IP forwarding is on (NAT / FULLNAT).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { KeepaliveError } from '../../../util/errors.js';
import type { IpFamily } from '../../../util/endpoint.js';

export interface DirectorFacts {
  /** Interfaces holding `address` (the VIP while this director is MASTER); [] when none does. */
  devicesWithAddress(address: string): Promise<string[]>;
  /** The interface through which `address` is reached; `onLink` false when via a gateway. */
  route(address: string): Promise<{ device: string; onLink: boolean; gateway?: string; local: boolean }>;
  /** net.ipv4.ip_forward / net.ipv6.conf.all.forwarding. */
  forwarding(family: IpFamily): Promise<boolean>;
}

function capture(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 5000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new KeepaliveError('E_NETLINK', `${cmd} ${args.join(' ')}: ${(stderr || err.message).trim()}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

/** The real lookups, through `ip -j`. */
export const systemFacts: DirectorFacts = {
  async devicesWithAddress(address) {
    const fam = address.includes(':') ? '-6' : '-4';
    const out = JSON.parse(await capture('ip', ['-j', fam, 'addr', 'show', 'to', address])) as Array<{ ifname?: string }>;
    return [...new Set(out.map((l) => l.ifname).filter((n): n is string => typeof n === 'string'))];
  },
  async route(address) {
    const out = JSON.parse(await capture('ip', ['-j', 'route', 'get', address])) as Array<{ dev?: string; gateway?: string; type?: string }>;
    const r = out[0];
    if (!r?.dev) throw new KeepaliveError('E_NETLINK', `no route to ${address}`);
    const local = r.type === 'local' || r.dev === 'lo';
    return { device: r.dev, onLink: !r.gateway && !local, local, ...(r.gateway ? { gateway: r.gateway } : {}) };
  },
  async forwarding(family) {
    const path = family === 4 ? '/proc/sys/net/ipv4/ip_forward' : '/proc/sys/net/ipv6/conf/all/forwarding';
    return (await readFile(path, 'utf8')).trim() === '1';
  },
};
