/**
 * DataplaneSet (routing by lb_kind, lazy creation, merged stats, close) and the DataplaneLifecycle
 * base, with a recording fake implementation; and the manager on top of a set without a kernel
 * data plane (a NAT service is refused at start, with the reason).
 */
import test from 'ava';
import pino from 'pino';
import { parseConfig } from '../../src/config/index.js';
import type { ConnectionEvent, ConnectionSnapshot, ConnectionState, DataplaneStats, LbKind, PoolSpec, RestoreEntry, ServiceSpec } from '../../src/lvs/dataplane/contract.js';
import { DATAPLANE_IMPLEMENTATIONS, DataplaneSet, type DataplaneImplementation } from '../../src/lvs/dataplane/index.js';
import { DataplaneLifecycle } from '../../src/lvs/dataplane/lifecycle.js';
import { VirtualServerManager } from '../../src/lvs/manager.js';
import { endpoint, endpointText } from '../../src/util/endpoint.js';
import { contractSpec } from '../lib/dataplane-contract.js';

class Fake extends DataplaneLifecycle implements ConnectionState {
  readonly log: string[] = [];
  readonly restored: RestoreEntry[][] = [];
  subs: Array<(e: readonly ConnectionEvent[]) => void> = [];
  constructor(readonly name: string, readonly kinds: readonly LbKind[]) {
    super();
  }
  /** Each applyConfigure's arguments as passed. */
  readonly configures: Array<{ services: readonly ServiceSpec[]; removed: readonly ServiceSpec[]; changed: readonly ServiceSpec[] }> = [];
  protected async applyConfigure(services: readonly ServiceSpec[], removed: readonly ServiceSpec[], changed: readonly ServiceSpec[]): Promise<void> {
    this.configures.push({ services, removed, changed });
    this.log.push(`configure ${services.map((s) => s.key).join(',')} -${removed.map((s) => s.key).join(',')}`);
  }
  protected async applyPool(spec: ServiceSpec, pool: PoolSpec): Promise<void> {
    this.log.push(`pool ${spec.key} ${pool.dests.map((d) => `${d.key}=${d.weight}`).join(',')}`);
  }
  protected async applyServe(spec: ServiceSpec): Promise<void> {
    this.log.push(`serve ${spec.key}`);
  }
  protected async applyUnserve(spec: ServiceSpec, drainMs: number): Promise<void> {
    this.log.push(`unserve ${spec.key} ${drainMs}`);
  }
  protected async collectStats(): Promise<DataplaneStats> {
    return {
      services: this.desiredServices.map((s) => ({
        key: s.key, kind: s.kind, serving: this.isServed(s.key), draining: false, sorry: false, scheduler_in_effect: s.scheduler,
        conns: 0, in_pkts: 0, out_pkts: 0, in_bytes: 0, out_bytes: 0, active_conns: null, inact_conns: null, dropped: 0, dests: [],
      })),
      extra: { calls: this.log.length },
    };
  }
  protected async applyClose(): Promise<void> {
    this.log.push('close');
  }
  async restore(entries: readonly RestoreEntry[]): Promise<void> {
    this.restored.push([...entries]);
  }
  async snapshot(): Promise<ConnectionSnapshot> {
    return { templates: [], udpFlows: [], conns: [] };
  }
  onEvent(cb: (e: readonly ConnectionEvent[]) => void): () => void {
    this.subs.push(cb);
    return () => (this.subs = this.subs.filter((l) => l !== cb));
  }
}

function fakes() {
  const made: Fake[] = [];
  const impls: DataplaneImplementation[] = [
    { name: 'user', kinds: ['PROXY'], create: () => { const f = new Fake('user', ['PROXY']); made.push(f); return f; } },
    { name: 'kernel', kinds: ['DR', 'NAT', 'FULLNAT'], create: () => { const f = new Fake('kernel', ['DR', 'NAT', 'FULLNAT']); made.push(f); return f; } },
  ];
  return { made, impls, byName: (n: string) => made.find((f) => f.name === n) };
}

const proxySvc = contractSpec('PROXY', endpoint('10.0.0.50', 80));
const natSvc = contractSpec('NAT', endpoint('10.0.0.50', 443));
const dest = (a: string, p: number, w = 1) => ({ key: endpointText({ address: a, port: p }), endpoint: endpoint(a, p), weight: w });

test('implementations are created only for the kinds configured, and every call goes to the owner of the service', async (t) => {
  const f = fakes();
  const set = new DataplaneSet({}, f.impls);
  t.deepEqual(set.kinds, ['PROXY', 'DR', 'NAT', 'FULLNAT']);
  await set.configure([proxySvc]);
  t.deepEqual(f.made.map((x) => x.name), ['user'], 'no kernel data plane without a kernel service');
  await set.configure([proxySvc, natSvc]);
  t.deepEqual(f.made.map((x) => x.name), ['user', 'kernel']);
  await set.setPool(natSvc.key, { dests: [dest('10.0.0.21', 443)], sorry: null });
  await set.serve(natSvc.key);
  await set.serve(proxySvc.key);
  await set.unserve(natSvc.key, 1500.7);
  t.deepEqual(f.byName('kernel')!.log, [`configure ${natSvc.key} -`, `pool ${natSvc.key} 10.0.0.21:443=1`, `serve ${natSvc.key}`, `unserve ${natSvc.key} 1500`]);
  t.deepEqual(f.byName('user')!.log, [`configure ${proxySvc.key} -`, `configure ${proxySvc.key} -`, `serve ${proxySvc.key}`]);
  const st = await set.stats();
  t.deepEqual(st.services.map((s) => [s.key, s.kind, s.serving]), [[proxySvc.key, 'PROXY', true], [natSvc.key, 'NAT', false]]);
  t.deepEqual(Object.keys(st.extra).sort(), ['kernel_calls', 'user_calls']);
  // a reload moving the service to another kind: the old owner drops it, the new one takes it
  await set.configure([{ ...proxySvc, kind: 'DR' }]);
  t.deepEqual(f.byName('user')!.log.at(-1), `configure  -${proxySvc.key}`);
  t.deepEqual(f.byName('kernel')!.log.at(-1), `configure ${proxySvc.key} -${natSvc.key}`);
  const unknown = await t.throwsAsync(set.serve(natSvc.key));
  t.is((unknown as { code?: string }).code, 'E_CONFIG_INVALID');
  await set.close();
  await set.close();
  t.deepEqual(f.made.map((x) => x.log.filter((l) => l === 'close').length), [1, 1]);
  const closed = await t.throwsAsync(set.stats());
  t.is((closed as { code?: string }).code, 'E_CLOSED');
});

test('a kind no implementation forwards is refused before anything changes', async (t) => {
  const f = fakes();
  const set = new DataplaneSet({}, [f.impls[0]!]);
  await set.configure([proxySvc]);
  const err = await t.throwsAsync(set.configure([proxySvc, natSvc]));
  t.is((err as { code?: string }).code, 'E_DATAPLANE_UNAVAILABLE');
  t.regex((err as Error).message, /tcp\/10\.0\.0\.50:443: no data plane forwards lb_kind "NAT" \(have: PROXY\)/);
  t.deepEqual(f.byName('user')!.log, [`configure ${proxySvc.key} -`], 'the refused configure reached nobody');
  t.deepEqual((await set.stats()).services.map((s) => s.key), [proxySvc.key]);
});

test('restore goes to the owner of each service, synchronously; events from implementations created later reach subscribers', async (t) => {
  const f = fakes();
  const set = new DataplaneSet({}, f.impls);
  const got: ConnectionEvent[] = [];
  set.onEvent((e) => got.push(...e));
  await set.configure([proxySvc, natSvc]);
  const tpl = (service: ServiceSpec['key']): RestoreEntry => ({ type: 'template', service, client: '10.1.0.0', family: 4, dest: endpoint('10.0.0.21', 80), expiresInMs: 1000 });
  const done = set.restore([tpl(proxySvc.key), tpl(natSvc.key), tpl(contractSpec('PROXY', endpoint('10.0.0.99', 1)).key)]);
  t.is(f.byName('user')!.restored.length, 1, 'handed over before restore() returned');
  await done;
  t.deepEqual(f.byName('user')!.restored[0]!.map((e) => e.service), [proxySvc.key]);
  t.deepEqual(f.byName('kernel')!.restored[0]!.map((e) => e.service), [natSvc.key]);
  const ev: ConnectionEvent = { type: 'conn_new', service: natSvc.key, protocol: 'tcp', client: endpoint('10.1.0.1', 4000), virtual: endpoint('10.0.0.50', 443), dest: endpoint('10.0.0.21', 443) };
  for (const l of f.byName('kernel')!.subs) l([ev]);
  t.deepEqual(got, [ev]);
});

test('the lifecycle base checks arguments with codes and records the desired state', async (t) => {
  const fake = new Fake('k', ['NAT']);
  await t.throwsAsync(fake.configure([proxySvc]), { code: 'E_CONFIG_INVALID', message: /does not forward lb_kind PROXY/ } as never);
  await t.throwsAsync(fake.configure([natSvc, natSvc]), { message: /duplicate virtual service/ });
  await fake.configure([natSvc]);
  await t.throwsAsync(fake.setPool(natSvc.key, { dests: [dest('10.0.0.21', 443), dest('10.0.0.21', 443)], sorry: null }), { message: /duplicate destination/ });
  await t.throwsAsync(fake.setPool(natSvc.key, { dests: [dest('10.0.0.21', 443, -1)], sorry: null }), { message: /weight -1/ });
  await t.throwsAsync(fake.setPool(natSvc.key, { dests: [{ key: '[fd00::1]:443', endpoint: endpoint('fd00::1', 443), weight: 1 }], sorry: null }), { message: /is not IPv4/ });
  t.deepEqual(fake.log, [`configure ${natSvc.key} -`], 'refused calls did no I/O');
  await fake.close();
  await t.throwsAsync(fake.serve(natSvc.key), { code: 'E_CLOSED' } as never);
});

test('configure tells the implementation which services changed; an equal spec stands as the object configured before', async (t) => {
  const fake = new Fake('user', ['PROXY']);
  const a = contractSpec('PROXY', endpoint('10.0.0.50', 80));
  const b = contractSpec('PROXY', endpoint('10.0.0.50', 81));
  const c = contractSpec('PROXY', endpoint('10.0.0.50', 82));
  await fake.configure([a, b]);
  t.deepEqual(fake.configures.at(-1)!.changed, [a, b]);
  // Equal copies (a reload that rebuilt them): nothing changed, the first objects stand.
  await fake.configure([structuredClone(a), structuredClone(b)]);
  const same = fake.configures.at(-1)!;
  t.deepEqual(same.changed, []);
  t.deepEqual(same.removed, []);
  t.is(same.services[0], a);
  t.is(same.services[1], b);
  // One setting of one service (any key, nested ones too), one service removed, one added.
  const b2 = { ...b, hash: { ...b.hash, port: !b.hash.port } };
  await fake.configure([a, b2, c]);
  t.deepEqual(fake.configures.at(-1)!.changed, [b2, c]);
  await fake.configure([a, c]);
  const gone = fake.configures.at(-1)!;
  t.deepEqual(gone.changed, []);
  t.deepEqual(gone.removed.map((s) => s.key), [b.key]);
  // A refused spec (checkService) is refused whether it is new or changed; unchanged ones are not checked again.
  await t.throwsAsync(fake.configure([a, { ...c, kind: 'DR' }]), { code: 'E_CONFIG_INVALID' });
});

test('the built-in registration: the proxy forwards PROXY, nftables DR, NAT and FULLNAT; no implementation is created before a service needs it', async (t) => {
  t.deepEqual(DATAPLANE_IMPLEMENTATIONS.map((i) => [i.name, i.kinds]), [['proxy', ['PROXY']], ['nftables', ['DR', 'NAT', 'FULLNAT']]]);
  const cfg = parseConfig('[[virtual_server]]\naddress = "192.0.2.50"\nport = 80\n[[virtual_server.real_server]]\naddress = "192.0.2.21"\n', 'nat.toml');
  t.is(cfg.virtual_server[0]!.lb_kind, 'NAT', 'NAT is the default kind, as in keepalived');
  const set = new DataplaneSet();
  t.deepEqual(set.kinds, ['PROXY', 'DR', 'NAT', 'FULLNAT']);
  await set.configure([]);
  t.is(set.instances.size, 0, 'no proxy worker and no nftables table without services');
  await set.close();
});

test('the manager speaks only the contract: spec and pool from the config, status with kind, Forward, scheduler in effect, sorry server apart', async (t) => {
  const f = fakes();
  const cfg = parseConfig(`
[[virtual_server]]
fwmark = 5
lb_kind = "NAT"
lb_algo = "mh"
sched_flags = ["mh-port"]
sorry_server = { address = "10.0.0.30", port = 8080 }
[[virtual_server.real_server]]
address = "10.0.0.21"
weight = 3
check = { type = "TCP_CHECK", connect_port = 80 }
[[virtual_server.real_server]]
address = "10.0.0.22"
port = 8080
check = { type = "TCP_CHECK" }
`, 'm.toml');
  const set = new DataplaneSet({}, f.impls);
  const runners: Array<{ onChange: (h: 'up' | 'down', w: number | undefined, d: string) => void }> = [];
  const lvs = new VirtualServerManager(cfg.virtual_server, {
    dataPlane: set,
    log: pino({ level: 'silent' }),
    healthRunner: (opts) => {
      runners.push(opts as never);
      return { start() {}, stop() {}, stats: () => ({ checkers: [] }) } as never;
    },
  });
  await lvs.start();
  const kernel = f.byName('kernel')!;
  t.is(f.byName('user'), undefined);
  runners[0]!.onChange('up', undefined, 'ok');
  runners[1]!.onChange('down', undefined, 'refused');
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(kernel.log.filter((l) => l.startsWith('pool')).at(-1), 'pool fwmark/5 10.0.0.21=3');
  lvs.setOwnership(() => false);
  await new Promise((r) => setTimeout(r, 20));
  t.true(kernel.log.includes('serve fwmark/5'), 'a fwmark service has no address of its own: served from the start');
  await lvs.refresh();
  const [vs] = lvs.status();
  t.like(vs, { key: 'fwmark/5', service: 'FWM  5', fwmark: 5, kind: 'NAT', forward: 'Masq', lb_algo: 'mh', scheduler_in_effect: 'mh', serving: true });
  t.deepEqual(vs!.real_servers.map((r) => [r.address, r.port, r.weight, r.up]), [['10.0.0.21', 0, 3, true], ['10.0.0.22', 8080, 0, false]]);
  t.like(vs!.sorry_server, { address: '10.0.0.30', port: 8080, in_use: false });
  await lvs.stop();
  t.true(kernel.log.includes('close'));
});

test('claim goes to every implementation created that has it (AddressClaim); the others and a closed set are skipped', async (t) => {
  const claims: string[][] = [];
  class Claiming extends Fake {
    async claim(addresses: readonly string[]): Promise<void> {
      claims.push([...addresses]);
    }
  }
  const impls: DataplaneImplementation[] = [
    { name: 'user', kinds: ['PROXY'], create: () => new Fake('user', ['PROXY']) },
    { name: 'kernel', kinds: ['DR', 'NAT', 'FULLNAT'], create: () => new Claiming('kernel', ['DR', 'NAT', 'FULLNAT']) },
  ];
  const set = new DataplaneSet({}, impls);
  await set.claim(['10.0.0.50']);
  t.deepEqual(claims, [], 'no implementation created yet');
  await set.configure([proxySvc, natSvc]);
  await set.claim(['10.0.0.50', '10.0.0.51']);
  t.deepEqual(claims, [['10.0.0.50', '10.0.0.51']]);
  await set.close();
  await set.claim(['10.0.0.50']);
  t.is(claims.length, 1);
});
