/**
 * The incremental load of a reload (src/config/incremental.ts, src/config/toml-split.ts) and the
 * plan's identity fast path (planReload): an edited block is read again, every other virtual
 * server is the running config's own object, and the result — config, lines, issues, plan — is
 * the one a whole-file load gives.
 */
import test from 'ava';
import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isEmpty, planReload } from '../../src/config/diff.js';
import { ConfigError, configInputs, parseConfigIncremental, parseConfigSource, type ConfigCache, type KeyPath } from '../../src/config/index.js';
import { splitVirtualServers } from '../../src/config/toml-split.js';

const INPUTS = configInputs();
const FILE = 'test.toml';
const confDir = fileURLToPath(new URL('../../../conf/', import.meta.url));

// ---------------------------------------------------------------------------------------------
// A model of a config with virtual servers, rendered to TOML, for the property tests.

interface CheckModel { type: 'TCP_CHECK' | 'HTTP_GET'; connect_timeout: number; retry: number; delay_before_retry: number; path: string; status: number[] }
interface RealModel { octet: number; port: number; weight: number; inhibit_on_failure: boolean; uthreshold: number; checks: CheckModel[] }
interface VsModel { port: number; lb_algo: string; delay_loop: number; persistence_timeout: number; drain_timeout: number; hysteresis: number; ha_suspend: boolean; alpha: boolean; reals: RealModel[] }

const HEAD = `# head comment with [brackets] and "quotes"
[global]
router_id = "lb1"
metrics_listen = ""

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 150
virtual_ipaddress = [
  "10.0.0.50/24",
]
`;

function renderCheck(c: CheckModel): string {
  const common = `connect_timeout = ${c.connect_timeout}, retry = ${c.retry}, delay_before_retry = ${c.delay_before_retry}`;
  return c.type === 'TCP_CHECK'
    ? `{ type = "TCP_CHECK", ${common} }`
    : `{ type = "HTTP_GET", path = "${c.path}", status_code = [${c.status.join(', ')}], ${common} }`;
}

function renderVs(v: VsModel): string {
  const reals = v.reals.map((r) => [
    '[[virtual_server.real_server]]',
    `address = "10.0.1.${r.octet}"`,
    `port = ${r.port}`,
    `weight = ${r.weight}`,
    `inhibit_on_failure = ${r.inhibit_on_failure}`,
    `uthreshold = ${r.uthreshold}`,
    `check = [${r.checks.map(renderCheck).join(', ')}]`,
    '',
  ].join('\n'));
  return [
    '[[virtual_server]]',
    'address = "10.0.0.50"',
    `port = ${v.port}`,
    'protocol = "TCP"',
    'lb_kind = "PROXY"',
    `lb_algo = "${v.lb_algo}"`,
    `delay_loop = ${v.delay_loop}`,
    `persistence_timeout = ${v.persistence_timeout}`,
    `drain_timeout = ${v.drain_timeout}`,
    `hysteresis = ${v.hysteresis}`,
    `ha_suspend = ${v.ha_suspend}`,
    `alpha = ${v.alpha}`,
    '',
    ...reals,
  ].join('\n');
}

const render = (vss: readonly VsModel[]): string => `${HEAD}\n${vss.map(renderVs).join('\n')}`;

const checkArb: fc.Arbitrary<CheckModel> = fc.record({
  type: fc.constantFrom('TCP_CHECK' as const, 'HTTP_GET' as const),
  connect_timeout: fc.integer({ min: 1, max: 9 }),
  retry: fc.integer({ min: 0, max: 4 }),
  delay_before_retry: fc.integer({ min: 1, max: 4 }),
  path: fc.constantFrom('/', '/health', '/a/b'),
  status: fc.constantFrom([200], [200, 204], [301]),
});
const realArb = (octet: number): fc.Arbitrary<RealModel> => fc.record({
  octet: fc.constant(octet),
  port: fc.integer({ min: 1, max: 60000 }),
  weight: fc.integer({ min: 0, max: 100 }),
  inhibit_on_failure: fc.boolean(),
  uthreshold: fc.integer({ min: 0, max: 500 }),
  checks: fc.array(checkArb, { minLength: 1, maxLength: 2 }),
});
const vsArb = (i: number): fc.Arbitrary<VsModel> => fc.record({
  port: fc.constant(8000 + i * 10),
  lb_algo: fc.constantFrom('rr', 'wrr', 'lc', 'wlc', 'sh'),
  delay_loop: fc.integer({ min: 1, max: 30 }),
  persistence_timeout: fc.integer({ min: 0, max: 600 }),
  drain_timeout: fc.integer({ min: 0, max: 5 }),
  hysteresis: fc.integer({ min: 0, max: 2 }),
  ha_suspend: fc.boolean(),
  alpha: fc.boolean(),
  reals: fc.integer({ min: 1, max: 3 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, j) => realArb(10 + j)))),
});
const configArb: fc.Arbitrary<VsModel[]> = fc.integer({ min: 2, max: 6 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => vsArb(i))));

/** One edit of one key anywhere in a virtual server: its own keys, a real server's, a check's. */
type Edit = (v: VsModel, pick: number) => string;
const EDITS: Record<string, Edit> = {
  lb_algo: (v) => ((v.lb_algo = v.lb_algo === 'rr' ? 'wlc' : 'rr'), 'lb_algo'),
  delay_loop: (v) => ((v.delay_loop += 1), 'delay_loop'),
  persistence_timeout: (v) => ((v.persistence_timeout += 7), 'persistence_timeout'),
  drain_timeout: (v) => ((v.drain_timeout += 1), 'drain_timeout'),
  hysteresis: (v) => ((v.hysteresis = (v.hysteresis + 1) % 3), 'hysteresis'),
  ha_suspend: (v) => ((v.ha_suspend = !v.ha_suspend), 'ha_suspend'),
  alpha: (v) => ((v.alpha = !v.alpha), 'alpha'),
  port: (v) => ((v.port += 5), 'port'),
  'real_server.weight': (v, p) => ((v.reals[p % v.reals.length]!.weight += 1), 'weight'),
  'real_server.inhibit_on_failure': (v, p) => { const r = v.reals[p % v.reals.length]!; r.inhibit_on_failure = !r.inhibit_on_failure; return 'inhibit_on_failure'; },
  'real_server.uthreshold': (v, p) => ((v.reals[p % v.reals.length]!.uthreshold += 3), 'uthreshold'),
  'real_server.port': (v, p) => ((v.reals[p % v.reals.length]!.port = (v.reals[p % v.reals.length]!.port % 60000) + 1), 'port'),
  'check.connect_timeout': (v, p) => ((v.reals[p % v.reals.length]!.checks[0]!.connect_timeout += 1), 'check'),
  'check.retry': (v, p) => ((v.reals[p % v.reals.length]!.checks[0]!.retry += 1), 'check'),
  'check.type': (v, p) => { const c = v.reals[p % v.reals.length]!.checks[0]!; c.type = c.type === 'HTTP_GET' ? 'TCP_CHECK' : 'HTTP_GET'; return 'check'; },
  'check.added': (v, p) => { const r = v.reals[p % v.reals.length]!; r.checks.push({ type: 'TCP_CHECK', connect_timeout: 9, retry: 9, delay_before_retry: 9, path: '/', status: [200] }); return 'check'; },
};

/** Every key path of a value, for comparing lineOf answers. */
function paths(v: unknown, prefix: (string | number)[], out: KeyPath[]): KeyPath[] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

function load(text: string, prev?: ConfigCache) {
  return parseConfigIncremental(text, FILE, INPUTS, prev);
}

// ---------------------------------------------------------------------------------------------
// The split

test('split: blocks are [[virtual_server]] with their sub-tables; the rest keeps its line numbers', (t) => {
  const text = `${HEAD}\n[[virtual_server]]\nport = 1\n[[virtual_server.real_server]]\naddress = "x"\n\n[[virtual_server_group]]\nname = "g"\n[[virtual_server]]\nport = 2\n`;
  const split = splitVirtualServers(text)!;
  t.is(split.blocks.length, 2);
  t.is(text.slice(split.blocks[0]!.start, split.blocks[0]!.end), '[[virtual_server]]\nport = 1\n[[virtual_server.real_server]]\naddress = "x"\n\n');
  t.is(text.slice(split.blocks[1]!.start, split.blocks[1]!.end), '[[virtual_server]]\nport = 2\n');
  t.is(split.blocks[1]!.line, text.slice(0, split.blocks[1]!.start).split('\n').length);
  t.is(split.rest.split('\n').length, text.split('\n').length);
  t.true(split.rest.includes('[[virtual_server_group]]'));
  t.false(split.rest.includes('[[virtual_server]]'));
});

test('split: a header-like line inside a multi-line string, an array or after a comment does not start a block', (t) => {
  const text = [
    '[global]',
    'notification_email_from = """',
    '[[virtual_server]]',
    '"""',
    "x = '''",
    '[[virtual_server]]',
    "'''",
    'y = [',
    '  [1, 2],',
    '  "a]", \'b[\', # ] [ in a comment',
    ']',
    '# [[virtual_server]] in a comment',
    'z = "\\"[[virtual_server]]"',
    '[[virtual_server]]',
    'port = 1',
    '',
  ].join('\n');
  const split = splitVirtualServers(text)!;
  t.is(split.blocks.length, 1);
  t.is(split.blocks[0]!.line, 14);
});

test('split: layouts it does not vouch for give null (the caller parses the whole file)', (t) => {
  t.is(splitVirtualServers('["virtual_server"]\nx = 1\n'), null);
  t.is(splitVirtualServers('[[virtual_server.real_server]]\nx = 1\n'), null);
  t.is(splitVirtualServers('[virtual_server]\nx = 1\n'), null);
  t.is(splitVirtualServers('[global]\n[virtual_server.x]\n'), null);
  t.deepEqual(splitVirtualServers('[global]\nx = 1\n'), { blocks: [], rest: '[global]\nx = 1\n' });
});

// ---------------------------------------------------------------------------------------------
// Same result as a whole-file load

test('the shipped example configs load the same incrementally (config and every line)', (t) => {
  for (const name of readdirSync(confDir).filter((f) => f.endsWith('.toml'))) {
    const text = readFileSync(`${confDir}${name}`, 'utf8');
    const full = parseConfigSource(text, FILE);
    const cold = load(text);
    t.deepEqual(cold.source.config, full.config, name);
    // Again with the cache of the first load and one comment added at the end: every block reused.
    const warm = load(`${text}\n# edited\n`, cold.cache);
    t.deepEqual(warm.source.config, full.config, name);
    for (const p of paths(full.config, [], [])) t.is(warm.source.lineOf(p), full.lineOf(p), `${name}: ${p.join('.')}`);
  }
});

test('property: an edit of any key of one virtual server re-reads that block only, is in the plan, and matches a whole-file load', (t) => {
  fc.assert(
    fc.property(configArb, fc.nat(), fc.constantFrom(...Object.keys(EDITS)), fc.nat(), (vss, which, edit, pick) => {
      const before = render(vss);
      const first = load(before);
      t.deepEqual(first.source.config, parseConfigSource(before, FILE).config);
      const i = which % vss.length;
      const edited = structuredClone(vss);
      EDITS[edit]!(edited[i]!, pick);
      const after = render(edited);
      const next = load(after, first.cache);
      const full = parseConfigSource(after, FILE);
      // The same config as a whole-file load, every other virtual server the very same object.
      t.deepEqual(next.source.config, full.config);
      t.is(next.reused, vss.length - 1);
      next.source.config.virtual_server.forEach((vs, j) => t.is(vs === first.source.config.virtual_server[j], j !== i, `virtual_server[${j}]`));
      for (const p of paths(full.config.virtual_server, ['virtual_server'], [])) t.is(next.source.lineOf(p), full.lineOf(p), p.join('.'));
      // The plan sees the change, in that virtual server only, as the plan of two whole-file loads does.
      const plan = planReload(first.source.config, next.source.config);
      t.false(isEmpty(plan), `${edit} of virtual_server[${i}] not in the plan`);
      const reference = planReload(parseConfigSource(before, FILE).config, full.config);
      t.deepEqual(plan.summary, reference.summary);
      t.deepEqual(plan, reference);
      const key = next.source.config.virtual_server[i]!.key;
      t.true(plan.summary.every((line) => line.includes(key) || line.includes(first.source.config.virtual_server[i]!.key)), plan.summary.join('\n'));
    }),
    { numRuns: 60 },
  );
});

test('property: comments and blank lines added anywhere change nothing, and every line still matches', (t) => {
  fc.assert(
    fc.property(configArb, fc.nat(), fc.constantFrom('\n', '# note [x] "y"\n', '\n\n# two\n'), (vss, at, insert) => {
      const before = render(vss);
      const first = load(before);
      // Insert at a line start.
      const starts = [0, ...[...before.matchAll(/\n/g)].map((m) => m.index + 1)].filter((x) => x < before.length);
      const pos = starts[at % starts.length]!;
      const after = before.slice(0, pos) + insert + before.slice(pos);
      const next = load(after, first.cache);
      const full = parseConfigSource(after, FILE);
      t.deepEqual(next.source.config, full.config);
      t.true(isEmpty(planReload(first.source.config, next.source.config)));
      for (const p of paths(full.config, [], [])) t.is(next.source.lineOf(p), full.lineOf(p), p.join('.'));
    }),
    { numRuns: 40 },
  );
});

// ---------------------------------------------------------------------------------------------
// Errors and rules across the file

function issuesOf(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return undefined;
}

const SMALL: VsModel[] = [0, 1, 2].map((i) => ({
  port: 8000 + i * 10, lb_algo: 'rr', delay_loop: 3, persistence_timeout: 0, drain_timeout: 1, hysteresis: 0, ha_suspend: false, alpha: false,
  reals: [{ octet: 10, port: 80, weight: 1, inhibit_on_failure: false, uthreshold: 0, checks: [{ type: 'TCP_CHECK', connect_timeout: 2, retry: 1, delay_before_retry: 1, path: '/', status: [200] }] }],
}));

test('a bad edit in one block fails with the issues of a whole-file load (file, line, key)', (t) => {
  const first = load(render(SMALL));
  for (const bad of [
    render(SMALL).replace('weight = 1\n', 'weight = -1\n'),
    render(SMALL).replace('delay_loop = 3\n', 'delay_loop = 3\nno_such_key = 1\n'),
    render(SMALL).replace('port = 8010\n', 'port = 8010\nport = 8011\n'),
    `${render(SMALL)}\n[[virtual_server]]\nport = "x"\n`,
  ]) {
    const want = issuesOf(() => parseConfigSource(bad, FILE));
    t.truthy(want);
    t.deepEqual(issuesOf(() => load(bad, first.cache)), want);
  }
});

test('the rules across virtual servers still see the reused ones: an edit that overlaps another service is refused', (t) => {
  const first = load(render(SMALL));
  const clash = render(SMALL).replace('port = 8020\n', 'port = 8000\n');
  const want = issuesOf(() => parseConfigSource(clash, FILE)) as Array<{ message: string; line?: number }>;
  t.truthy(want?.some((i) => /overlap|duplicate|same/i.test(i.message)), JSON.stringify(want));
  t.deepEqual(issuesOf(() => load(clash, first.cache)), want);
});

test('an edit outside the virtual servers (the rest of the file) reuses nothing and still matches', (t) => {
  const first = load(render(SMALL));
  const text = render(SMALL).replace('router_id = "lb1"', 'router_id = "lb2"');
  const next = load(text, first.cache);
  t.is(next.reused, 0);
  t.deepEqual(next.source.config, parseConfigSource(text, FILE).config);
  next.source.config.virtual_server.forEach((vs, j) => t.not(vs, first.source.config.virtual_server[j]));
});

test('a virtual server of a group is read again when the group (in the rest of the file) changes', (t) => {
  const group = (port: number) => `\n[[virtual_server_group]]\nname = "web"\nmembers = ["10.0.0.60:${port}"]\n`;
  const vs = '\n[[virtual_server]]\ngroup = "web"\nprotocol = "TCP"\nlb_kind = "PROXY"\n\n[[virtual_server.real_server]]\naddress = "10.0.1.10"\nport = 80\n';
  const a = `${render(SMALL)}${group(9000)}${vs}`;
  const b = `${render(SMALL)}${group(9001)}${vs}`;
  const first = load(a);
  t.deepEqual(first.source.config, parseConfigSource(a, FILE).config);
  const next = load(b, first.cache);
  t.deepEqual(next.source.config, parseConfigSource(b, FILE).config);
  const plan = planReload(first.source.config, next.source.config);
  t.deepEqual(plan, planReload(parseConfigSource(a, FILE).config, parseConfigSource(b, FILE).config));
  t.false(isEmpty(plan));
});

test('the plan of an unchanged virtual server by identity equals the plan of an equal copy', (t) => {
  const text = render(SMALL);
  const a = load(text);
  const b = load(text.replace('weight = 1\n', 'weight = 2\n'), a.cache);
  t.true(b.reused >= 2);
  const byIdentity = planReload(a.source.config, b.source.config);
  const byValue = planReload(a.source.config, structuredClone(b.source.config));
  t.deepEqual(byIdentity, byValue);
});
