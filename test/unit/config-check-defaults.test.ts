// keepalived's checker defaults (check_data.c, check_http.c, check_dns.c, check_misc.c,
// check_smtp.c), which keepalive-ts follows: each would fail if the loader ignored it.
import test from 'ava';
import { parseConfig } from '../../src/config/index.js';
import type { CheckConfig } from '../../src/config/types.js';
import { issuesOf } from '../fixtures/config/helpers.js';

function checksOf(vsExtra: string, checks: string): CheckConfig[] {
  const cfg = parseConfig(`[[virtual_server]]
address = "10.0.0.50"
port = 80
${vsExtra}
[[virtual_server.real_server]]
address = "10.0.0.21"
check = [${checks}]
`, 't.toml');
  return cfg.virtual_server[0]!.real_server[0]!.check;
}

test('retry defaults per type when the virtual server sets none: DNS 3, MISC 0, others 1', (t) => {
  const c = checksOf('', '{ type = "TCP_CHECK" }, { type = "DNS_CHECK" }, { type = "MISC_CHECK", misc_path = "/bin/true" }, { type = "HTTP_GET" }, { type = "SMTP_CHECK" }, { type = "PING_CHECK" }');
  t.deepEqual(c.map((x) => x.retry), [1, 3, 0, 1, 1, 1]);
});

test('delay_before_retry defaults per type: HTTP/SSL 3, DNS delay_loop, others 1', (t) => {
  const c = checksOf('delay_loop = 7', '{ type = "TCP_CHECK" }, { type = "HTTP_GET" }, { type = "SSL_GET" }, { type = "DNS_CHECK" }, { type = "DNS_CHECK", delay_loop = 2 }');
  t.deepEqual(c.map((x) => x.delay_before_retry), [1, 3, 3, 7, 2]);
});

test('virtual_server retry / delay_before_retry override every type default; the check overrides both', (t) => {
  const c = checksOf('retry = 5\ndelay_before_retry = 0.5', '{ type = "DNS_CHECK" }, { type = "MISC_CHECK", misc_path = "/bin/true" }, { type = "HTTP_GET", retry = 2, delay_before_retry = 4 }');
  t.deepEqual(c.map((x) => [x.retry, x.delay_before_retry]), [[5, 0.5], [5, 0.5], [2, 4]]);
});

test('warmup defaults to the check delay_loop; virtual_server.warmup and check warmup override it', (t) => {
  t.deepEqual(checksOf('delay_loop = 6', '{ type = "TCP_CHECK" }, { type = "TCP_CHECK", delay_loop = 2 }').map((x) => x.warmup), [6, 2]);
  t.deepEqual(checksOf('warmup = 0', '{ type = "TCP_CHECK" }, { type = "TCP_CHECK", warmup = 3 }').map((x) => x.warmup), [0, 3]);
});

test('HTTP status_code defaults to any 2xx; ranges and single codes expand, sorted, deduplicated', (t) => {
  const [a, b, c] = checksOf('', '{ type = "HTTP_GET" }, { type = "SSL_GET", status_code = ["200-202", 404, "404-405", 200] }, { type = "HTTP_GET", status_code = 204 }') as Extract<CheckConfig, { type: 'HTTP_GET' | 'SSL_GET' }>[];
  t.is(a!.status_code.length, 100);
  t.is(a!.status_code[0], 200);
  t.is(a!.status_code[99], 299);
  t.deepEqual(b!.status_code, [200, 201, 202, 404, 405]);
  t.deepEqual(c!.status_code, [204]);
});

test('status_code ranges out of order or out of 100..599 are refused with the key named', (t) => {
  const vs = (code: string) => `[[virtual_server]]
address = "10.0.0.50"
port = 80
[[virtual_server.real_server]]
address = "10.0.0.21"
check = { type = "HTTP_GET", status_code = ${code} }
`;
  for (const bad of ['"299-200"', '"200-600"', '"2xx"', '["200-299", "99-100"]']) {
    const issues = issuesOf(vs(bad));
    t.is(issues.length, 1, bad);
    t.regex(issues[0]!.path, /status_code/);
    t.is(issues[0]!.line, 6);
  }
});

test('DNS_CHECK defaults: type SOA, name "." (the root zone)', (t) => {
  const [d] = checksOf('', '{ type = "DNS_CHECK" }') as Extract<CheckConfig, { type: 'DNS_CHECK' }>[];
  t.is(d!.query_type, 'SOA');
  t.is(d!.name, '.');
});

test('SMTP_CHECK helo_name defaults to keepalived\'s smtpchecker.keepalived.org', (t) => {
  const [s, s2] = checksOf('', '{ type = "SMTP_CHECK" }, { type = "SMTP_CHECK", helo_name = "lb1.example" }') as Extract<CheckConfig, { type: 'SMTP_CHECK' }>[];
  t.is(s!.helo_name, 'smtpchecker.keepalived.org');
  t.is(s2!.helo_name, 'lb1.example');
});

test('PING_CHECK refuses a connect_port (ICMP has no port) and keys of other types', (t) => {
  const text = `[[virtual_server]]
address = "10.0.0.50"
port = 80
[[virtual_server.real_server]]
address = "10.0.0.21"
check = [{ type = "PING_CHECK", connect_port = 81 }, { type = "PING_CHECK", helo_name = "x" }]
`;
  const issues = issuesOf(text);
  t.deepEqual(issues.map((i) => i.path).sort(), ['virtual_server[0].real_server[0].check[0].connect_port', 'virtual_server[0].real_server[0].check[1].helo_name']);
  t.regex(issues.find((i) => i.path.endsWith('connect_port'))!.message, /no meaning for PING_CHECK/);
});
