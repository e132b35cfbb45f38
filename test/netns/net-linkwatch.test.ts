import { fileURLToPath } from 'node:url';
import { createLab, netnsTest } from '../lib/netns.js';

const fixture = fileURLToPath(new URL('./fixtures/net-linkwatch.js', import.meta.url));

netnsTest('link watch reports carrier loss and recovery from rtnetlink notifications', async (t) => {
  const lab = await createLab(t);
  const a = await lab.addHost('a');
  const proc = a.spawn(['node', fixture, 'eth0']);
  await proc.waitForOutput(/^ready up=true$/m, 10_000);

  // Pulling the cable on the switch side: eth0 stays admin-up but loses carrier.
  await a.linkDown();
  await proc.waitForOutput(/^link eth0 up=false carrier=false removed=false$/m, 5_000);
  await a.linkUp();
  await proc.waitForOutput(/^link eth0 up=true carrier=true removed=false$/m, 5_000);

  // Every line is a notification about eth0; nothing claims "up" while the cable was out.
  const events = proc.output().split('\n').filter((l) => l.startsWith('link '));
  const firstDown = events.findIndex((l) => l.includes('up=false'));
  const lastUp = events.findLastIndex((l) => l.includes('up=true'));
  t.true(firstDown >= 0 && lastUp > firstDown, events.join('\n'));
  await proc.kill('SIGTERM');
  // The fixture only closes its Rtnl on SIGTERM: a clean exit means close() released the watcher.
  t.deepEqual(await proc.exited, { code: 0, signal: null }, proc.output());
});
