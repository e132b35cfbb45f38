/**
 * accept = false (RFC 5798 Accept_Mode off; keepalived's no_accept / vrrp_strict): a MASTER that
 * is not the address owner must not accept packets addressed to its VIPs. keepalived does it with
 * nftables/iptables rules; so do we, in one small table of our own, named apart from the data
 * plane's:
 *
 *   table inet keepalive_ts_accept
 *     set vips4 / vips6        the VIPs of instances that are MASTER with accept = false
 *     chain in  (input,  priority -1)   VRRP and neighbour discovery pass; daddr in the sets: drop
 *     chain out (output, priority -1)   VRRP and neighbour discovery pass; saddr in the sets: drop
 *
 * ARP is not IP and passes untouched, as do IPv6 neighbour solicitations/adverts, so neighbours
 * still resolve the VIPs (forwarding through a VIP used as a gateway is not addressed to the VIP
 * and is not affected). Every change is one atomic transaction (`nft -f -`): the VIPs are added to
 * the sets before they are put on the interface and removed after they are taken off. The pure
 * script builders are exported for tests; AcceptFilter is the shell.
 */
import { spawn } from 'node:child_process';
import { isIP } from 'node:net';
import { KeepaliveError } from '../util/errors.js';

export const ACCEPT_TABLE = 'keepalive_ts_accept';
export const NFT_BINARY = '/usr/sbin/nft';

/** Creates the table afresh (a leftover of a killed run is replaced in the same transaction). */
export function acceptTableScript(): string {
  const pass = ['meta l4proto 112 accept', 'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept'];
  return [
    `add table inet ${ACCEPT_TABLE}`,
    `delete table inet ${ACCEPT_TABLE}`,
    `table inet ${ACCEPT_TABLE} {`,
    '  set vips4 { type ipv4_addr; }',
    '  set vips6 { type ipv6_addr; }',
    '  chain in {',
    '    type filter hook input priority -1; policy accept;',
    ...pass.map((r) => `    ${r}`),
    '    ip daddr @vips4 counter drop',
    '    ip6 daddr @vips6 counter drop',
    '  }',
    '  chain out {',
    '    type filter hook output priority -1; policy accept;',
    ...pass.map((r) => `    ${r}`),
    '    ip saddr @vips4 counter drop',
    '    ip6 saddr @vips6 counter drop',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Adds or deletes addresses in the sets (addresses of both families; none -> empty script). */
export function acceptElementsScript(op: 'add' | 'delete', addresses: readonly string[]): string {
  const v4 = addresses.filter((a) => isIP(a) === 4);
  const v6 = addresses.filter((a) => isIP(a) === 6);
  const bad = addresses.filter((a) => isIP(a) === 0);
  if (bad.length > 0) throw new KeepaliveError('E_CONFIG_INVALID', `not IP addresses: ${bad.join(', ')}`);
  const lines: string[] = [];
  if (v4.length > 0) lines.push(`${op} element inet ${ACCEPT_TABLE} vips4 { ${v4.join(', ')} }`);
  if (v6.length > 0) lines.push(`${op} element inet ${ACCEPT_TABLE} vips6 { ${v6.join(', ')} }`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

export function acceptDestroyScript(): string {
  return `add table inet ${ACCEPT_TABLE}\ndelete table inet ${ACCEPT_TABLE}\n`;
}

/** Runs one nft transaction (`nft -f -`); rejects with nft's own message. */
export function runNft(script: string, binary = NFT_BINARY): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', (err) => reject(new KeepaliveError('E_SOCKET', `cannot run ${binary}: ${err.message}`, { cause: err })));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new KeepaliveError('E_SOCKET', `${binary} -f - failed (exit ${code}): ${stderr.trim()}`))));
    child.stdin.end(script);
  });
}

/**
 * The shell: one per daemon. Transactions run one at a time, in the order asked (the VRRP side
 * queues VIP changes the same way). The table exists from the first use to close().
 */
export class AcceptFilter {
  readonly #run: (script: string) => Promise<void>;
  readonly #owned = new Map<string, string[]>();
  #chain: Promise<void> = Promise.resolve();
  #created = false;

  constructor(run: (script: string) => Promise<void> = (s) => runNft(s)) {
    this.#run = run;
  }

  #queue(fn: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(fn);
    this.#chain = next.catch(() => undefined);
    return next;
  }

  /** Creates the (empty) table; also done by the first add(). */
  init(): Promise<void> {
    return this.#queue(() => this.#ensure());
  }

  async #ensure(): Promise<void> {
    if (this.#created) return;
    await this.#run(acceptTableScript());
    this.#created = true;
  }

  /** `instance` is MASTER: drop traffic to `addresses` (bare IPs). */
  add(instance: string, addresses: readonly string[]): Promise<void> {
    return this.#queue(async () => {
      await this.#ensure();
      const had = this.#owned.get(instance) ?? [];
      const fresh = addresses.filter((a) => !had.includes(a) && !this.#heldByOther(instance, a));
      const script = acceptElementsScript('add', fresh);
      if (script) await this.#run(script);
      this.#owned.set(instance, [...had, ...addresses.filter((a) => !had.includes(a))]);
    });
  }

  /** `instance` left MASTER (its VIPs are gone): accept its addresses again. */
  remove(instance: string): Promise<void> {
    return this.#queue(async () => {
      const had = this.#owned.get(instance);
      if (!had || !this.#created) return;
      this.#owned.delete(instance);
      const script = acceptElementsScript('delete', had.filter((a) => !this.#heldByOther(instance, a)));
      if (script) await this.#run(script);
    });
  }

  #heldByOther(instance: string, address: string): boolean {
    for (const [name, list] of this.#owned) if (name !== instance && list.includes(address)) return true;
    return false;
  }

  /** Removes the table. Idempotent. */
  close(): Promise<void> {
    return this.#queue(async () => {
      if (!this.#created) return;
      this.#created = false;
      this.#owned.clear();
      await this.#run(acceptDestroyScript());
    });
  }
}
