/**
 * `keepalive-ts check` for [bgp]: BIRD 2 must be installed (E_BIRD_MISSING names the Debian
 * package) and must accept the generated bird.conf (`bird -p`). Returns a line for the report.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { KeepaliveError } from '../util/errors.js';
import { birdConfig } from './bird-config.js';
import { checkBirdConfig, findBird } from './bird.js';

export async function checkBgp(config: Config): Promise<string | null> {
  if (!config.bgp) return null;
  const bin = findBird();
  const dir = mkdtempSync(join(tmpdir(), 'keepalive-ts-check-'));
  try {
    const file = join(dir, 'bird.conf');
    writeFileSync(file, birdConfig(config.bgp, { sourceFile: config.file }), { mode: 0o600 });
    const problem = await checkBirdConfig(bin, file);
    if (problem !== null) throw new KeepaliveError('E_BIRD', `BIRD ${bin.version} refuses the bird.conf generated from [bgp]: ${problem}`);
    return `BIRD ${bin.version} (${bin.bird}) accepts the generated bird.conf`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
