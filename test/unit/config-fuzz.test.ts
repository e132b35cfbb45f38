import test from 'ava';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/index.js';
import { isKeepaliveError } from '../../src/util/errors.js';

const example = readFileSync(fileURLToPath(new URL('../../../conf/keepalive.toml', import.meta.url)), 'utf8');
const director = readFileSync(fileURLToPath(new URL('../../../conf/director-a.toml', import.meta.url)), 'utf8');

/** parseConfig may accept or reject, but only ever rejects with E_CONFIG_INVALID, and quickly. */
function parsesOrRejectsCleanly(text: string): boolean {
  const started = Date.now();
  try {
    parseConfig(text, 'fuzz.toml');
  } catch (err) {
    if (!isKeepaliveError(err, 'E_CONFIG_INVALID')) {
      throw new Error(`unexpected ${String(err)} for:\n${text}`, { cause: err });
    }
    const issues = (err as { issues?: unknown[] }).issues;
    if (!Array.isArray(issues) || issues.length === 0) throw new Error('E_CONFIG_INVALID without issues');
  }
  if (Date.now() - started > 2000) throw new Error('parse took over 2 s');
  return true;
}

const tomlValue = fc.oneof(
  fc.integer().map(String),
  fc.constantFrom('0', '-1', '256', '65536', '9007199254740993', '1e400', 'inf', '-inf', 'nan', '0.5', '40.96', '1979-05-27T07:32:00Z', '07:32:00'),
  fc.double().filter(Number.isFinite).map((d) => (Number.isInteger(d) ? `${d}.0` : String(d))),
  fc.boolean().map(String),
  fc.string().map((s) => JSON.stringify(s)),
  fc.constantFrom('"10.0.0.1/24"', '"fd00::1"', '"::"', '"TCP_CHECK"', '"VI_1"', '""', '[]', '{}', '[1, "a"]', '{ type = "HTTP_GET" }', '[{ type = "FOO" }]', '{ __proto__ = 1 }'),
);

const keyNames = fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'priority', 'type', 'check', 'name', 'prototype', 'x');

type Mutation = (lines: string[]) => string[];

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  // Replace the value of some assignment.
  fc.tuple(fc.nat(), tomlValue).map(([n, v]): Mutation => (lines) => {
    const assigns = lines.map((l, i) => (/^\s*[\w"]+\s*=/.test(l) ? i : -1)).filter((i) => i >= 0);
    if (assigns.length === 0) return lines;
    const at = assigns[n % assigns.length]!;
    return lines.map((l, i) => (i === at ? `${l.slice(0, l.indexOf('=') + 1)} ${v}` : l));
  }),
  // Insert a line: an assignment of an odd key, a table header, or raw text.
  fc.tuple(fc.nat(), fc.oneof(
    fc.tuple(keyNames, tomlValue).map(([k, v]) => `${k} = ${v}`),
    fc.constantFrom('[global]', '[[vrrp_instance]]', '[[virtual_server.real_server]]', '[sync]', '[[check]]', '[__proto__]', '[vrrp_instance.x]'),
    fc.string(),
  )).map(([n, line]): Mutation => (lines) => {
    const at = n % (lines.length + 1);
    return [...lines.slice(0, at), line, ...lines.slice(at)];
  }),
  // Delete or duplicate a line.
  fc.tuple(fc.nat(), fc.boolean()).map(([n, dup]): Mutation => (lines) => {
    const at = n % Math.max(1, lines.length);
    return dup ? [...lines.slice(0, at + 1), ...lines.slice(at)] : [...lines.slice(0, at), ...lines.slice(at + 1)];
  }),
  // Cut a character range anywhere.
  fc.tuple(fc.nat(), fc.nat({ max: 40 })).map(([n, len]): Mutation => (lines) => {
    const text = lines.join('\n');
    const at = n % Math.max(1, text.length);
    return (text.slice(0, at) + text.slice(at + len)).split('\n');
  }),
);

test('random strings never throw anything but E_CONFIG_INVALID', (t) => {
  fc.assert(fc.property(fc.string({ maxLength: 400 }), parsesOrRejectsCleanly), { numRuns: 500 });
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), parsesOrRejectsCleanly), { numRuns: 300 });
  t.pass();
});

test('random mutations of valid configs never throw anything but E_CONFIG_INVALID and never hang', (t) => {
  for (const base of [director, example]) {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 5 }), (mutations) =>
        parsesOrRejectsCleanly(mutations.reduce((lines, m) => m(lines), base.split('\n')).join('\n')),
      ),
      { numRuns: 1000 },
    );
  }
  t.pass();
});

test('prototype-named keys are plain unknown keys, not object internals', (t) => {
  const err = t.throws(() => parseConfig('[global]\n__proto__ = 1\nconstructor = "x"\n', 'p.toml'));
  t.true(isKeepaliveError(err, 'E_CONFIG_INVALID'));
  t.regex(err!.message, /p\.toml:2 global\.__proto__: unknown key/);
  t.regex(err!.message, /p\.toml:3 global\.constructor: unknown key/);
});
