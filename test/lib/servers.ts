// Third-party programs the integration tests run inside lab hosts: nginx real servers,
// keepalived peers, tcpdump captures, and small clients (ping, HTTP GET).
// Everything writes only below the lab's tmpDir, so any number of instances can coexist on
// the VM (and with a distro-started nginx/keepalived, whose /run pid files we never touch).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab, LabHost, LabProcess } from './netns.js';
import { waitFor } from './procs.js';

// ---------------------------------------------------------------------------------------------
// nginx

export interface NginxOptions {
  port: number;
  /** Response body for every request (no `"`, `\`, `$` or control characters: it is inlined in nginx.conf). */
  body: string;
  /** Usually lab.tmpDir; a per-instance subdirectory is created below it. */
  tmpDir: string;
  /** Also listen on [::]:port (default true). */
  ipv6?: boolean;
  timeoutMs?: number;
  /**
   * Also serve GET /big: `bytes` bytes sent at `rate` (nginx limit_rate, e.g. "200k"), so a
   * transfer lasts bytes / rate (2 MiB at 200k: ~10 s).
   */
  big?: { bytes: number; rate: string };
}

/**
 * An nginx.conf for a lab host: one worker, foreground, and every path nginx would otherwise take
 * from its compiled-in defaults (/run, /var/lib/nginx, /var/log/nginx, /var/lock) inside `dir`.
 * Workers run as root because the lab tmpDir is 0700.
 */
export function nginxConfig(dir: string, o: { listen: string[]; locations: string; workerConnections?: number; main?: string; http?: string }): string {
  return `
daemon off;
master_process on;
worker_processes 1;
user root root;
pid ${dir}/nginx.pid;
lock_file ${dir}/nginx.lock;
error_log stderr notice;
${o.main ?? ''}
events { worker_connections ${o.workerConnections ?? 1024}; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${o.http ?? ''}
  server {
    ${o.listen.join('\n    ')}
    ${o.locations}
  }
}
`;
}

/** Starts nginx (one worker, foreground) answering `200 <body>`; resolves once it listens. */
export async function startNginx(host: LabHost, opts: NginxOptions): Promise<LabProcess> {
  if (/["\\$\x00-\x1f]/.test(opts.body)) throw new Error(`nginx body must not contain quotes, backslashes, '$' or control characters: ${JSON.stringify(opts.body)}`);
  const dir = join(opts.tmpDir, `nginx-${host.name}-${opts.port}`);
  await mkdir(dir, { recursive: true });
  const listen = [`listen ${opts.port};`];
  if (opts.ipv6 ?? true) listen.push(`listen [::]:${opts.port} ipv6only=on;`);
  let locations = `location / {\n      default_type text/plain;\n      return 200 "${opts.body}";\n    }`;
  if (opts.big) {
    if (!/^\d+[km]?$/.test(opts.big.rate)) throw new Error(`nginx limit_rate must look like 200k: ${opts.big.rate}`);
    await mkdir(join(dir, 'www'), { recursive: true });
    await writeFile(join(dir, 'www', 'big'), Buffer.alloc(opts.big.bytes, 'x'));
    locations += `\n    location = /big {\n      root ${dir}/www;\n      default_type application/octet-stream;\n      limit_rate ${opts.big.rate};\n    }`;
  }
  const conf = nginxConfig(dir, { listen, locations });
  const confPath = join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  // -e: nginx opens its error log before reading the config; keep it off /var/log/nginx.
  const proc = host.spawn(['nginx', '-e', 'stderr', '-p', dir, '-c', confPath]);
  await waitUntilListening(host, opts.port, proc, opts.timeoutMs ?? 10_000, `nginx on ${host.name}:${opts.port}`);
  return proc;
}

/** Waits until a TCP listener on `port` exists in the host, failing early if `proc` dies. */
export async function waitUntilListening(host: LabHost, port: number, proc: LabProcess, timeoutMs: number, what: string): Promise<void> {
  let dead = false;
  void proc.exited.then(() => (dead = true));
  await waitFor(
    async () => {
      if (dead) throw new Error(`${what} exited before listening:\n${proc.output()}`);
      const ss = await host.exec(['ss', '-Hltn', `sport = :${port}`], { allowFail: true });
      return ss.stdout.trim().length > 0;
    },
    timeoutMs,
    what,
    50,
  );
}

// ---------------------------------------------------------------------------------------------
// keepalived

export interface KeepalivedOptions {
  /** Output that means "up" (default: a VRRP instance has entered its first state). */
  ready?: RegExp;
  timeoutMs?: number;
  /** Extra command-line flags, e.g. ['--vrrp'] or ['-a']. */
  args?: string[];
}

/**
 * Runs keepalived in the foreground inside `host` with its config and all pid files in the
 * lab's tmpDir: keepalived refuses to start when its pid file names a live process, so two
 * instances on one VM need distinct -p/-r/-c/-b files (the defaults are all in /run).
 * Logs go to the process output (-l -D), not syslog (-G).
 */
export async function startKeepalived(host: LabHost, configText: string, lab: Lab, opts: KeepalivedOptions = {}): Promise<LabProcess> {
  const dir = join(lab.tmpDir, `keepalived-${host.name}`);
  await mkdir(dir, { recursive: true });
  const confPath = join(dir, 'keepalived.conf');
  await writeFile(confPath, configText);
  const proc = host.spawn([
    'keepalived',
    '--dont-fork',
    '--log-console',
    '--log-detail',
    '--no-syslog',
    '--dont-respawn', // a crashing child should fail the test, not be hidden by a restart
    '-f', confPath,
    '-p', join(dir, 'keepalived.pid'),
    '-r', join(dir, 'vrrp.pid'),
    '-c', join(dir, 'checkers.pid'),
    '-b', join(dir, 'bfd.pid'),
    ...(opts.args ?? []),
  ]);
  await proc.waitForOutput(opts.ready ?? /Entering (BACKUP|MASTER|FAULT) STATE/, opts.timeoutMs ?? 15_000);
  return proc;
}

/**
 * The state a keepalived instance last logged entering ("MASTER", "BACKUP", "FAULT"), from
 * the output of startKeepalived's process; undefined before the first transition.
 */
export function keepalivedState(proc: LabProcess, instance = 'VI_1'): string | undefined {
  const re = new RegExp(`\\(${instance}\\) Entering (\\w+) STATE`, 'g');
  let last: string | undefined;
  for (const m of proc.output().matchAll(re)) last = m[1];
  return last;
}

/** A keepalived.conf with one VRRP instance: the common case of the interop tests. */
export function keepalivedVrrpConfig(o: {
  routerId: string;
  state?: 'MASTER' | 'BACKUP';
  vrid: number;
  priority: number;
  vips: string[];
  version?: 2 | 3;
  advertInt?: number;
  nopreempt?: boolean;
  iface?: string;
  instance?: string;
  extra?: string;
}): string {
  return `global_defs {
  router_id ${o.routerId}
  vrrp_version ${o.version ?? 3}
  vrrp_garp_master_delay 1
  enable_script_security
}
vrrp_instance ${o.instance ?? 'VI_1'} {
  state ${o.state ?? 'BACKUP'}
  interface ${o.iface ?? 'eth0'}
  virtual_router_id ${o.vrid}
  priority ${o.priority}
  advert_int ${o.advertInt ?? 1}
${o.nopreempt ? '  nopreempt\n' : ''}  virtual_ipaddress {
${o.vips.map((v) => `    ${v}`).join('\n')}
  }
${o.extra ?? ''}}
`;
}

// ---------------------------------------------------------------------------------------------
// tcpdump

export interface Capture {
  proc: LabProcess;
  /** Decoded packet lines so far (text mode), or empty when writing a pcap. */
  text(): string;
  /** Path of the pcap file when started with `pcap: true`. */
  pcapPath?: string;
  /** Stops the capture (SIGINT, so a pcap is flushed and complete). */
  stop(): Promise<void>;
}

/**
 * Captures on the host's eth0. Text mode (default) decodes with -n -l (line-buffered) and the
 * lines are read back with text(); `pcap: true` writes a file under the lab tmpDir instead.
 * Resolves once tcpdump reports it is listening, so nothing sent afterwards is missed.
 */
export async function startTcpdump(
  host: LabHost,
  filter: string,
  opts: { pcap?: boolean; tmpDir?: string; args?: string[]; iface?: string; timeoutMs?: number } = {},
): Promise<Capture> {
  const iface = opts.iface ?? host.ifname;
  let pcapPath: string | undefined;
  // -Z root: Debian's tcpdump otherwise drops to user "tcpdump", which cannot write into the
  // 0700 lab tmpDir.
  const args = ['tcpdump', '-i', iface, '-n', '-Z', 'root', ...(opts.args ?? [])];
  if (opts.pcap) {
    if (!opts.tmpDir) throw new Error('startTcpdump: pcap mode needs tmpDir (e.g. lab.tmpDir)');
    pcapPath = join(opts.tmpDir, `capture-${host.name}-${Date.now()}.pcap`);
    args.push('-U', '-w', pcapPath);
  } else {
    args.push('-l');
  }
  if (filter.trim()) args.push(filter);
  const proc = host.spawn(args);
  await proc.waitForOutput(/listening on/, opts.timeoutMs ?? 10_000);
  return {
    proc,
    pcapPath,
    text: () => (pcapPath ? '' : proc.output()),
    stop: () => proc.kill('SIGINT'),
  };
}

/** Decodes a pcap written by startTcpdump into tcpdump's text form (-n, plus extra args such as -vv). */
export async function readPcap(host: LabHost, pcapPath: string, args: string[] = []): Promise<string> {
  return (await host.exec(['tcpdump', '-n', '-r', pcapPath, ...args])).stdout;
}

// ---------------------------------------------------------------------------------------------
// Clients

export interface PingResult {
  ok: boolean;
  transmitted: number;
  received: number;
  output: string;
}

/** Pings `target` (IPv4 or IPv6) from `host`; ok when every packet was answered. */
export async function ping(host: LabHost, target: string, count = 1): Promise<PingResult> {
  const r = await host.exec(['ping', '-n', '-c', String(count), '-i', '0.2', '-W', '1', target], {
    allowFail: true,
    timeoutMs: 5_000 + count * 1_500,
  });
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout);
  const transmitted = m ? Number(m[1]) : 0;
  const received = m ? Number(m[2]) : 0;
  return { ok: r.code === 0 && received === count, transmitted, received, output: r.stdout + r.stderr };
}

export interface HttpResult {
  status: number;
  body: string;
}

/**
 * One HTTP GET from inside `host`, with Node itself (no curl/wget dependency on CI).
 * Rejects on connection errors and timeouts.
 */
export async function httpGet(host: LabHost, address: string, port: number, path = '/', timeoutMs = 5_000): Promise<HttpResult> {
  const script = `
const http = require('node:http');
const [host, port, path, timeout] = process.argv.slice(1);
const req = http.get({ host, port: Number(port), path, timeout: Number(timeout), agent: false }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (d) => (body += d));
  res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body })));
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (e) => { process.stderr.write(e.message); process.exit(1); });
`;
  const r = await host.exec([process.execPath, '-e', script, address, String(port), path, String(timeoutMs)], {
    timeoutMs: timeoutMs + 5_000,
  });
  return JSON.parse(r.stdout) as HttpResult;
}
