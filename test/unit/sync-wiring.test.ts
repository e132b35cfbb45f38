/**
 * The [sync] keys reach the sockets' options: the key audit (config-key-audit.test.ts) points here.
 */
import test from 'ava';
import { parseConfig } from '../../src/config/index.js';
import { SyncAuth } from '../../src/sync/auth.js';
import { receiverOptionsFromConfig } from '../../src/sync/receiver.js';
import { senderOptionsFromConfig } from '../../src/sync/sender.js';

const INSTANCE = '[[vrrp_instance]]\nname = "VI_1"\ninterface = "lo"\nvirtual_router_id = 51\nvirtual_ipaddress = ["10.0.0.50/24"]\n';
const auth = new SyncAuth(Buffer.from('0123456789abcdef'));

test('group, port, ttl, sync_id and interface shape the multicast sockets', (t) => {
  const c = parseConfig(`${INSTANCE}[sync]\ninterface = "lo"\ninstance = "VI_1"\ngroup = "224.0.0.99"\nport = 9999\nttl = 3\nsync_id = 77\nauth_key = "0123456789abcdef"\n`, 's.toml').sync!;
  const tx = senderOptionsFromConfig(c, auth);
  t.like(tx, { syncId: 77, targets: [{ address: '224.0.0.99', port: 9999 }], multicast: { interfaceAddress: '127.0.0.1', ttl: 3 } });
  const rx = receiverOptionsFromConfig(c, auth, { onEntries: () => undefined });
  t.like(rx, { syncId: 77, port: 9999, multicast: { group: '224.0.0.99', interfaceAddress: '127.0.0.1', ttl: 3 } });
});

test('unicast_peer replaces the group; sync_id defaults to the instance VRID', (t) => {
  const c = parseConfig(`${INSTANCE}[sync]\ninterface = "lo"\ninstance = "VI_1"\nunicast_peer = ["10.0.0.12", "10.0.0.13"]\nauth_key = "0123456789abcdef"\n`, 's.toml').sync!;
  const tx = senderOptionsFromConfig(c, auth);
  t.deepEqual(tx.targets, [{ address: '10.0.0.12', port: 8848 }, { address: '10.0.0.13', port: 8848 }]);
  t.is(tx.multicast, undefined);
  t.is(tx.syncId, 51);
  t.is(receiverOptionsFromConfig(c, auth, { onEntries: () => undefined }).multicast, undefined);
});
