// `keepalive-ts import` on our own fixtures (test/fixtures/import/, modelled on what real
// deployments write) against golden TOML and golden messages; each must pass `check`.
// Regenerate the goldens after a deliberate change: KEEPALIVE_TS_UPDATE_GOLDEN=1 npx ava dist/test/unit/import-fixtures.test.js
import test from 'ava';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/index.js';
import { diskFs } from '../../src/import/fs.js';
import { importConfig, type ImportOptions } from '../../src/import/index.js';
import { formatMessage } from '../../src/import/types.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const DIR = join(ROOT, 'test/fixtures/import');
const UPDATE = process.env.KEEPALIVE_TS_UPDATE_GOLDEN === '1';

/** Fixture options from NAME.args ("--config-id X", "--from F"). */
function optionsOf(file: string): ImportOptions {
  const argsFile = file.replace(/\.[^.]+$/, '.args');
  const words = existsSync(argsFile) ? readFileSync(argsFile, 'utf8').trim().split(/\s+/) : [];
  const o: ImportOptions = { defaultConfigId: 'testhost', env: {} };
  for (let i = 0; i < words.length; i += 2) {
    if (words[i] === '--config-id') o.configId = words[i + 1]!;
    else if (words[i] === '--from') o.from = words[i + 1] as ImportOptions['from'];
  }
  return o;
}

const fixtures = [
  ...readdirSync(join(DIR, 'keepalived')).filter((f) => f.endsWith('.conf')).map((f) => join(DIR, 'keepalived', f)),
  ...readdirSync(join(DIR, 'ldirectord')).filter((f) => f.endsWith('.cf')).map((f) => join(DIR, 'ldirectord', f)),
];

test('there are at least 20 fixtures of our own', (t) => {
  t.true(fixtures.length >= 20, `${fixtures.length} fixtures`);
});

for (const file of fixtures) {
  const name = file.slice(DIR.length + 1);
  test(`${name} imports to the golden TOML and messages, and passes check`, (t) => {
    const r = importConfig(file, diskFs(file), optionsOf(file));
    const messages = r.messages.map(formatMessage).join('\n') + (r.messages.length > 0 ? '\n' : '');
    const tomlGolden = file.replace(/\.[^.]+$/, '.toml');
    const msgGolden = file.replace(/\.[^.]+$/, '.messages');
    if (UPDATE) {
      writeFileSync(tomlGolden, r.toml);
      writeFileSync(msgGolden, messages);
    }
    t.true(r.ok, messages);
    t.notThrows(() => parseConfig(r.toml, name));
    t.is(r.toml, readFileSync(tomlGolden, 'utf8'));
    t.is(messages, readFileSync(msgGolden, 'utf8'));
    // No message without a line, and no error in our own fixtures.
    for (const m of r.messages) {
      t.true(m.loc.line >= 1);
      t.not(m.kind, 'error', formatMessage(m));
    }
  });
}
