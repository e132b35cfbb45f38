import test from 'ava';
import fc from 'fast-check';
import { decideAnnouncements, serveDecision, type AnnounceFacts, type ServiceFacts } from '../../src/announce/desired.js';
import { parseConfig, type Config } from '../../src/config/index.js';
import type { ServiceKey } from '../../src/util/endpoint.js';

const CONFIG = parseConfig(`
[bgp]
local_as = 65001
[[bgp.peer]]
address = "10.78.0.1"
remote_as = 65000
[[bgp.peer]]
address = "fd78::1"
remote_as = 65000

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
virtual_ipaddress = ["10.77.0.50/24"]

[[virtual_server]]          # healthy (no instance), two ports on one address
address = "10.99.0.10"
port = 80
[[virtual_server]]
address = "10.99.0.10"
port = 443
[[virtual_server]]          # never: does not vote
address = "10.99.0.10"
port = 8080
announce = "never"
[[virtual_server]]          # master (held by VI_1)
address = "10.77.0.50"
port = 80
[[virtual_server]]          # IPv6, healthy
address = "fd99::10"
port = 80
protocol = "UDP"
[[virtual_server]]          # never only: not announced at all
address = "10.99.0.20"
port = 80
announce = "never"
`, 'test.toml');

const K80 = 'tcp/10.99.0.10:80' as ServiceKey;
const K443 = 'tcp/10.99.0.10:443' as ServiceKey;
const KM = 'tcp/10.77.0.50:80' as ServiceKey;
const K6 = 'udp/[fd99::10]:80' as ServiceKey;

function facts(over: Partial<AnnounceFacts> = {}, services: Partial<Record<ServiceKey, Partial<ServiceFacts>>> = {}): AnnounceFacts {
  const all = new Map<ServiceKey, ServiceFacts>();
  for (const { key } of CONFIG.virtual_server.flatMap((vs) => vs.members)) all.set(key, { quorum: true, serving: true, ...services[key] });
  return { services: all, masters: new Set(['VI_1']), stopping: 'no', linksDown: [], ...over };
}

const decide = (f: AnnounceFacts, cfg: Config = CONFIG) => new Map(decideAnnouncements(cfg, f).map((d) => [d.prefix, d]));

test('one decision per announced address, in config order, with its mode and voting services', (t) => {
  const d = decideAnnouncements(CONFIG, facts());
  t.deepEqual(d.map((x) => [x.prefix, x.mode, x.services]), [
    ['10.99.0.10/32', 'healthy', [K80, K443]],
    ['10.77.0.50/32', 'master', [KM]],
    ['fd99::10/128', 'healthy', [K6]],
  ]);
  t.true(d.every((x) => x.announce && x.withdrawKind === undefined));
  t.is(d[0]!.reason, `announced: quorum on ${K80}, ${K443}`);
  t.is(d[1]!.reason, 'announced: vrrp_instance VI_1 is MASTER');
});

test('quorum lost on one port of an address withdraws the address and stops serving it', (t) => {
  const d = decide(facts({}, { [K443]: { quorum: false } })).get('10.99.0.10/32')!;
  t.like(d, { announce: false, serve: false, withdrawKind: 'quorum', reason: `withdrawn: no quorum on ${K443}` });
  // The other addresses are not affected.
  t.true(decide(facts({}, { [K443]: { quorum: false } })).get('fd99::10/128')!.announce);
});

test('announced only once every voting service is served; serving is asked for as soon as there is quorum', (t) => {
  const d = decide(facts({}, { [K80]: { serving: false } })).get('10.99.0.10/32')!;
  t.like(d, { announce: false, serve: true, withdrawKind: 'not_serving', reason: `withdrawn: not serving ${K80} yet` });
  // A "never" service on the same address does not vote, served or not.
  t.true(decide(facts({}, { ['tcp/10.99.0.10:8080' as ServiceKey]: { serving: false, quorum: false } })).get('10.99.0.10/32')!.announce);
});

test('master mode follows the VRRP instance and leaves serving to VRRP ownership', (t) => {
  const d = decide(facts({ masters: new Set() })).get('10.77.0.50/32')!;
  t.like(d, { announce: false, serve: false, withdrawKind: 'vrrp', reason: 'withdrawn: vrrp_instance VI_1 is not MASTER' });
  // Quorum does not matter in master mode.
  t.true(decide(facts({}, { [KM]: { quorum: false } })).get('10.77.0.50/32')!.announce);
  t.is(serveDecision(decideAnnouncements(CONFIG, facts()), '10.77.0.50'), undefined);
  t.is(serveDecision(decideAnnouncements(CONFIG, facts()), '10.99.0.10'), true);
  t.is(serveDecision(decideAnnouncements(CONFIG, facts()), '10.99.0.20'), undefined, 'never-only address');
});

test('stopping withdraws everything but keeps serving (drain comes after the withdrawal)', (t) => {
  const d = decideAnnouncements(CONFIG, facts({ stopping: 'all' }));
  t.true(d.every((x) => !x.announce && x.withdrawKind === 'stopping' && x.reason === 'withdrawn: stopping'));
  t.deepEqual(d.map((x) => x.serve), [true, false, true]);
});

test('the first stop phase withdraws the healthy addresses; master ones wait for the VRRP peer', (t) => {
  const d = decide(facts({ stopping: 'healthy' }));
  t.is(d.get('10.99.0.10/32')!.withdrawKind, 'stopping');
  t.is(d.get('fd99::10/128')!.withdrawKind, 'stopping');
  t.true(d.get('10.77.0.50/32')!.announce);
});

test('link loss withdraws everything and names the interfaces', (t) => {
  const d = decideAnnouncements(CONFIG, facts({ linksDown: ['eth0', 'eth1'] }));
  t.true(d.every((x) => !x.announce && x.withdrawKind === 'link' && x.reason === 'withdrawn: no link on eth0, eth1'));
  t.deepEqual(d.map((x) => x.serve), [true, false, true]);
});

test('a service missing from the facts counts as no quorum and not served', (t) => {
  const d = decide({ ...facts(), services: new Map() });
  t.is(d.get('10.99.0.10/32')!.withdrawKind, 'quorum');
});

test('without [bgp] nothing is announced', (t) => {
  const cfg = parseConfig('[[virtual_server]]\naddress = "10.99.0.10"\nport = 80\n', 'x.toml');
  t.deepEqual(decideAnnouncements(cfg, facts()), []);
});

test('fast-check: announce implies serving, no stop, links up, and quorum (healthy) or MASTER (master)', (t) => {
  const keys = CONFIG.virtual_server.flatMap((vs) => vs.members.map((m) => m.key));
  fc.assert(fc.property(
    fc.array(fc.record({ quorum: fc.boolean(), serving: fc.boolean() }), { minLength: keys.length, maxLength: keys.length }),
    fc.boolean(), fc.constantFrom('no' as const, 'healthy' as const, 'all' as const), fc.boolean(),
    (svc, master, stopping, linkDown) => {
      const f: AnnounceFacts = {
        services: new Map(keys.map((k, i) => [k, svc[i]!])),
        masters: new Set(master ? ['VI_1'] : []),
        stopping,
        linksDown: linkDown ? ['eth0'] : [],
      };
      for (const d of decideAnnouncements(CONFIG, f)) {
        const voters = d.services.map((k) => f.services.get(k)!);
        if (d.announce) {
          if (stopping === 'all' || (stopping === 'healthy' && d.mode === 'healthy') || linkDown) return false;
          if (!voters.every((v) => v.serving)) return false;
          if (d.mode === 'healthy' && !voters.every((v) => v.quorum)) return false;
          if (d.mode === 'master' && !master) return false;
        } else if (d.withdrawKind === undefined || !d.reason.startsWith('withdrawn: ')) return false;
        if (d.mode === 'healthy' && d.serve !== voters.every((v) => v.quorum)) return false;
      }
      return true;
    },
  ));
  t.pass();
});

test('a virtual_server_group: every member address is announced, each voted by its member; the group\'s quorum withdraws them all', (t) => {
  const bgp = '[bgp]\nlocal_as = 65001\n[[bgp.peer]]\naddress = "10.78.0.1"\nremote_as = 65000\n';
  const cfg = parseConfig(`${bgp}
[[virtual_server_group]]
name = "web"
members = ["10.99.1.10-11:80", "10.99.1.10:443", "fwmark:5"]
[[virtual_server]]
group = "web"
`, 'g.toml');
  t.is(cfg.virtual_server[0]!.announce, 'healthy');
  const keys = cfg.virtual_server[0]!.members.map((m) => m.key);
  const f = (quorum: boolean, serving = true): AnnounceFacts => ({ services: new Map(keys.map((k) => [k, { quorum, serving }])), masters: new Set(), stopping: 'no', linksDown: [] });
  const d = decideAnnouncements(cfg, f(true));
  t.deepEqual(d.map((x) => [x.prefix, x.mode, x.services, x.announce]), [
    ['10.99.1.10/32', 'healthy', ['tcp/10.99.1.10:80', 'tcp/10.99.1.10:443'], true],
    ['10.99.1.11/32', 'healthy', ['tcp/10.99.1.11:80'], true],
  ], 'the fwmark member has no address to announce');
  t.true(decideAnnouncements(cfg, f(false)).every((x) => !x.announce && x.withdrawKind === 'quorum'));
  t.is(serveDecision(decideAnnouncements(cfg, f(true)), '10.99.1.11'), true);
  // A group cannot mix addresses held by VRRP ("master") with others ("healthy").
  const mixed = `${bgp}
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
virtual_ipaddress = ["10.99.1.10/24"]
[[virtual_server_group]]
name = "web"
members = ["10.99.1.10-11:80"]
[[virtual_server]]
group = "web"
`;
  t.throws(() => parseConfig(mixed, 'm.toml'), { message: /virtual_server\[0\]\.announce: "master" needs a vrrp_instance holding 10\.99\.1\.11, and none does .*one group cannot mix addresses held by VRRP with others/ });
});
