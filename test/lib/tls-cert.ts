// A throwaway self-signed certificate made with the `openssl` CLI into a fresh temp dir,
// for TLS tests (SSL_GET). The name is in both the CN and the subjectAltName so Node's
// hostname check accepts it when a test turns verification on.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TlsCert {
  dir: string;
  keyFile: string;
  certFile: string;
  key: Buffer;
  cert: Buffer;
  /** Removes the temp dir. */
  cleanup(): Promise<void>;
}

export async function makeSelfSignedCert(name = 'rs.test', opts: { ip?: string } = {}): Promise<TlsCert> {
  const dir = await mkdtemp(join(tmpdir(), 'keepalive-ts-cert-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  const san = [`DNS:${name}`, ...(opts.ip ? [`IP:${opts.ip}`] : [])].join(',');
  try {
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${name}`,
      '-addext', `subjectAltName=${san}`,
    ], { timeout: 30_000 });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    keyFile,
    certFile,
    key: await readFile(keyFile),
    cert: await readFile(certFile),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
