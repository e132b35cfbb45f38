/**
 * The data-plane contract suite against the proxy with the native relay turned off
 * (nativeRelay: false): TCP services relay through node:net (tcp.ts), the fallback when the
 * addon cannot start a relay engine. Same fixtures as dataplane-contract-proxy.test.ts, on
 * virtual addresses of their own (127.0.8.x).
 */
process.env.CONTRACT_VIP_NET = '127.0.8';
const { ProxyDataplane } = await import('../../src/lvs/dataplane/proxy/index.js');
const { runProxyContract } = await import('./dataplane-contract-proxy.test.js');
runProxyContract(() => new ProxyDataplane({ autoRestart: false, nativeRelay: false }), 'proxy, node:net relay');
