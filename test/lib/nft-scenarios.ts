// Rulesets the unit tests compare with golden files (test/fixtures/nft/*.nft) and a namespace
// test loads into a real kernel: the same inputs, so what is checked is what runs.
import type { ServiceSpec } from '../../src/lvs/dataplane/contract.js';
import { buildModel, DEFAULT_LIMITS, type NftDest, type NftServiceInput } from '../../src/lvs/dataplane/nftables/ruleset.js';
import { renderModel } from '../../src/lvs/dataplane/nftables/model.js';
import { endpoint, serviceKey, type ServiceMatch } from '../../src/util/endpoint.js';

/** A stand-in Maglev for golden files: slot i -> dest i mod n (the real table is tested on its own). */
export const roundMaglev = (dests: readonly unknown[], size: number): Int32Array => Int32Array.from({ length: size }, (_, i) => i % dests.length);

function spec(match: ServiceMatch, o: Partial<ServiceSpec> & Pick<ServiceSpec, 'kind'>): ServiceSpec {
  return {
    key: serviceKey(match),
    match,
    scheduler: 'rr',
    hash: { seed: 0xc0ffee, tableSize: 13, port: false, fallback: false },
    persistence: null,
    drainMs: 2000,
    ops: false,
    ...o,
  };
}

function dest(id: number, address: string, port: number, weight: number, device?: string): NftDest {
  return { id, endpoint: endpoint(address, port), weight, ...(device ? { device } : {}) };
}

function svc(s: ServiceSpec, name: string, o: Partial<NftServiceInput>): NftServiceInput {
  const dests = o.dests ?? [];
  return {
    spec: s,
    name,
    phase: 'serving',
    dests,
    sorry: null,
    retired: [],
    counterIds: [...dests.map((d) => d.id), ...(o.sorry ? [o.sorry.id] : []), ...(o.retired ?? []).map((d) => d.id)],
    ingress: ['eth0'],
    ...o,
  };
}

const addr = (address: string, ports: Array<[number, number]>, protocol: 'tcp' | 'udp' = 'tcp'): ServiceMatch => {
  const e = endpoint(address, 0);
  return { kind: 'addr', protocol, address: e.address, family: e.family, ports: ports.map(([from, to]) => ({ from, to })) };
};

export const SCENARIOS: Record<string, NftServiceInput[]> = {
  'dr-rr': [
    svc(spec(addr('10.77.0.50', [[80, 80]]), { kind: 'DR' }), 's00000001', {
      dests: [dest(0x11, '10.77.0.21', 80, 1, 'eth0'), dest(0x12, '10.77.0.22', 80, 1, 'eth0')],
    }),
  ],
  'dr-portset-persist-wrr': [
    svc(spec(addr('10.77.0.50', [[21, 21], [10000, 20000]]), { kind: 'DR', scheduler: 'wrr', persistence: { timeoutMs: 300_000, prefix: 24 } }), 's00000002', {
      dests: [dest(0x21, '10.77.0.21', 0, 1, 'eth0'), dest(0x22, '10.77.0.22', 0, 3, 'eth0'), dest(0x23, '10.77.0.23', 0, 0, 'eth0')],
    }),
  ],
  'dr-fwmark-sorry-draining': [
    svc(spec({ kind: 'fwmark', mark: 7, family: 4 }, { kind: 'DR', scheduler: 'sh' }), 's00000003', {
      dests: [dest(0x31, '10.77.0.21', 0, 0, 'eth0')],
      sorry: dest(0x3f, '10.77.0.30', 0, 1, 'eth0'),
      retired: [dest(0x32, '10.77.0.22', 0, 1, 'eth0')],
    }),
    svc(spec(addr('10.77.0.51', [[443, 443]]), { kind: 'DR', scheduler: 'rr' }), 's00000004', {
      phase: 'draining',
      dests: [dest(0x41, '10.77.0.21', 443, 1, 'eth0')],
    }),
  ],
  'dr-ipv6-mh': [
    svc(spec(addr('fd77::50', [[80, 80]]), { kind: 'DR', scheduler: 'mh', hash: { seed: 7, tableSize: 7, port: true, fallback: false } }), 's00000005', {
      dests: [dest(0x51, 'fd77::21', 80, 1, 'eth0'), dest(0x52, 'fd77::22', 80, 2, 'eth1')],
    }),
  ],
  'nat-fullnat': [
    svc(spec(addr('10.77.0.50', [[80, 80]]), { kind: 'NAT', scheduler: 'wlc' }), 's00000006', {
      dests: [dest(0x61, '10.78.0.21', 8080, 1), dest(0x62, '10.78.0.22', 8080, 1)],
      schedWeights: new Map([[0x61, 250], [0x62, 750]]),
    }),
    svc(spec(addr('10.77.0.50', [[53, 53]], 'udp'), { kind: 'FULLNAT', scheduler: 'wrr' }), 's00000007', {
      dests: [dest(0x71, '10.78.0.21', 53, 2), dest(0x72, '10.78.0.22', 53, 1)],
      sorry: dest(0x7f, '10.78.0.30', 53, 1),
    }),
    svc(spec(addr('10.77.0.52', [[80, 80]]), { kind: 'NAT' }), 's00000008', { phase: 'idle', dests: [dest(0x81, '10.78.0.21', 80, 1)] }),
  ],
  'nat-ipv6-fwmark-persist': [
    svc(spec({ kind: 'fwmark', mark: 9, family: 6 }, { kind: 'NAT', scheduler: 'fo', persistence: { timeoutMs: 1500, prefix: 64 } }), 's00000009', {
      dests: [dest(0x91, 'fd78::21', 0, 5), dest(0x92, 'fd78::22', 0, 10)],
    }),
  ],
};

export function renderScenario(name: string): string {
  const services = SCENARIOS[name];
  if (!services) throw new Error(`no scenario ${name}`);
  return renderModel(buildModel({ services, limits: DEFAULT_LIMITS, maglev: roundMaglev }).model);
}
