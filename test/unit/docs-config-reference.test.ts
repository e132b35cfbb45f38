import test from 'ava';
import { readFileSync } from 'node:fs';
import { schemaRows } from '../../src/config/docs.js';
import { CONFIG_REFERENCE_PATH, renderConfigReference } from '../../scripts/gen-config-reference.js';

test('docs/config-reference.md is up to date with the config schema', (t) => {
  let committed = '';
  try {
    committed = readFileSync(CONFIG_REFERENCE_PATH, 'utf8');
  } catch {
    t.fail(`${CONFIG_REFERENCE_PATH} is missing: run node dist/scripts/gen-config-reference.js`);
    return;
  }
  const fresh = renderConfigReference();
  if (committed !== fresh) {
    const a = committed.split('\n');
    const b = fresh.split('\n');
    const i = a.findIndex((line, n) => line !== b[n]);
    const at = i === -1 ? Math.min(a.length, b.length) : i;
    t.fail(`docs/config-reference.md is stale (first difference at line ${at + 1}):\n  file:      ${a[at] ?? '(end)'}\n  generated: ${b[at] ?? '(end)'}\n` +
      'regenerate it: npm run build:ts && node dist/scripts/gen-config-reference.js');
    return;
  }
  t.pass();
});

test('the reference lists every schema key once, with its default and keepalived spelling', (t) => {
  const rows = schemaRows();
  const doc = renderConfigReference(rows);
  for (const r of rows) {
    const key = r.path.replace(/^[a-z_]+(\[\])?\.?/, '');
    if (key === '') continue; // section rows become the section heading
    t.true(doc.includes(`| \`${key}\` |`), `row for ${r.path}`);
  }
  t.true(doc.includes('| `priority` | an integer 1..255 | `100` | `priority` |'));
  t.true(doc.includes('| `metrics_listen` |'));
  t.regex(doc, /\| `real_server\[\]\.check\[\]\.path` \| .* \*\(HTTP_GET, SSL_GET\)\* \|/);
  t.regex(doc, new RegExp(`${rows.length} keys in all`));
});

test('table cells cannot be broken by a pipe in a doc line', (t) => {
  const doc = renderConfigReference([
    { path: 'global', type: 'a table', required: false, doc: 'x', keepalived: 'global_defs' },
    { path: 'global.k', type: 'one of "a|b"', required: false, default: '"a|b"', doc: 'either a | b', keepalived: null },
  ]);
  const row = doc.split('\n').find((l) => l.startsWith('| `k` |'))!;
  t.is(row.split(/(?<!\\)\|/).length - 2, 5, row);
});
