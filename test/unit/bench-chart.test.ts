/**
 * bench/chart.ts: the SVG charts RESULTS.md embeds (pure rendering, no I/O).
 */
import test from 'ava';
import { renderChart, type Chart } from '../../bench/chart.js';

const chart = (over: Partial<Chart> = {}): Chart => ({
  id: 'x',
  title: 'Outage <per> advert_int & more',
  unit: 'ms',
  better: 'lower',
  groups: ['advert_int 1 s', 'advert_int 0.1 s'],
  series: [
    { name: 'keepalive-ts', values: [[3000, 3400, 3100], [330, 360]] },
    { name: 'keepalived', values: [[3200], [Number.NaN]] },
  ],
  ...over,
});

/** Bar heights by their <title> (series, group: median ...). */
function bars(svg: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)" fill="#[0-9a-f]+"><title>([^<]+)<\/title>/g)) out.set(m[2]!.split(':')[0]!, Number(m[1]));
  return out;
}

test('one bar per series and group at the median, a whisker for the range, n/a for a missing value, text escaped', (t) => {
  const svg = renderChart(chart());
  t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  t.true(svg.trimEnd().endsWith('</svg>'));
  t.true(svg.includes('Outage &lt;per&gt; advert_int &amp; more'));
  t.false(svg.includes('<per>'));
  const b = bars(svg);
  t.deepEqual([...b.keys()].sort(), ['keepalive-ts, advert_int 0.1 s', 'keepalive-ts, advert_int 1 s', 'keepalived, advert_int 1 s']);
  // Medians 3100 and 3200: the taller bar is keepalived's; 345 is about a ninth of 3100.
  t.true(b.get('keepalived, advert_int 1 s')! > b.get('keepalive-ts, advert_int 1 s')!);
  t.true(Math.abs(b.get('keepalive-ts, advert_int 0.1 s')! / b.get('keepalive-ts, advert_int 1 s')! - 345 / 3100) < 0.01);
  t.true(svg.includes('median 3.1k ms (3.0k, 3.4k, 3.1k)') || svg.includes('median 3100 ms'));
  t.regex(svg, />n\/a</);
  // Whiskers only where the repetitions differ: two (1 s and 0.1 s of keepalive-ts).
  t.is([...svg.matchAll(/stroke="#222" stroke-width="1.5"/g)].length, 2);
});

test('a target line is drawn with its label; the axis reaches it even above every bar', (t) => {
  const svg = renderChart(chart({ series: [{ name: 'a', values: [[0.2], [0.3]] }], lines: [{ value: 0.5, label: 'target 0.5 ms' }] }));
  t.regex(svg, /stroke="#d62728" stroke-dasharray="6 4"/);
  t.true(svg.includes('>target 0.5 ms<'));
  // The dashed line is inside the plot (below the title area), not clipped at the top.
  const y = Number(/<line x1="\d+" y1="([\d.]+)" x2="\d+" y2="[\d.]+" stroke="#d62728"/.exec(svg)![1]);
  t.true(y >= 50);
});

test('a long legend wraps onto more rows and the picture grows with it', (t) => {
  const names = ['keepalive-ts PROXY (2 workers)', 'keepalive-ts DR (kernel)', 'keepalive-ts NAT (kernel)', 'HAProxy (nbthread 2)', 'nginx directly (ceiling)'];
  const one = renderChart(chart({ series: names.slice(0, 1).map((name) => ({ name, values: [[1], [2]] })) }));
  const five = renderChart(chart({ series: names.map((name) => ({ name, values: [[1], [2]] })) }));
  const height = (svg: string) => Number(/height="(\d+)" viewBox/.exec(svg)![1]);
  t.true(height(five) > height(one));
  // Every legend label starts inside the picture.
  for (const m of five.matchAll(/<text x="([\d.]+)" y="[\d.]+" fill="#333">([^<]+)<\/text>/g)) {
    if (names.includes(m[2]!)) t.true(Number(m[1]) + m[2]!.length * 7 <= 720, m[2]);
  }
});
