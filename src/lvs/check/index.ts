/** The checker factory: one CheckConfig (defaults filled by the config loader) -> one Checker. */
import { isIP } from 'node:net';
import type { CheckConfig } from '../../config/types.js';
import { createDnsChecker } from './dns.js';
import { createFileChecker } from './file.js';
import { createHttpChecker } from './http.js';
import { createMiscChecker } from './misc.js';
import { createPingChecker } from './ping.js';
import { createSmtpChecker } from './smtp.js';
import { createTcpChecker } from './tcp.js';
import type { Checker, CheckerOptions, CheckTarget } from './types.js';
import { createUdpChecker } from './udp.js';

export type { Checker, CheckerFactory, CheckerOptions, CheckResult, CheckTarget } from './types.js';

/** The target of a check: its connect_ip / connect_port (the config fills them from the real server). */
export function checkTarget(cfg: CheckConfig): CheckTarget {
  const v = isIP(cfg.connect_ip);
  if (v === 0) throw new TypeError(`connect_ip is not an IP address: ${cfg.connect_ip}`);
  return { address: cfg.connect_ip, port: cfg.connect_port, family: v === 6 ? 6 : 4 };
}

export function createChecker(cfg: CheckConfig, target: CheckTarget = checkTarget(cfg), opts: CheckerOptions = {}): Checker {
  switch (cfg.type) {
    case 'TCP_CHECK': return createTcpChecker(cfg, target);
    case 'HTTP_GET':
    case 'SSL_GET': return createHttpChecker(cfg, target, opts);
    case 'MISC_CHECK': return createMiscChecker(cfg, opts);
    case 'UDP_CHECK': return createUdpChecker(cfg, target);
    case 'DNS_CHECK': return createDnsChecker(cfg, target, opts);
    case 'FILE_CHECK': return createFileChecker(cfg);
    case 'SMTP_CHECK': return createSmtpChecker(cfg, target);
    case 'PING_CHECK': return createPingChecker(cfg, target, opts);
  }
}
