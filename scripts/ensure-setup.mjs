#!/usr/bin/env node
// Runs before `npm test`, `npm run demo` and `npm run bench`: installs dependencies when
// node_modules is missing or older than package-lock.json, then builds (native addon + TypeScript).
// Plain Node with no dependencies, so it works on a fresh clone.
import { existsSync, statSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });
const mtime = (p) => (existsSync(join(root, p)) ? statSync(join(root, p)).mtimeMs : 0);

if (!existsSync(join(root, 'node_modules/.package-lock.json')) || mtime('package-lock.json') > mtime('node_modules/.package-lock.json')) {
  console.error('[setup] installing dependencies (npm ci)');
  run('npm ci --no-audit --no-fund');
}
if (process.env.KEEPALIVE_TS_SKIP_BUILD !== '1') {
  console.error('[setup] building (npm run build)');
  run('npm run build --silent');
}
