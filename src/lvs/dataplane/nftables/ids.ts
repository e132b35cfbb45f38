/**
 * Stable names for kernel objects and marks. Pure.
 *
 * A service's objects are named after a hash of its canonical key ("s1a2b3c4d_…"), and each
 * destination's mark is a hash of (service key, role, endpoint): the same on every director with
 * the same config, across restarts and reloads, so connection state synced between directors
 * (conntrack marks, DR connection-table entries, persistence templates) means the same server on
 * both. A collision (rare: 32 bits) is resolved by rehashing with a counter; 0 is never used.
 */
import { keyedHashString } from '../../hash.js';

/** A stable 32-bit hash of a string (FNV-1a + fmix32, the shared hash with key 0). */
export const hash32 = (s: string): number => keyedHashString(s, 0);

export class IdRegistry {
  readonly #ids = new Map<string, number>();
  readonly #used = new Set<number>();
  readonly #names = new Map<string, string>();
  readonly #usedNames = new Set<string>();

  /** Object-name prefix of a service. */
  serviceName(serviceKey: string): string {
    let n = this.#names.get(serviceKey);
    if (n) return n;
    for (let attempt = 0; ; attempt++) {
      n = `s${hash32(attempt ? `${serviceKey}#${attempt}` : serviceKey).toString(16).padStart(8, '0')}`;
      if (!this.#usedNames.has(n)) break;
    }
    this.#names.set(serviceKey, n);
    this.#usedNames.add(n);
    return n;
  }

  /** Mark of a destination (role 'rs') or of the sorry server (role 'sorry') of a service. */
  destId(serviceKey: string, role: 'rs' | 'sorry', endpointKey: string): number {
    const k = `${serviceKey}|${role}|${endpointKey}`;
    let id = this.#ids.get(k);
    if (id !== undefined) return id;
    for (let attempt = 0; ; attempt++) {
      id = hash32(attempt ? `${k}#${attempt}` : k);
      if (id !== 0 && !this.#used.has(id)) break;
    }
    this.#ids.set(k, id);
    this.#used.add(id);
    return id;
  }

  /** Forgets a service's names and marks (after it is removed). */
  dropService(serviceKey: string): void {
    const n = this.#names.get(serviceKey);
    if (n) {
      this.#usedNames.delete(n);
      this.#names.delete(serviceKey);
    }
    for (const [k, id] of this.#ids) {
      if (k.startsWith(`${serviceKey}|`)) {
        this.#ids.delete(k);
        this.#used.delete(id);
      }
    }
  }
}
