import test from 'ava';
import { RouteSet, type RouteSetRtnl } from '../../src/net/route-set.js';
import { parseAddressSpec, parseRouteSpec, parseRuleSpec, type AddressSpec, type RouteSpec, type RuleSpec } from '../../src/net/route-spec.js';
import type { LinkInfo } from '../../src/net/rtnl.js';
import { createLogger } from '../../src/util/log.js';

const r = (s: string): RouteSpec => { const p = parseRouteSpec(s); if (!p.ok) throw new Error(p.error); return p.value; };
const u = (s: string): RuleSpec => { const p = parseRuleSpec(s); if (!p.ok) throw new Error(p.error); return p.value; };
const a = (s: string): AddressSpec => { const p = parseAddressSpec(s); if (!p.ok) throw new Error(p.error); return p.value; };

class FakeRtnl implements RouteSetRtnl {
  calls: string[] = [];
  refuse = new Set<string>();
  links: Record<string, number> = { eth0: 2, eth1: 3 };
  async getLink(n: string | number): Promise<LinkInfo> {
    const index = this.links[String(n)];
    if (index === undefined) throw new Error('ENODEV');
    return { index, name: String(n), mac: '', up: true, adminUp: true, carrier: true, mtu: 1500 };
  }
  #do(what: string): void {
    this.calls.push(what);
    if (this.refuse.has(what)) throw new Error('EINVAL');
  }
  async addRoute(x: RouteSpec, oif?: number) { this.#do(`+route ${x.text}${oif ? ` @${oif}` : ''}`); }
  async deleteRoute(x: RouteSpec, oif?: number) { this.#do(`-route ${x.text}${oif ? ` @${oif}` : ''}`); }
  async addRule(x: RuleSpec) { this.#do(`+rule ${x.text}`); }
  async deleteRule(x: RuleSpec) { this.#do(`-rule ${x.text}`); }
  async addStaticAddress(i: number, x: AddressSpec) { this.#do(`+addr ${x.text} @${i}`); }
  async deleteAddress(i: number, cidr: string) { this.#do(`-addr ${cidr} @${i}`); }
}

const log = createLogger({ level: 'silent' });

test('install: addresses, routes (dev resolved), rules; remove in reverse; both idempotent in effect', async (t) => {
  const k = new FakeRtnl();
  const set = new RouteSet(k, log, 'test', {
    addresses: [a('192.168.1.1/24 dev eth1')],
    routes: [r('10.1.0.0/16 via 10.0.0.1'), r('10.2.0.0/16 dev eth1')],
    rules: [u('from 10.0.0.50 table 5 preference 5')],
  });
  await set.install();
  t.true(set.installed);
  t.deepEqual(k.calls, ['+addr 192.168.1.1/24 dev eth1 @3', '+route 10.1.0.0/16 via 10.0.0.1', '+route 10.2.0.0/16 dev eth1 @3', '+rule from 10.0.0.50 table 5 preference 5']);
  k.calls = [];
  await set.remove();
  t.false(set.installed);
  t.deepEqual(k.calls, ['-rule from 10.0.0.50 table 5 preference 5', '-route 10.1.0.0/16 via 10.0.0.1', '-route 10.2.0.0/16 dev eth1 @3', '-addr 192.168.1.1/24 @3']);
  t.is(set.failures, 0);
});

test('a refused entry is counted and skipped, the others still go in; a missing device is a failure on add, silence on remove', async (t) => {
  const k = new FakeRtnl();
  k.refuse.add('+route 10.1.0.0/16 via 10.0.0.1');
  const set = new RouteSet(k, log, 'test', { routes: [r('10.1.0.0/16 via 10.0.0.1'), r('10.2.0.0/16 dev eth9'), r('10.3.0.0/16 dev eth0')] });
  await t.notThrowsAsync(set.install());
  t.is(set.failures, 2);
  t.deepEqual(k.calls, ['+route 10.1.0.0/16 via 10.0.0.1', '+route 10.3.0.0/16 dev eth0 @2']);
  k.calls = [];
  await set.remove();
  t.is(set.failures, 2, 'removing a route whose device is gone is not a failure');
  t.deepEqual(k.calls, ['-route 10.1.0.0/16 via 10.0.0.1', '-route 10.3.0.0/16 dev eth0 @2']);
});

test('update: only the difference is applied while installed; nothing while not', async (t) => {
  const k = new FakeRtnl();
  const set = new RouteSet(k, log, 'test', { routes: [r('10.1.0.0/16 via 10.0.0.1'), r('blackhole 10.2.0.0/16')] });
  await set.update({ routes: [r('10.1.0.0/16 via 10.0.0.1')] });
  t.deepEqual(k.calls, [], 'not installed: nothing touched');
  await set.install();
  k.calls = [];
  await set.update({ routes: [r('10.1.0.0/16 via 10.0.0.1'), r('10.1.0.0/16 via 10.0.0.1 metric 9')], rules: [u('from 10.0.0.1 table 9 preference 9')] });
  t.deepEqual(k.calls, ['+route 10.1.0.0/16 via 10.0.0.1 metric 9', '+rule from 10.0.0.1 table 9 preference 9']);
});
