import test from 'ava';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/index.js';
import { VirtualServerManager } from '../../src/lvs/manager.js';
import type { HealthChangeHandler } from '../../src/lvs/health.js';

const CONFIG = `
[[virtual_server]]
address = "10.0.0.50"
port = 80
[[virtual_server.real_server]]
address = "10.0.0.21"
port = 80
check = { type = "TCP_CHECK" }
[[virtual_server.real_server]]
address = "10.0.0.22"
port = 80
check = { type = "TCP_CHECK" }
`;

function setup() {
  const lines: Array<{ level: number; msg: string; reason?: string }> = [];
  const log = pino({ level: 'debug' }, new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString())); cb(); } }));
  const changes = new Map<number, HealthChangeHandler>();
  let n = 0;
  const dataPlane = {
    name: 'none', kinds: ['PROXY' as const],
    configure: async () => undefined, setPool: async () => undefined, serve: async () => undefined, unserve: async () => undefined,
    stats: async () => ({ services: [], extra: {} }), close: async () => undefined,
  };
  const mgr = new VirtualServerManager(parseConfig(CONFIG, 't.toml').virtual_server, {
    dataPlane,
    log,
    healthRunner: (opts) => {
      changes.set(n++, opts.onChange);
      return { start: () => undefined, stop: () => undefined, stats: () => ({ health: 'unknown', dynamicWeight: undefined, checksRun: 0, failures: 0, lastDurationMs: null, checkers: [] }) };
    },
  });
  return { mgr, lines, change: (i: number) => changes.get(i)! };
}

test('status carries each real server\'s health, when it last changed and the checker\'s message; down/up are logged at warn', async (t) => {
  const { mgr, lines, change } = setup();
  await mgr.start();
  t.teardown(() => mgr.stop());
  const rows = () => mgr.status()[0]!.real_servers;
  t.deepEqual(rows().map((r) => [r.health, r.last_change, r.reason]), [['unknown', undefined, undefined], ['unknown', undefined, undefined]]);

  const before = Date.now();
  change(0)('up', undefined, 'TCP_CHECK[0]: connected to 10.0.0.21:80');
  change(1)('up', undefined, 'TCP_CHECK[0]: connected to 10.0.0.22:80');
  t.is(rows()[0]!.health, 'up');
  t.is(rows()[0]!.reason, 'TCP_CHECK[0]: connected to 10.0.0.21:80');
  const firstChange = Date.parse(rows()[0]!.last_change!);
  t.true(firstChange >= before && firstChange <= Date.now());
  // The first result is not an alarm.
  t.deepEqual(lines.filter((l) => l.level === 40), []);

  await new Promise((r) => setTimeout(r, 5));
  change(1)('down', undefined, 'TCP_CHECK[0]: connect 10.0.0.22:80: ECONNREFUSED');
  const down = rows()[1]!;
  t.is(down.health, 'down');
  t.false(down.up);
  t.is(down.reason, 'TCP_CHECK[0]: connect 10.0.0.22:80: ECONNREFUSED');
  t.true(Date.parse(down.last_change!) > firstChange);
  // A weight-only change (same health) keeps the time and reason of the last health change.
  const at = down.last_change;
  change(1)('down', 3, 'MISC_CHECK[1]: exit 5');
  t.is(rows()[1]!.last_change, at);
  t.is(rows()[1]!.reason, 'TCP_CHECK[0]: connect 10.0.0.22:80: ECONNREFUSED');

  change(1)('up', undefined, 'TCP_CHECK[0]: connected to 10.0.0.22:80');
  const warns = lines.filter((l) => l.level === 40).map((l) => l.msg);
  t.deepEqual(warns, [
    'real server 10.0.0.22:80 of tcp/10.0.0.50:80 is down: TCP_CHECK[0]: connect 10.0.0.22:80: ECONNREFUSED',
    'real server 10.0.0.22:80 of tcp/10.0.0.50:80 is up: TCP_CHECK[0]: connected to 10.0.0.22:80',
  ]);
});
