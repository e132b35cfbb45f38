import test from 'ava';
import { EventEmitter } from 'node:events';
import type { AddressEvent, AddressInfo, Family, RtnlWatcher } from '../../src/net/rtnl.js';
import { parseCidr } from '../../src/net/rtnl.js';
import { VipManager, type VipRtnl } from '../../src/net/vips.js';

/** In-memory kernel: address table plus notifications to live watchers, as rtnetlink does. */
class FakeRtnl implements VipRtnl {
  addrs = new Map<string, AddressInfo>();
  calls: string[] = [];
  watchers = new Set<EventEmitter & RtnlWatcher>();
  failAdd: string | undefined;

  key(ifindex: number, cidr: string): string {
    const { address, prefix } = parseCidr(cidr);
    return `${ifindex} ${address}/${prefix}`;
  }

  notify(ifindex: number, cidr: string, removed: boolean): void {
    const { address, prefix, family } = parseCidr(cidr);
    const ev: AddressEvent = { index: ifindex, address, prefix, family, removed };
    for (const w of this.watchers) w.emit('address', ev);
  }

  async listAddresses(ifindex?: number, family?: Family): Promise<AddressInfo[]> {
    return [...this.addrs.values()].filter((a) => (ifindex === undefined || a.index === ifindex) && (family === undefined || a.family === family));
  }

  async addAddress(ifindex: number, cidr: string): Promise<void> {
    this.calls.push(`add ${cidr}`);
    if (this.failAdd === cidr) throw new Error('EPERM');
    const k = this.key(ifindex, cidr);
    if (this.addrs.has(k)) return;
    const { address, prefix, family } = parseCidr(cidr);
    this.addrs.set(k, { index: ifindex, address, prefix, family, secondary: false, tentative: false, scope: 0 });
    this.notify(ifindex, cidr, false);
  }

  async deleteAddress(ifindex: number, cidr: string): Promise<void> {
    this.calls.push(`del ${cidr}`);
    this.externalDelete(ifindex, cidr);
  }

  externalDelete(ifindex: number, cidr: string): void {
    if (this.addrs.delete(this.key(ifindex, cidr))) this.notify(ifindex, cidr, true);
  }

  watch(): RtnlWatcher {
    const w = new EventEmitter() as EventEmitter & RtnlWatcher;
    w.close = () => void this.watchers.delete(w);
    this.watchers.add(w);
    return w;
  }

  has(ifindex: number, cidr: string): boolean {
    return this.addrs.has(this.key(ifindex, cidr));
  }
}

const settle = () => new Promise<void>((r) => setImmediate(r));

test('acquire adds every VIP without a dump first (present ones are not an error), release removes them, both idempotent', async (t) => {
  const k = new FakeRtnl();
  await k.addAddress(2, '10.0.0.100/32');
  k.calls = [];
  const m = new VipManager(k, 2, ['10.0.0.100', '10.0.0.101/32', 'FD00::100']);
  await m.acquire();
  await m.acquire();
  t.true(m.acquired);
  t.deepEqual(k.calls, ['add 10.0.0.100/32', 'add 10.0.0.101/32', 'add fd00::100/128'], 'no list round trip; the second acquire adds nothing');
  t.true(k.has(2, '10.0.0.100/32') && k.has(2, '10.0.0.101/32') && k.has(2, 'fd00::100/128'));
  await m.release();
  await m.release();
  t.false(m.acquired);
  t.is(k.addrs.size, 0);
  t.is(k.watchers.size, 0, 'watcher closed on release');
  t.is(m.restored, 0);
});

test('a VIP deleted by someone else while acquired is put back and counted', async (t) => {
  const k = new FakeRtnl();
  const restored: string[] = [];
  const m = new VipManager(k, 2, ['10.0.0.100/32', 'fd00::100/128'], { onRestored: (v) => restored.push(v) });
  await m.acquire();
  k.externalDelete(2, 'fd00::100/128');
  k.externalDelete(2, '10.0.0.1/24'); // not a VIP: ignored
  k.externalDelete(3, '10.0.0.100/32'); // other interface: ignored
  await settle();
  t.true(k.has(2, 'fd00::100/128'));
  t.is(m.restored, 1);
  t.deepEqual(restored, ['fd00::100/128']);
  await m.release();
  k.addrs.clear();
  await settle();
  t.is(m.restored, 1, 'no restoring after release');
});

test('a notification overrun triggers a resync that restores missing VIPs', async (t) => {
  const k = new FakeRtnl();
  const m = new VipManager(k, 2, ['10.0.0.100/32', '10.0.0.101/32']);
  await m.acquire();
  // Lost notification: the address vanished but no event arrived.
  k.addrs.delete(k.key(2, '10.0.0.101/32'));
  for (const w of k.watchers) w.emit('error', new Error('ENOBUFS'));
  await settle();
  await settle();
  t.true(k.has(2, '10.0.0.101/32'));
  t.is(m.restored, 1);
  await m.release();
});

test('failed acquire leaves the manager released and reports the error', async (t) => {
  const k = new FakeRtnl();
  k.failAdd = '10.0.0.101/32';
  const m = new VipManager(k, 2, ['10.0.0.100/32', '10.0.0.101/32']);
  await t.throwsAsync(m.acquire(), { message: 'EPERM' });
  t.false(m.acquired);
  t.is(k.watchers.size, 0);
  k.failAdd = undefined;
  await m.acquire();
  t.true(k.has(2, '10.0.0.101/32'));
  await m.release();
});

test('background restore errors go to onError', async (t) => {
  const k = new FakeRtnl();
  const errors: unknown[] = [];
  const m = new VipManager(k, 2, ['10.0.0.100/32'], { onError: (e) => errors.push(e) });
  await m.acquire();
  k.failAdd = '10.0.0.100/32';
  k.externalDelete(2, '10.0.0.100/32');
  await settle();
  t.is(errors.length, 1);
  t.is(m.restored, 0);
  await m.release();
});
