import test from 'ava';
import { baseSysctls, isStaleVmac, vmacAddress, vmacSysctls, vmacVrid, VmacManager, type SysctlIo, type VmacRtnl } from '../../src/net/vmac.js';
import type { LinkDetails, LinkInfo, MacvlanOptions } from '../../src/net/rtnl.js';
import { createLogger } from '../../src/util/log.js';

test('virtual router MACs (RFC 5798 7.3)', (t) => {
  t.is(vmacAddress(51, 4), '00:00:5e:00:01:33');
  t.is(vmacAddress(1, 6), '00:00:5e:00:02:01');
  t.is(vmacAddress(255, 4), '00:00:5e:00:01:ff');
  t.throws(() => vmacAddress(0, 4), { instanceOf: RangeError });
  t.deepEqual(vmacVrid('00:00:5E:00:01:33'), { vrid: 51, family: 4 });
  t.deepEqual(vmacVrid('00:00:5e:00:02:0a'), { vrid: 10, family: 6 });
  t.is(vmacVrid('00:00:5e:00:01:00'), null);
  t.is(vmacVrid('02:00:5e:00:01:33'), null);
});

test('sysctls are keepalived\'s (plus arp_announce on the base)', (t) => {
  t.deepEqual(vmacSysctls('vrrp.51', 4).map((s) => `${s.path}=${s.value}`), [
    'net/ipv4/conf/vrrp.51/arp_ignore=1',
    'net/ipv4/conf/vrrp.51/accept_local=1',
    'net/ipv4/conf/vrrp.51/rp_filter=0',
    'net/ipv4/conf/vrrp.51/promote_secondaries=1',
    'net/ipv6/conf/vrrp.51/disable_ipv6=1',
  ]);
  t.deepEqual(vmacSysctls('vrrp6.51', 6).map((s) => `${s.path}=${s.value}`), ['net/ipv4/conf/vrrp6.51/arp_ignore=1']);
  t.deepEqual(baseSysctls('eth0', 4).map((s) => `${s.path}=${s.value}`), [
    'net/ipv4/conf/eth0/arp_ignore=1', 'net/ipv4/conf/eth0/arp_filter=1', 'net/ipv4/conf/eth0/arp_announce=2',
  ]);
  t.deepEqual(baseSysctls('eth0', 6), []);
});

const link = (over: Partial<LinkDetails>): LinkDetails => ({
  index: 9, name: 'vrrp.51', mac: '00:00:5e:00:01:33', up: true, adminUp: true, carrier: true, mtu: 1500, kind: 'macvlan', macvlanMode: 'private', parentIndex: 2, ...over,
});

test('stale VMACs: our naming, a virtual MAC, private mode; never FRR\'s bridge-mode macvlans or other links', (t) => {
  const none = new Set<string>();
  t.true(isStaleVmac(link({}), none, none));
  t.true(isStaleVmac(link({ name: 'vrrp6.7', mac: '00:00:5e:00:02:07' }), none, none));
  t.true(isStaleVmac(link({ name: 'vm51' }), new Set(['vm51']), none), 'a configured name');
  t.false(isStaleVmac(link({ name: 'vm51' }), none, none), 'an unknown name is not ours');
  t.false(isStaleVmac(link({}), none, new Set(['vrrp.51'])), 'in use');
  t.false(isStaleVmac(link({ macvlanMode: 'bridge' }), none, none), "FRR's macvlans are bridge mode");
  t.false(isStaleVmac(link({ mac: '02:11:22:33:44:55' }), none, none));
  t.false(isStaleVmac(link({ kind: 'veth' }), none, none));
});

/** In-memory links and sysctls. */
class FakeKernel implements VmacRtnl, SysctlIo {
  links = new Map<string, LinkDetails>([['eth0', link({ index: 2, name: 'eth0', mac: '52:54:00:00:00:01', kind: undefined, macvlanMode: undefined, parentIndex: undefined })]]);
  sys = new Map<string, number>([['net/ipv4/conf/eth0/arp_ignore', 0], ['net/ipv4/conf/eth0/arp_filter', 0], ['net/ipv4/conf/eth0/arp_announce', 0]]);
  calls: string[] = [];
  next = 10;
  async linkDetails(n: string | number) { return [...this.links.values()].find((l) => l.name === n || l.index === n) ?? null; }
  async listLinkDetails() { return [...this.links.values()]; }
  async getLink(n: string | number): Promise<LinkInfo> { const l = await this.linkDetails(n); if (!l) throw new Error('ENODEV'); return l; }
  async createMacvlan(o: MacvlanOptions) { this.calls.push(`create ${o.name} ${o.mac} ${o.mode}`); this.links.set(o.name, link({ index: this.next++, name: o.name, mac: o.mac, parentIndex: o.parentIndex, macvlanMode: o.mode, adminUp: false })); }
  async deleteLink(i: number) { this.calls.push(`delete ${i}`); for (const [k, l] of this.links) if (l.index === i) this.links.delete(k); }
  async setLinkUp(i: number, up: boolean) { this.calls.push(`up ${i} ${up}`); }
  async setAddrGenModeNone(i: number) { this.calls.push(`addrgenmode none ${i}`); }
  async addAddress(i: number, cidr: string) { this.calls.push(`addr ${i} ${cidr}`); }
  async read(p: string) { return this.sys.get(p) ?? null; }
  async write(p: string, v: number) { this.sys.set(p, v); }
}

const log = createLogger({ level: 'silent' });

test('VmacManager: creates, configures, reuses a correct leftover, replaces a wrong one, restores the base sysctls after the last VMAC', async (t) => {
  const k = new FakeKernel();
  const m = new VmacManager(k, log, k);
  const base = (await k.getLink('eth0'));
  const v = await m.ensure({ name: 'vrrp.51', base, vrid: 51, family: 4, xmitBase: false });
  t.is(v.mac, '00:00:5e:00:01:33');
  t.deepEqual(k.calls, ['create vrrp.51 00:00:5e:00:01:33 private', 'addrgenmode none 10', 'up 10 true']);
  t.is(k.sys.get('net/ipv4/conf/vrrp.51/rp_filter'), 0);
  t.is(k.sys.get('net/ipv4/conf/eth0/arp_ignore'), 1);
  t.is(k.sys.get('net/ipv4/conf/eth0/arp_announce'), 2);
  await m.ensure({ name: 'vrrp.52', base, vrid: 52, family: 4, xmitBase: false });
  await m.remove('vrrp.51');
  t.is(k.sys.get('net/ipv4/conf/eth0/arp_ignore'), 1, 'still held by vrrp.52');
  await m.remove('vrrp.52');
  t.is(k.sys.get('net/ipv4/conf/eth0/arp_ignore'), 0, 'restored');
  t.is(k.sys.get('net/ipv4/conf/eth0/arp_announce'), 0, 'restored');

  // A leftover with the right MAC, base and mode is reused; a wrong one is replaced.
  k.links.set('vrrp.60', link({ index: 60, name: 'vrrp.60', mac: '00:00:5e:00:01:3c' }));
  k.calls = [];
  await m.ensure({ name: 'vrrp.60', base, vrid: 60, family: 4, xmitBase: false });
  t.false(k.calls.some((c) => c.startsWith('create') || c.startsWith('delete')), k.calls.join());
  k.links.set('vrrp.61', link({ index: 61, name: 'vrrp.61', mac: '00:00:5e:00:01:99' }));
  k.calls = [];
  await m.ensure({ name: 'vrrp.61', base, vrid: 61, family: 4, xmitBase: false });
  t.deepEqual(k.calls.slice(0, 2), ['delete 61', 'create vrrp.61 00:00:5e:00:01:3d private']);
  // A non-macvlan of that name is never touched.
  k.links.set('vrrp.62', link({ index: 62, name: 'vrrp.62', kind: 'veth' }));
  await t.throwsAsync(m.ensure({ name: 'vrrp.62', base, vrid: 62, family: 4, xmitBase: false }), { message: /not a macvlan/ });
});

test('VmacManager: IPv6 gets the base link-local unless vmac_xmit_base; sweepStale deletes only stale VMACs', async (t) => {
  const k = new FakeKernel();
  const m = new VmacManager(k, log, k);
  const base = await k.getLink('eth0');
  await m.ensure({ name: 'vrrp6.5', base, vrid: 5, family: 6, xmitBase: false, linkLocal: 'fe80::1' });
  t.true(k.calls.includes('addr 10 fe80::1/64'));
  k.calls = [];
  await m.ensure({ name: 'vrrp6.6', base, vrid: 6, family: 6, xmitBase: true, linkLocal: 'fe80::1' });
  t.false(k.calls.some((c) => c.startsWith('addr ')), k.calls.join());
  k.links.set('vrrp.9', link({ index: 90, name: 'vrrp.9', mac: '00:00:5e:00:01:09' }));
  k.links.set('frr4', link({ index: 91, name: 'vrrp4-2-1', mac: '00:00:5e:00:01:09', macvlanMode: 'bridge' }));
  t.deepEqual(await m.sweepStale(new Set(), new Set()), ['vrrp.9'], 'ours in use and FRR\'s stay');
});
