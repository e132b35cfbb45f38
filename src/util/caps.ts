import { readFileSync } from 'node:fs';

/** Linux capability numbers this daemon needs (linux/capability.h). */
export const REQUIRED_CAPS = [
  { name: 'CAP_NET_ADMIN', bit: 12, why: 'add and remove VIPs through rtnetlink, join multicast groups' },
  { name: 'CAP_NET_RAW', bit: 13, why: 'send and receive VRRP (IP protocol 112) and gratuitous ARP frames' },
] as const;

/** Parses the `CapEff:` line of /proc/<pid>/status into a bit set. */
export function parseCapEff(procStatus: string): bigint | null {
  const m = /^CapEff:\s*([0-9a-f]+)\s*$/m.exec(procStatus);
  return m ? BigInt(`0x${m[1]}`) : null;
}

/** Names of required capabilities missing from an effective set. */
export function missingCaps(capEff: bigint): string[] {
  return REQUIRED_CAPS.filter((c) => (capEff & (1n << BigInt(c.bit))) === 0n).map((c) => c.name);
}

/** A message naming exactly what is missing, or null when the process may run. */
export function privilegeProblem(procStatus = readFileSync('/proc/self/status', 'utf8')): string | null {
  const eff = parseCapEff(procStatus);
  if (eff === null) return 'cannot read effective capabilities from /proc/self/status';
  const missing = missingCaps(eff);
  if (missing.length === 0) return null;
  const lines = REQUIRED_CAPS.filter((c) => missing.includes(c.name)).map((c) => `  ${c.name}: needed to ${c.why}`);
  return [
    `keepalive-ts run is missing ${missing.join(' and ')}:`,
    ...lines,
    'Run it as root, or grant the capabilities (systemd: AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW;',
    `by hand: setcap cap_net_admin,cap_net_raw+ep "$(readlink -f "$(command -v node)")").`,
  ].join('\n');
}
