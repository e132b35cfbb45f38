// docs/import.md lists every keepalived keyword the importer does not import.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ruleTables } from '../../src/import/keepalived-map.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

test('every unsupported keyword of the rule tables is named in docs/import.md', (t) => {
  const doc = readFileSync(join(ROOT, 'docs/import.md'), 'utf8').replace(/```[\s\S]*?```/g, '');
  // Words written as code: `keyword`, `a`, `b*` (a trailing * stands for a prefix).
  const words = new Set([...doc.matchAll(/`([^`]+)`/g)].flatMap((m) => m[1]!.split(/[\s,]+/)));
  const prefixes = [...words].filter((w) => w.endsWith('*')).map((w) => w.slice(0, -1));
  const missing: string[] = [];
  for (const [block, rules] of Object.entries(ruleTables())) {
    for (const [k, r] of Object.entries(rules)) {
      if (r.unsupported === undefined) continue;
      if (!words.has(k) && !prefixes.some((p) => k.startsWith(p))) missing.push(`${block}: ${k}`);
    }
  }
  t.deepEqual(missing, []);
});
