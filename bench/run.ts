// Entry point of the benchmark suite: `npm run bench` (every benchmark) or
// `node dist/bench/run.js --only failover --runs 3`.
//
// Every benchmark measures keepalive-ts and its reference (keepalived, or whatever the benchmark
// names) side by side in the same run, alternating the two per repetition, and returns raw values;
// this file computes medians and ratios and writes bench/RESULTS.md. A figure never fails the run:
// the exit status is non-zero only when the benchmarks cannot run at all (no root, no netns) or a
// benchmark crashed.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { installSignalCleanup, labUnavailableReason, machineInfo, median, type MachineInfo } from './lab.js';
import { failover } from './failover.js';
import { jitter } from './jitter.js';
import { scale } from './scale.js';
import { health } from './health.js';
import { soak } from './soak.js';
import { dataplane } from './dataplane.js';
import { sync } from './sync.js';
import { renderChart, type Chart } from './chart.js';
import { nftapply } from './nftapply.js';
import { hitless } from './hitless.js';
import { bgp } from './bgp.js';

// ---------------------------------------------------------------------------------------------
// The contract between run.ts and a benchmark

export interface Figure {
  /** What is measured, e.g. "client-seen outage, advert_int 1 s". */
  figure: string;
  unit: string;
  /** Which direction is good; the ratio is always ours / theirs. */
  better: 'lower' | 'higher';
  /** Raw values in measurement order (NaN = that repetition produced no value; see the notes). */
  ours: number[];
  theirs: number[];
  /** Ratio target: ours/theirs <= target when lower is better, >= target when higher is better. */
  target?: number;
  /** Absolute target for our median, in `unit` (<= limit when lower is better, >= when higher). */
  limit?: number;
  /** What theory predicts, shown next to the figure. */
  theory?: string;
  /** Digits after the decimal point (default 0). */
  decimals?: number;
}

export interface BenchmarkResult {
  figures: Figure[];
  /** Charts written as bench/charts/<id>.svg and shown under the table. */
  charts?: Chart[];
  /** Paragraphs printed under the table (method, caveats, failed repetitions…). */
  notes?: string[];
  /** Extra markdown (e.g. a per-repetition table) printed after the notes. */
  details?: string;
}

export interface BenchContext {
  /** Repetitions per configuration (--runs). */
  runs: number;
  /** Benchmark-specific settings from `--param name.key=value`, with the "name." prefix removed. */
  params: Record<string, string>;
  log(msg: string): void;
}

export interface Benchmark {
  name: string;
  title: string;
  /** One paragraph: what is measured and how. */
  description: string;
  /** The reference implementation the ratio is taken against. */
  reference: string;
  run(ctx: BenchContext): Promise<BenchmarkResult>;
}

/** Every benchmark, in the order `npm run bench` runs them and RESULTS.md lists them. */
export const BENCHMARKS: Benchmark[] = [failover, dataplane, nftapply, sync, hitless, jitter, scale, health, soak, bgp];

// ---------------------------------------------------------------------------------------------
// Command line

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/bench
const REPO = join(HERE, '../..');
const DEFAULT_OUT = join(REPO, 'bench/RESULTS.md');

interface Options {
  only: string[] | undefined;
  runs: number;
  out: string;
  params: Map<string, Record<string, string>>;
  list: boolean;
}

const USAGE = `usage: node dist/bench/run.js [--only NAME[,NAME…]] [--runs N] [--out FILE] [--param NAME.KEY=VALUE]… [--list]
  --only    run these benchmarks only (default: all); the others' sections of the results file are kept
  --runs    repetitions per configuration, each one ours and one reference (default 3)
  --out     results file (default bench/RESULTS.md)
  --param   benchmark-specific setting, e.g. --param failover.adverts=1,0.1
  --list    list the benchmarks and exit
needs root (network namespaces).`;

function parseArgs(argv: string[]): Options {
  const o: Options = { only: undefined, runs: 3, out: DEFAULT_OUT, params: new Map(), list: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') && !arg.startsWith('--param=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--only':
        o.only = value().split(',').map((s) => s.trim()).filter(Boolean);
        break;
      case '--runs': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) throw new UsageError('--runs must be a positive integer');
        o.runs = n;
        break;
      }
      case '--out':
        o.out = value();
        break;
      case '--param':
      case '--param=': {
        const v = flag === '--param=' ? arg.slice('--param='.length) : value();
        const m = /^([a-z0-9-]+)\.([A-Za-z0-9_-]+)=(.*)$/.exec(v);
        if (!m) throw new UsageError(`--param expects NAME.KEY=VALUE, got ${v}`);
        const rec = o.params.get(m[1]!) ?? {};
        rec[m[2]!] = m[3]!;
        o.params.set(m[1]!, rec);
        break;
      }
      case '--list':
        o.list = true;
        break;
      case '-h':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
      // falls through (unreachable)
      default:
        throw new UsageError(`unknown argument ${arg}`);
    }
  }
  for (const name of o.only ?? []) {
    if (!BENCHMARKS.some((b) => b.name === name)) throw new UsageError(`no benchmark "${name}" (have: ${BENCHMARKS.map((b) => b.name).join(', ')})`);
  }
  return o;
}

class UsageError extends Error {}

/** The command line as the user typed it, for the "command" column. */
function commandLine(): string {
  const args = process.argv.slice(2).map(shellQuote).join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${args ? ` -- ${args}` : ''}`;
  const script = relative(process.cwd(), process.argv[1] ?? 'dist/bench/run.js') || 'dist/bench/run.js';
  return `node ${script}${args ? ` ${args}` : ''}`;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=,:@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------------------------------------
// Results file

interface SectionRun {
  bench: Benchmark;
  result?: BenchmarkResult;
  error?: string;
  command: string;
  machine: MachineInfo;
  seconds: number;
}

function fmt(v: number, decimals: number): string {
  return Number.isFinite(v) ? v.toFixed(decimals) : 'n/a';
}

function machineLine(m: MachineInfo): string {
  return `${m.date} · nproc ${m.nproc} (${m.cpu}) · kernel ${m.kernel} · node ${m.node} · ${m.keepalived}`;
}

function renderSection(s: SectionRun): string {
  const b = s.bench;
  const out: string[] = [];
  out.push(`<!-- bench:${b.name}:start -->`);
  out.push(`## ${b.title} (\`${b.name}\`)`, '');
  out.push(b.description, '');
  out.push(`Measured ${machineLine(s.machine)}; took ${Math.round(s.seconds)} s.`, '');
  out.push(`Command: \`${s.command}\``, '');
  if (s.error !== undefined) {
    out.push('**The benchmark did not complete:**', '', '```', s.error, '```', '');
  }
  const r = s.result;
  if (r) {
    out.push(`| figure | keepalive-ts (median) | ${b.reference} (median) | ratio ours/theirs | target | theory | keepalive-ts raw | ${b.reference} raw | command |`);
    out.push('|---|---|---|---|---|---|---|---|---|');
    for (const f of r.figures) {
      const d = f.decimals ?? 0;
      const mo = median(f.ours);
      const mt = median(f.theirs);
      const ratio = mo / mt;
      const targets: string[] = [];
      const sign = f.better === 'lower' ? '≤' : '≥';
      if (f.target !== undefined) {
        const ok = Number.isFinite(ratio) && (f.better === 'lower' ? ratio <= f.target : ratio >= f.target);
        targets.push(`${sign} ${f.target.toFixed(2)} ${Number.isFinite(ratio) ? (ok ? '✅' : '❌') : ''}`.trim());
      }
      if (f.limit !== undefined) {
        const ok = Number.isFinite(mo) && (f.better === 'lower' ? mo <= f.limit : mo >= f.limit);
        targets.push(`ours ${sign} ${fmt(f.limit, d)} ${f.unit} ${Number.isFinite(mo) ? (ok ? '✅' : '❌') : ''}`.trim());
      }
      const target = targets.length > 0 ? targets.join('; ') : `${f.better} is better`;
      const raw = (v: number[]) => v.map((x) => fmt(x, d)).join(', ');
      out.push(
        `| ${f.figure} | ${fmt(mo, d)} ${f.unit} | ${fmt(mt, d)} ${f.unit} | ${fmt(ratio, 3)} | ${target} | ${f.theory ?? ''} | ${raw(f.ours)} | ${raw(f.theirs)} | \`${s.command}\` |`,
      );
    }
    out.push('');
    for (const c of r.charts ?? []) out.push(`![${c.title}](charts/${c.id}.svg)`, '');
    for (const n of r.notes ?? []) out.push(n, '');
    if (r.details) out.push(r.details, '');
  }
  out.push(`<!-- bench:${b.name}:end -->`);
  return out.join('\n');
}

/** Sections of an existing results file, by benchmark name (kept when a run skips them). */
function existingSections(path: string): Map<string, string> {
  const map = new Map<string, string>();
  if (!existsSync(path)) return map;
  const text = readFileSync(path, 'utf8');
  for (const m of text.matchAll(/<!-- bench:([a-z0-9-]+):start -->[\s\S]*?<!-- bench:\1:end -->/g)) map.set(m[1]!, m[0]);
  return map;
}

function writeResults(path: string, runs: SectionRun[], machine: MachineInfo): void {
  const old = existingSections(path);
  const fresh = new Map(runs.map((r) => [r.bench.name, renderSection(r)]));
  const sections: string[] = [];
  for (const b of BENCHMARKS) {
    const s = fresh.get(b.name) ?? old.get(b.name);
    if (s) sections.push(s);
  }
  const header = [
    '# keepalive-ts benchmark results',
    '',
    '_Generated by `npm run bench` (bench/run.ts); do not edit by hand. How to run and what each figure means: [README.md](README.md)._',
    '',
    `Last run: ${machine.date}`,
    '',
    '| machine | |',
    '|---|---|',
    `| nproc | ${machine.nproc} |`,
    `| CPU | ${machine.cpu} |`,
    `| kernel | ${machine.kernel} |`,
    `| node | ${machine.node} |`,
    `| keepalived | ${machine.keepalived} |`,
    `| date | ${machine.date} |`,
    '',
    'Ratios are keepalive-ts / reference, medians of the raw values measured side by side in the same run',
    '(alternating ours and theirs per repetition). A ratio outside its target is reported, never fatal.',
    '',
  ].join('\n');
  writeFileSync(path, `${header}\n${sections.join('\n\n')}\n`);
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (opts.list) {
    for (const b of BENCHMARKS) process.stdout.write(`${b.name}\t${b.title}\n`);
    return 0;
  }
  const why = labUnavailableReason();
  if (why) {
    process.stderr.write(`bench: cannot run: ${why}\n`);
    return 3;
  }
  installSignalCleanup();
  const selected = BENCHMARKS.filter((b) => !opts.only || opts.only.includes(b.name));
  const command = commandLine();
  const machine = machineInfo();
  const log = (msg: string) => process.stderr.write(`${msg}\n`);
  log(`[bench] ${machineLine(machine)}`);
  const runs: SectionRun[] = [];
  let crashed = false;
  for (const bench of selected) {
    log(`[bench] ${bench.name}: ${bench.title} (runs=${opts.runs})`);
    const t0 = Date.now();
    const s: SectionRun = { bench, command, machine: machineInfo(), seconds: 0 };
    try {
      s.result = await bench.run({ runs: opts.runs, params: opts.params.get(bench.name) ?? {}, log: (m) => log(`[${bench.name}] ${m}`) });
    } catch (err) {
      crashed = true;
      s.error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      log(`[bench] ${bench.name} crashed: ${s.error}`);
    }
    s.seconds = (Date.now() - t0) / 1000;
    runs.push(s);
    if (s.result?.charts?.length) {
      const dir = join(dirname(opts.out), 'charts');
      mkdirSync(dir, { recursive: true });
      for (const c of s.result.charts) writeFileSync(join(dir, `${c.id}.svg`), renderChart(c));
    }
    // Written after every benchmark, so a later crash or Ctrl-C keeps what was measured.
    writeResults(opts.out, runs, machine);
    if (s.result) for (const f of s.result.figures) {
      const d = f.decimals ?? 0;
      log(`[bench]   ${f.figure}: ours ${fmt(median(f.ours), d)} ${f.unit} [${f.ours.map((x) => fmt(x, d)).join(', ')}], ` +
        `${bench.reference} ${fmt(median(f.theirs), d)} ${f.unit} [${f.theirs.map((x) => fmt(x, d)).join(', ')}], ratio ${fmt(median(f.ours) / median(f.theirs), 3)}`);
    }
  }
  log(`[bench] results written to ${relative(process.cwd(), opts.out) || opts.out}`);
  return crashed ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
