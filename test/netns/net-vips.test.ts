import { fileURLToPath } from 'node:url';
import { createLab, netnsTest, waitFor, type LabHost } from '../lib/netns.js';

const fixture = fileURLToPath(new URL('./fixtures/net-vips.js', import.meta.url));

async function addrLines(host: LabHost): Promise<string> {
  return (await host.exec(['ip', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
}

netnsTest('VipManager adds VIPs over rtnetlink, restores one deleted from outside, removes them on release', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const v4 = `${lab.addr4(100)}/32`;
  const v6 = `${lab.addr6(100)}/128`;
  const has = (out: string, cidr: string): boolean => out.split('\n').some((l) => l.includes(` ${cidr} `));

  const proc = a.spawn(['node', fixture, 'eth0', v4, v6]);
  await proc.waitForOutput(/^acquired$/m, 10_000);
  let out = await addrLines(a);
  t.true(has(out, v4), out);
  t.true(has(out, v6), out);
  t.regex(out.split('\n').find((l) => l.includes(v6)) ?? '', /nodad/, 'IPv6 VIP added without DAD');

  await a.exec(['ip', 'addr', 'del', v4, 'dev', 'eth0']);
  await proc.waitForOutput(new RegExp(`restored ${v4.replace(/\./g, '\\.')} total=1`), 5_000);
  t.true(has(await addrLines(a), v4));

  await a.exec(['ip', 'addr', 'del', v6, 'dev', 'eth0']);
  await proc.waitForOutput(new RegExp(`restored ${v6} total=2`), 5_000);
  t.true(has(await addrLines(a), v6));

  await proc.kill('SIGUSR1');
  t.regex(proc.output(), /^released$/m);
  t.is((await proc.exited).code, 0, proc.output());
  await waitFor(async () => {
    const o = await addrLines(a);
    return !has(o, v4) && !has(o, v6);
  }, 2_000, 'VIPs to be gone after release');
  // The host's own addresses are untouched.
  t.true(has(await addrLines(a), a.ipv4Cidr!));
});
