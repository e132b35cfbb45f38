/**
 * The data-plane contract suite against the proxy with two worker threads (what the daemon runs on
 * a 2-CPU director: proxy_workers = 0, one per CPU): every TCP service is served by both workers
 * through SO_REUSEPORT sockets, rr/wrr share one cursor. Same fixtures as
 * dataplane-contract-proxy.test.ts, on virtual addresses of their own (127.0.6.x).
 */
process.env.CONTRACT_VIP_NET = '127.0.6';
const { ProxyDataplane } = await import('../../src/lvs/dataplane/proxy/index.js');
const { runProxyContract } = await import('./dataplane-contract-proxy.test.js');
runProxyContract(() => new ProxyDataplane({ autoRestart: false, workers: 2 }), 'proxy, 2 workers');
