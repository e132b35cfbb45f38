import test from 'ava';
import { connectionBudget, limitsFromConfig, parseNofile } from '../../src/util/fdlimit.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 4096                 files
Max locked memory         8388608              8388608              bytes
`;

test('parseNofile reads the descriptor limit from /proc/self/limits', (t) => {
  t.deepEqual(parseNofile(LIMITS), { soft: 1024, hard: 4096 });
  t.deepEqual(parseNofile('Max open files            unlimited            unlimited            files\n'), { soft: Infinity, hard: Infinity });
  t.is(parseNofile('nothing here'), undefined);
});

test('connectionBudget: maxconn 0 = (limit - reserved_fds) / 2; a larger maxconn is lowered; low water 90 %', (t) => {
  t.deepEqual(connectionBudget({ softLimit: 1024, reservedFds: 256, maxconn: 0 }), { maxConns: 384, lowWater: 345, allowed: 384, lowered: false });
  t.deepEqual(connectionBudget({ softLimit: 1024, reservedFds: 256, maxconn: 100 }), { maxConns: 100, lowWater: 90, allowed: 384, lowered: false });
  t.deepEqual(connectionBudget({ softLimit: 1024, reservedFds: 256, maxconn: 5000 }), { maxConns: 384, lowWater: 345, allowed: 384, lowered: true });
  t.like(connectionBudget({ softLimit: 1024, reservedFds: 100, maxconn: 0 }), { maxConns: 462 }, 'reserved_fds is honoured');
  t.like(connectionBudget({ softLimit: undefined, reservedFds: 256, maxconn: 0 }), { maxConns: 0 }, 'no known limit, no maxconn: unlimited');
  t.like(connectionBudget({ softLimit: Infinity, reservedFds: 256, maxconn: 50 }), { maxConns: 50 });
  t.like(connectionBudget({ softLimit: 200, reservedFds: 256, maxconn: 0 }), { maxConns: 1 }, 'never 0 (which would mean unlimited)');
});

test('limitsFromConfig: maxconn, reserved_fds and lvs_timeouts reach the data plane settings', async (t) => {
  const { parseConfig } = await import('../../src/config/index.js');
  const g = parseConfig('[global]\nmaxconn = 100\nreserved_fds = 64\nlvs_timeouts = { tcp = 60, tcpfin = 10, udp = 30 }\n', 'l.toml').global;
  t.deepEqual(limitsFromConfig(g, 1024).limits, { maxConns: 100, lowWater: 90, tcpTimeoutMs: 60_000, tcpFinTimeoutMs: 10_000, udpTimeoutMs: 30_000 });
  t.is(limitsFromConfig({ ...g, maxconn: 0 }, 1024).limits.maxConns, (1024 - 64) / 2, 'reserved_fds');
  const d = parseConfig('', 'd.toml').global;
  t.deepEqual(limitsFromConfig(d, 1024).limits, { maxConns: 384, lowWater: 345, tcpTimeoutMs: 900_000, tcpFinTimeoutMs: 120_000, udpTimeoutMs: 300_000 }, 'defaults: IPVS timeouts, 256 reserved');
});
