import test from 'ava';
import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { TomlSyntaxError, parseTomlDocument } from '../../src/config/toml.js';

// The reference: the PEG-generated `toml` package the daemon used before (TOML 1.1), kept as a
// development dependency for this comparison.
const require = createRequire(import.meta.url);
const reference = require('toml') as { parse(text: string): unknown };

const conf = (name: string): string => readFileSync(fileURLToPath(new URL(`../../../conf/${name}`, import.meta.url)), 'utf8');

/** Plain data for comparison: prototype-less tables become ordinary objects, Dates their time. */
function plain(v: unknown): unknown {
  if (v instanceof Date) return { date: v.getTime() };
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  if (typeof v === 'number' && Number.isNaN(v)) return 'NaN';
  return v;
}

function ours(text: string): { ok: true; data: unknown } | { ok: false; error: unknown } {
  try {
    return { ok: true, data: plain(parseTomlDocument(text).data) };
  } catch (error) {
    return { ok: false, error };
  }
}

function theirs(text: string): { ok: true; data: unknown } | { ok: false; error: unknown } {
  try {
    return { ok: true, data: plain(reference.parse(text)) };
  } catch (error) {
    return { ok: false, error };
  }
}

test('the shipped configs parse to the same data as with the reference parser', (t) => {
  for (const name of readdirSync(fileURLToPath(new URL('../../../conf/', import.meta.url))).filter((f) => f.endsWith('.toml'))) {
    const a = ours(conf(name));
    t.true(a.ok, `${name}: ${a.ok ? '' : String(a.error)}`);
    t.deepEqual(a, theirs(conf(name)), name);
  }
});

const CASES: string[] = [
  'a = "tab\\there" \n b = \'lit\\eral\'',
  'a = "\\u00e9\\U0001F600 \\" \\\\ \\b\\f\\n\\r\\t"',
  'a = """\nfirst\\\n   second \\\n\n  third"""',
  'a = """x""""\nb = """x"""""',
  "a = '''\nraw \\n text'''\nb = ''''quoted''''",
  'a = 0x_DEAD',
  'a = 0xDEAD_beef\nb = 0o755\nc = 0b1010\nd = +17\ne = -0\nf = 1_000',
  'a = 1e3\nb = -2.5E-2\nc = 6.626e-34\nd = 3.141_592\ne = inf\nf = -inf\ng = nan\nh = +nan',
  'a = 9007199254740991\nb = -9007199254740991',
  'a = 9007199254740992',
  'a = 1979-05-27T07:32:00Z\nb = 1979-05-27T00:32:00.999999-07:00\nc = 1979-05-27 07:32:00Z',
  'a = 1979-05-27T07:32:00\nb = 1979-05-27\nc = 07:32:00\nd = 00:32:00.5',
  'a = 1979-02-30',
  'a = [1, 2, 3,]\nb = [\n  "x", # comment\n  "y"\n]\nc = [[1, 2], ["a"], []]\nd = [{ x = 1 }, { y = 2 }]',
  'a = { x = 1, y.z = 2 }\nb = {}',
  'a.b.c = 1\na.b.d = 2\na.e = 3',
  '"quoted key" = 1\n\'lit key\' = 2\n"" = 3\nx."y.z".w = 4',
  '[a.b.c]\nx = 1\n[a]\ny = 2',
  '[a]\nx = 1\n[a]\ny = 2',
  '[a]\nb.c = 1\n[a.b.d]\ne = 2',
  '[a]\nb = 1\n[a.b]\nc = 2',
  'a = { x = 1 }\n[a.y]',
  'a = { x = 1 }\na.y = 2',
  'a = [1]\n[[a]]',
  '[[fruit]]\nname = "apple"\n[fruit.physical]\ncolor = "red"\n[[fruit.variety]]\nname = "red delicious"\n[[fruit]]\nname = "banana"\n[[fruit.variety]]\nname = "plantain"',
  'a = 1\na = 2',
  'a = 1 b = 2',
  'a =',
  '= 1',
  'a = "unterminated',
  'a = "new\nline"',
  'a = "bad \\q escape"',
  'a = tru',
  'a = 1__0',
  'a = 01',
  'a = .5',
  'a = 5.',
  '[a\nb = 1',
  '[[a]\nb = 1',
  'a = { b = 1, }',
  'a = {\n  b = 1,\n  c = 2\n}',
  'a = "\\e\\x41"',
  'a = 07:32',
  '# only a comment\n\n\n',
  '\ufeffa = 1',
  'a = 1\r\nb = 2\r\n',
  'a = 1\rb = 2',
  'a = "\u0001"',
  '[x] # comment\n[y]#c\nz=1#c',
];

test('hand-picked documents: same data, or both refuse', (t) => {
  for (const text of CASES) {
    const a = ours(text);
    const b = theirs(text);
    t.is(a.ok, b.ok, `${JSON.stringify(text)}: ours ${a.ok ? 'accepts' : `refuses (${String((a as { error: unknown }).error)})`}, reference ${b.ok ? 'accepts' : `refuses (${String((b as { error: unknown }).error)})`}`);
    if (a.ok && b.ok) t.deepEqual(a.data, b.data, JSON.stringify(text));
    if (!a.ok) t.true(a.error instanceof TomlSyntaxError, `${JSON.stringify(text)}: ${String(a.error)}`);
  }
});

// Random documents: tables, arrays of tables, dotted keys, inline tables and every value type.
const bareKey = fc.constantFrom('a', 'b', 'port', 'real_server', 'x-y', '1', 'check', '_');
const anyKey = fc.oneof(bareKey, fc.string({ maxLength: 6 }).map((s) => JSON.stringify(s)), fc.constantFrom("'lit'", '"a.b"', '""'));
const keyPath = fc.array(anyKey, { minLength: 1, maxLength: 3 }).map((k) => k.join('.'));
const scalar = fc.oneof(
  fc.integer().map(String),
  fc.constantFrom('0', '-0', '+1', '1_000', '0xff', '0o17', '0b11', '1e10', '-1.5', '3.0e-2', 'inf', '-nan', 'true', 'false', '9007199254740993'),
  fc.double({ noNaN: true }).filter(Number.isFinite).map((d) => (Number.isInteger(d) ? `${d}.0` : String(d))),
  fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s)),
  fc.string({ maxLength: 8 }).filter((s) => !/['\n\r\u007f]/.test(s) && !/[\u0000-\u0008\u000a-\u001f]/.test(s)).map((s) => `'${s}'`),
  fc.constantFrom('"""\nml\n"""', "'''x\ny'''", '1979-05-27T07:32:00Z', '1979-05-27', '07:32:00', '1979-05-27T07:32:00.5'),
);
const value: fc.Arbitrary<string> = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('arr'), tie('inl')),
  arr: fc.array(tie('v'), { maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
  inl: fc.array(fc.tuple(keyPath, tie('v')), { maxLength: 3 }).map((kv) => `{ ${kv.map(([k, v]) => `${k} = ${v}`).join(', ')} }`),
})).v as fc.Arbitrary<string>;
const line = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(keyPath, value).map(([k, v]) => `${k} = ${v}`) },
  { weight: 1, arbitrary: keyPath.map((k) => `[${k}]`) },
  { weight: 1, arbitrary: keyPath.map((k) => `[[${k}]]`) },
  { weight: 1, arbitrary: fc.constantFrom('', '# comment', '  ') },
);

test('random documents: ours accepts exactly what the reference accepts, with the same data', (t) => {
  let accepted = 0;
  let refused = 0;
  fc.assert(fc.property(fc.array(line, { maxLength: 12 }), (lines) => {
    const text = lines.join('\n');
    const a = ours(text);
    const b = theirs(text);
    if (a.ok !== b.ok) throw new Error(`${JSON.stringify(text)}: ours ${a.ok ? 'accepts' : `refuses (${String((a as { error: unknown }).error)})`}, reference ${b.ok ? 'accepts' : `refuses (${String((b as { error: unknown }).error)})`}`);
    if (a.ok && b.ok) t.deepEqual(a.data, b.data);
    if (a.ok) accepted++;
    else refused++;
    return true;
  }), { numRuns: 3000 });
  t.log(`${accepted} accepted, ${refused} refused by both`);
  // Both kinds must be well represented, or the comparison proves little.
  t.true(accepted > 300 && refused > 300, `${accepted} accepted, ${refused} refused`);
});

test('errors carry the line they are on', (t) => {
  const e = t.throws(() => parseTomlDocument('a = 1\n\n[t]\nb = "x"\nb = 2\n'), { instanceOf: TomlSyntaxError });
  t.is(e.line, 5);
  t.regex(e.message, /Cannot redefine existing key 't\.b'/);
  const m = t.throws(() => parseTomlDocument('a = """\n\n\n"""\nb = @'), { instanceOf: TomlSyntaxError });
  t.is(m.line, 5);
});

test('lineOf: keys, table headers, array-of-table elements, inline and multi-line values, single values as lists', (t) => {
  const doc = parseTomlDocument([
    '[global]', //                                  1
    'router_id = "a"', //                            2
    '', //                                           3
    '[[virtual_server]]', //                         4
    'port = 80', //                                  5
    '[[virtual_server.real_server]]', //             6
    'address = "10.0.0.1"', //                       7
    'check = { type = "TCP_CHECK", retry = 3 }', //  8
    '[[virtual_server]]', //                         9
    'vips = [', //                                   10
    '  "a",', //                                     11
    '  "b",', //                                     12
    ']', //                                          13
    'x.y.z = 1', //                                  14
  ].join('\n'));
  t.is(doc.lineOf(['global']), 1);
  t.is(doc.lineOf(['global', 'router_id']), 2);
  t.is(doc.lineOf(['global', 'nothing']), 1);
  t.is(doc.lineOf(['virtual_server']), 4);
  t.is(doc.lineOf(['virtual_server', 0, 'port']), 5);
  t.is(doc.lineOf(['virtual_server', 0, 'real_server', 0]), 6);
  t.is(doc.lineOf(['virtual_server', 0, 'real_server', 0, 'check', 'retry']), 8);
  // `check = {…}` is normalised to a list: its element 0 is the same value.
  t.is(doc.lineOf(['virtual_server', 0, 'real_server', 0, 'check', 0, 'retry']), 8);
  t.is(doc.lineOf(['virtual_server', 1]), 9);
  t.is(doc.lineOf(['virtual_server', 1, 'vips']), 10);
  t.is(doc.lineOf(['virtual_server', 1, 'vips', 1]), 12);
  t.is(doc.lineOf(['virtual_server', 1, 'x', 'y']), 14);
  t.is(doc.lineOf(['virtual_server', 7, 'port']), 4);
  t.is(doc.lineOf(['nothing']), undefined);
});

test('a 1,000-virtual-server file parses in well under the old parser\'s time', (t) => {
  const block = (i: number) => `[[virtual_server]]\naddress = "10.0.0.1"\nport = ${20000 + i}\nprotocol = "TCP"\n\n[[virtual_server.real_server]]\naddress = "10.0.1.${i % 250}"\nport = ${10000 + i}\ncheck = { type = "HTTP_GET", path = "/", status_code = 200, connect_timeout = 1 }\n`;
  const text = Array.from({ length: 1000 }, (_, i) => block(i)).join('\n');
  const data = parseTomlDocument(text).data as { virtual_server: Array<{ port: number }> };
  t.is(data.virtual_server.length, 1000);
  t.is(data.virtual_server[999]!.port, 20999);
  t.deepEqual(plain(data), theirs(text).ok ? (theirs(text) as { data: unknown }).data : undefined);
});
