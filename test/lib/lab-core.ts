// Framework-free core of the network-namespace lab: usable from ava tests (test/lib/netns.ts can
// delegate to it), from the benchmark suite (bench/) and from scripts. Nothing here imports a test
// framework; the owner of a lab closes it (tests: t.teardown; scripts: try/finally), and a
// process-exit hook plus the stale-lab sweep are the safety nets.
//
// A lab is one "switch" namespace holding a Linux bridge (br0) plus one namespace per host.
// Each host is cabled to the switch with a veth pair: `eth0` inside the host, and a port named
// after the host inside the switch namespace. More segments (bridges br1, br2…, e.g. the
// real-server network of an LVS-NAT pair) come from addBridge(); a host gets a further interface
// on one of them with addLink() (eth1, eth2…; switch port "<host>.<n>"). Keeping the switch ports in their own namespace
// means interface names never clash with the VM's or another lab's, so any number of labs can
// exist at once. Every name carries the creating pid ("kt-<pid>-<n>-..."), so a crashed
// process's leftovers are swept by the next run (of the tests or of the benchmarks).
import { readdirSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { formatIp, parseIp } from '../../src/util/inet.js';
import { join } from 'node:path';
import {
  type ExecOptions,
  type ExecResult,
  type LabProcess,
  killGroup,
  pidAlive,
  run,
  runSync,
  startProcess,
  tail,
} from './procs.js';

export type { ExecResult, LabProcess } from './procs.js';
export { waitFor, sleep } from './procs.js';

export interface LabHost {
  name: string;
  ns: string;
  ifname: 'eth0';
  /** Bare address, e.g. "10.77.0.11". */
  ipv4?: string;
  /** Bare address, e.g. "fd77::11". */
  ipv6?: string;
  /** With prefix length, e.g. "10.77.0.11/24" (handy for VIP configs). */
  ipv4Cidr?: string;
  ipv6Cidr?: string;
  mac: string;
  ifindex: number;
  /** Runs a command inside the host namespace; throws with stderr on non-zero exit unless allowFail. */
  exec(cmd: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Starts a long-running command in the host namespace, in its own process group, owned by the lab. */
  spawn(cmd: string[], opts?: { env?: Record<string, string>; cwd?: string }): LabProcess;
  /** Sets this host's switch port down (pulling the cable: eth0 loses carrier). */
  linkDown(): Promise<void>;
  linkUp(): Promise<void>;
  /** Bare addresses currently on eth0 (both families, link-local included). */
  addresses(): Promise<string[]>;
}

export interface Lab {
  id: string;
  switchNs: string;
  /** Per-lab directory for configs, sockets, pid files; removed by close(). */
  tmpDir: string;
  /** Prefix lengths of the lab subnets. */
  prefix4: number;
  prefix6: number;
  /** Address number `n` of the lab's IPv4/IPv6 subnet, e.g. addr4(100) -> "10.77.0.100". */
  addr4(n: number): string;
  addr6(n: number): string;
  /**
   * Creates a host cabled to the switch. Addresses default to addr4/addr6(10 + n) for the
   * n-th host added (a: 10.77.0.11, b: .12, …); pass CIDRs to choose them. `bridge`: the segment
   * of its eth0 (default br0; see addBridge).
   */
  addHost(name: string, opts?: { ipv4?: string; ipv6?: string; bridge?: string }): Promise<LabHost>;
  host(name: string): LabHost;
  hosts(): LabHost[];
  /** A further segment: a new bridge in the switch namespace; returns its name (br1, br2…). */
  addBridge(): Promise<string>;
  /**
   * Cables `host` to `bridge` with a further interface (eth1, eth2… in the host) holding the
   * given addresses (CIDRs); returns the interface name.
   */
  addLink(host: LabHost, bridge: string, opts: { ipv4?: string; ipv6?: string }): Promise<string>;
  /** Writes the (tail of the) output of every process the lab started, e.g. when something failed. */
  logProcesses(log: (msg: string) => void): void;
  /** Kills the lab's processes, deletes its namespaces and tmpDir. Idempotent. */
  close(): Promise<void>;
}

const PREFIX = 'kt-';
// The host name is also the switch-side interface name, hence the 15-character limit.
const HOST_NAME_RE = /^[a-z][a-z0-9-]{0,14}$/;
// 'sw' would collide with the switch namespace's name; br0 and lo exist in the switch.
const RESERVED_HOST_NAMES = new Set(['sw', 'br0', 'lo']);
const DEFAULT_SUBNET4 = '10.77.0.0/24';
const DEFAULT_SUBNET6 = 'fd77::/64';

let labCounter = 0;
const openLabs = new Set<LabImpl>();

// ---------------------------------------------------------------------------------------------
// Availability

let availability: { ok: boolean; reason?: string } | undefined;

/** Whether this process can build labs: root, iproute2 present, and a netns can be created. */
export function netnsAvailable(): { ok: boolean; reason?: string } {
  availability ??= probe();
  return availability;
}

function probe(): { ok: boolean; reason?: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespaces need root' };
  const v = runSync(['ip', '-V']);
  if (v.code !== 0) return { ok: false, reason: `iproute2 'ip' not usable: ${v.stderr.trim()}` };
  const ns = `${PREFIX}${process.pid}-probe`;
  const add = runSync(['ip', 'netns', 'add', ns]);
  if (add.code !== 0) return { ok: false, reason: `cannot create a network namespace: ${add.stderr.trim()}` };
  const br = runSync(['ip', '-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
  runSync(['ip', 'netns', 'del', ns]);
  if (br.code !== 0) return { ok: false, reason: `cannot create a bridge in a namespace: ${br.stderr.trim()}` };
  return { ok: true };
}

// ---------------------------------------------------------------------------------------------
// Stale-lab sweep and exit hook

let swept = false;

/** Deletes `kt-` namespaces and temp dirs whose creating process is dead (a crashed worker's). */
export async function sweepStaleLabs(): Promise<string[]> {
  const removed: string[] = [];
  const list = await run(['ip', 'netns', 'list'], { allowFail: true });
  for (const ns of parseNetnsList(list.stdout)) {
    const pid = ownerPid(ns);
    if (pid === undefined || pid === process.pid || pidAlive(pid)) continue;
    await destroyNamespace(ns);
    removed.push(ns);
  }
  for (const entry of safeReaddir(tmpdir())) {
    const pid = ownerPid(entry);
    if (pid === undefined || pid === process.pid || pidAlive(pid)) continue;
    await rm(join(tmpdir(), entry), { recursive: true, force: true });
  }
  return removed;
}

export function parseNetnsList(out: string): string[] {
  // Lines look like "kt-123-1-a (id: 4)" or just "kt-123-1-a".
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.length > 0);
}

function ownerPid(name: string): number | undefined {
  const m = /^kt-(\d+)-/.exec(name);
  return m ? Number(m[1]) : undefined;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Kills whatever still runs in a namespace, then deletes it (processes would keep it alive). */
async function destroyNamespace(ns: string): Promise<void> {
  const pids = await run(['ip', 'netns', 'pids', ns], { allowFail: true });
  for (const p of pids.stdout.split(/\s+/).filter(Boolean)) killPid(Number(p));
  await run(['ip', 'netns', 'del', ns], { allowFail: true });
}

let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a worker exits without running teardowns (uncaught error, process.exit).
  // Only synchronous work is possible here.
  process.on('exit', () => {
    for (const lab of openLabs) lab.closeSync();
  });
}

// ---------------------------------------------------------------------------------------------
// Address helpers

interface Subnet {
  family: 4 | 6;
  base: bigint;
  prefix: number;
}

function parseSubnet(cidr: string, family: 4 | 6): Subnet {
  const [addr, len] = cidr.split('/');
  const prefix = Number(len);
  const bits = family === 4 ? 32 : 128;
  if (!addr || !Number.isInteger(prefix) || prefix < 0 || prefix > bits) throw new Error(`bad IPv${family} subnet ${cidr}`);
  const value = ipToBig(addr, family);
  const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - prefix)) - 1n);
  return { family, base: value & mask, prefix };
}

function subnetAddr(s: Subnet, n: number): string {
  const bits = s.family === 4 ? 32 : 128;
  const size = 1n << BigInt(bits - s.prefix);
  if (n <= 0 || BigInt(n) >= size - (s.family === 4 ? 1n : 0n)) throw new Error(`host number ${n} outside /${s.prefix}`);
  const v = s.base + BigInt(n);
  return bigToIp(v, s.family);
}

function ipToBig(a: string, family: 4 | 6): bigint {
  const bytes = parseIp(a, family);
  if (!bytes) throw new Error(`bad IPv${family} address ${a}`);
  return bytes.reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
}

function bigToIp(v: bigint, family: 4 | 6): string {
  const bytes = new Uint8Array(family === 4 ? 4 : 16);
  for (let i = bytes.length - 1; i >= 0; i--, v >>= 8n) bytes[i] = Number(v & 255n);
  return formatIp(bytes);
}

function splitCidr(cidr: string, family: 4 | 6): { addr: string; prefix: number } {
  const [addr, len] = cidr.split('/');
  if (!addr || len === undefined) throw new Error(`expected an IPv${family} CIDR like ${family === 4 ? '10.77.0.11/24' : 'fd77::11/64'}, got ${cidr}`);
  return { addr, prefix: Number(len) };
}

// ---------------------------------------------------------------------------------------------
// The lab

/**
 * Creates a lab. The caller owns it and must close() it (try/finally); labs still open when the
 * process exits are removed synchronously by an exit hook, and a later run sweeps whatever a
 * killed process left behind.
 */
export async function createLab(opts: { subnet4?: string; subnet6?: string } = {}): Promise<Lab> {
  const avail = netnsAvailable();
  if (!avail.ok) throw new Error(`network namespaces unavailable: ${avail.reason}`);
  if (!swept) {
    swept = true;
    await sweepStaleLabs();
  }
  installExitHook();
  const id = `${PREFIX}${process.pid}-${++labCounter}`;
  const lab = new LabImpl(
    id,
    parseSubnet(opts.subnet4 ?? DEFAULT_SUBNET4, 4),
    parseSubnet(opts.subnet6 ?? DEFAULT_SUBNET6, 6),
    await mkdtemp(join(tmpdir(), `${id}-`)),
  );
  openLabs.add(lab);
  try {
    await lab.init();
  } catch (err) {
    await lab.close();
    throw err;
  }
  return lab;
}

/** Closes every lab this process still has open (signal handlers, fatal-error paths). */
export async function closeAllLabs(): Promise<void> {
  await Promise.all([...openLabs].map((l) => l.close()));
}

/** Synchronous variant of closeAllLabs for places that cannot await. */
export function closeAllLabsSync(): void {
  for (const lab of [...openLabs]) lab.closeSync();
}

interface ProcRecord {
  proc: LabProcess;
  label: string;
  state: { running: boolean };
}

class LabImpl implements Lab {
  readonly switchNs: string;
  readonly prefix4: number;
  readonly prefix6: number;
  private readonly hostMap = new Map<string, LabHost>();
  private readonly reserved = new Set<string>();
  private readonly namespaces: string[] = [];
  private readonly procs: ProcRecord[] = [];
  private readonly links = new Map<string, number>();
  private bridges = 1;
  private closing: Promise<void> | undefined;

  constructor(
    readonly id: string,
    private readonly subnet4: Subnet,
    private readonly subnet6: Subnet,
    readonly tmpDir: string,
  ) {
    this.switchNs = `${id}-sw`;
    this.prefix4 = subnet4.prefix;
    this.prefix6 = subnet6.prefix;
  }

  addr4(n: number): string {
    return subnetAddr(this.subnet4, n);
  }

  addr6(n: number): string {
    return subnetAddr(this.subnet6, n);
  }

  async init(): Promise<void> {
    const sw = this.switchNs;
    await run(['ip', 'netns', 'add', sw]);
    this.namespaces.push(sw);
    // The switch must be silent (no IPv6 link-local chatter of its own in captures) and must not
    // feed bridged frames to netfilter (br_netfilter may be loaded on the VM).
    await nsShell(sw, [
      'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6',
      'echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6',
      'for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ -e "$f" ] && echo 0 > "$f"; done; true',
    ]);
    // No multicast snooping: VRRP adverts (224.0.0.18, ff02::12) are sent without IGMP/MLD
    // joins being visible to the bridge, so snooping could drop them. No STP: ports forward
    // as soon as they are up.
    await ipBatch(sw, ['link set lo up', 'link add br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0', 'link set br0 up']);
  }

  async addHost(name: string, opts: { ipv4?: string; ipv6?: string; bridge?: string } = {}): Promise<LabHost> {
    if (this.closing) throw new Error(`lab ${this.id} is closed`);
    if (!HOST_NAME_RE.test(name) || RESERVED_HOST_NAMES.has(name)) {
      throw new Error(`bad host name "${name}": use 1-15 lowercase letters, digits or '-', starting with a letter, not ${[...RESERVED_HOST_NAMES].join('/')}`);
    }
    // Name and number are reserved before the first await so parallel addHost calls differ.
    if (this.reserved.has(name)) throw new Error(`host ${name} already exists in lab ${this.id}`);
    this.reserved.add(name);
    const n = this.reserved.size;
    const v4 = splitCidr(opts.ipv4 ?? `${this.addr4(10 + n)}/${this.prefix4}`, 4);
    const v6 = splitCidr(opts.ipv6 ?? `${this.addr6(10 + n)}/${this.prefix6}`, 6);
    const ns = `${this.id}-${name}`;
    const sw = this.switchNs;

    await run(['ip', 'netns', 'add', ns]);
    this.namespaces.push(ns);
    await run(['ip', '-n', sw, 'link', 'add', 'name', name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await run(['ip', '-n', sw, 'link', 'set', 'dev', name, 'master', opts.bridge ?? 'br0', 'up']);
    // DAD off before the link comes up, so neither the link-local nor the global address sits
    // in "tentative" state (unusable for ~2 s) — tests bind to them immediately.
    await nsShell(ns, [
      'for c in all default eth0; do echo 0 > /proc/sys/net/ipv6/conf/$c/accept_dad; echo 0 > /proc/sys/net/ipv6/conf/$c/dad_transmits; done',
    ]);
    await ipBatch(ns, [
      'link set lo up',
      `addr add ${v4.addr}/${v4.prefix} dev eth0`,
      `addr add ${v6.addr}/${v6.prefix} dev eth0 nodad`,
      'link set eth0 up',
    ]);
    const link = JSON.parse((await run(['ip', '-n', ns, '-j', 'link', 'show', 'dev', 'eth0'])).stdout) as Array<{ ifindex: number; address: string }>;
    const info = link[0];
    if (!info) throw new Error(`eth0 missing in ${ns}`);

    const host: LabHost = {
      name,
      ns,
      ifname: 'eth0',
      ipv4: v4.addr,
      ipv6: v6.addr,
      ipv4Cidr: `${v4.addr}/${v4.prefix}`,
      ipv6Cidr: `${v6.addr}/${v6.prefix}`,
      mac: info.address,
      ifindex: info.ifindex,
      exec: (cmd, o) => run(['ip', 'netns', 'exec', ns, ...cmd], o),
      spawn: (cmd, o) => this.spawnIn(ns, name, cmd, o),
      linkDown: async () => void (await run(['ip', '-n', sw, 'link', 'set', 'dev', name, 'down'])),
      linkUp: async () => void (await run(['ip', '-n', sw, 'link', 'set', 'dev', name, 'up'])),
      addresses: async () => {
        const out = (await run(['ip', '-n', ns, '-j', 'addr', 'show', 'dev', 'eth0'])).stdout;
        const parsed = JSON.parse(out) as Array<{ addr_info?: Array<{ local: string }> }>;
        return parsed.flatMap((l) => (l.addr_info ?? []).map((a) => a.local));
      },
    };
    this.hostMap.set(name, host);
    return host;
  }

  async addBridge(): Promise<string> {
    if (this.closing) throw new Error(`lab ${this.id} is closed`);
    const br = `br${this.bridges++}`;
    await ipBatch(this.switchNs, [`link add ${br} type bridge mcast_snooping 0 stp_state 0 forward_delay 0`, `link set ${br} up`]);
    return br;
  }

  async addLink(host: LabHost, bridge: string, opts: { ipv4?: string; ipv6?: string }): Promise<string> {
    if (this.closing) throw new Error(`lab ${this.id} is closed`);
    const n = (this.links.get(host.name) ?? 0) + 1;
    this.links.set(host.name, n);
    const ifname = `eth${n}`;
    // '.' cannot appear in a host name, so "<host>.<n>" never collides with another host's port.
    const port = `${host.name.slice(0, 12)}.${n}`;
    await run(['ip', '-n', this.switchNs, 'link', 'add', 'name', port, 'type', 'veth', 'peer', 'name', ifname, 'netns', host.ns]);
    await run(['ip', '-n', this.switchNs, 'link', 'set', 'dev', port, 'master', bridge, 'up']);
    await nsShell(host.ns, [`echo 0 > /proc/sys/net/ipv6/conf/${ifname}/accept_dad 2>/dev/null; true`]);
    const cmds: string[] = [];
    if (opts.ipv4) cmds.push(`addr add ${opts.ipv4} dev ${ifname}`);
    if (opts.ipv6) cmds.push(`addr add ${opts.ipv6} dev ${ifname} nodad`);
    cmds.push(`link set ${ifname} up`);
    await ipBatch(host.ns, cmds);
    return ifname;
  }

  host(name: string): LabHost {
    const h = this.hostMap.get(name);
    if (!h) throw new Error(`no host ${name} in lab ${this.id} (have: ${[...this.hostMap.keys()].join(', ')})`);
    return h;
  }

  hosts(): LabHost[] {
    return [...this.hostMap.values()];
  }

  private spawnIn(ns: string, hostName: string, cmd: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): LabProcess {
    if (this.closing) throw new Error(`lab ${this.id} is closed`);
    // `ip netns exec` setns()es and then execs the command, so the pid we get is the command's
    // own and it leads the new process group.
    const state = { running: true };
    const proc = startProcess(['ip', 'netns', 'exec', ns, ...cmd], { ...opts, onExit: () => (state.running = false) });
    this.procs.push({ proc, label: `${hostName}: ${cmd.join(' ')}`, state });
    return proc;
  }

  logProcesses(log: (msg: string) => void): void {
    for (const r of this.procs) log(`--- ${r.label} (pid ${r.proc.pid}) output ---\n${tail(r.proc.output(), 3000)}`);
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    await Promise.all(this.procs.map((r) => r.proc.kill('SIGTERM')));
    // Host namespaces first: deleting them also destroys their veth ends.
    for (const ns of [...this.namespaces].reverse()) await destroyNamespace(ns);
    await rm(this.tmpDir, { recursive: true, force: true });
    openLabs.delete(this);
  }

  /** Synchronous best-effort cleanup for the process 'exit' hook. */
  closeSync(): void {
    for (const r of this.procs) if (r.state.running) killGroup(r.proc.pid, 'SIGKILL');
    for (const ns of [...this.namespaces].reverse()) {
      const pids = runSync(['ip', 'netns', 'pids', ns]).stdout.split(/\s+/).filter(Boolean);
      for (const p of pids) killPid(Number(p));
      runSync(['ip', 'netns', 'del', ns]);
    }
    rmSync(this.tmpDir, { recursive: true, force: true });
    openLabs.delete(this);
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Runs shell snippets in a namespace; /proc/sys/net there belongs to that namespace. */
async function nsShell(ns: string, lines: string[]): Promise<void> {
  await run(['ip', 'netns', 'exec', ns, 'sh', '-ec', lines.join('\n')]);
}

/** Several `ip` commands in one process (each spawn of ip costs a few ms; labs add up). */
async function ipBatch(ns: string, cmds: string[]): Promise<void> {
  await run(['ip', '-n', ns, '-batch', '-'], { input: cmds.join('\n') + '\n' });
}
