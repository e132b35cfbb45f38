import { isMulticast, parseCidr, parseHostPort, parseIp, parseListen } from './net.js';

/** Where an inherited default comes from: [global], an enclosing server table, or a sibling key. */
export type DefaultScope = 'global' | 'virtual_server' | 'real_server' | 'self';

export type StringFormat = 'ip' | 'ipv4' | 'cidr' | 'multicast' | 'multicast4' | 'multicast6' | 'listen' | 'md5' | 'regex' | 'status_range' | 'email' | 'hostport';

export type ValueSpec =
  /** `refused`: values that are known but not supported, each with the reason given in the error. */
  | { kind: 'string'; enum?: readonly string[]; refused?: Readonly<Record<string, string>>; minLength?: number; maxLength?: number; format?: StringFormat }
  | { kind: 'integer'; min?: number; max?: number }
  /** A (possibly fractional) quantity, seconds unless the doc says otherwise. */
  | { kind: 'number'; min?: number; max?: number }
  | { kind: 'boolean' }
  /** `single`: a lone item is accepted and normalized to a one-element array. */
  | { kind: 'array'; of: ValueSpec; minItems?: number; single?: boolean }
  /** `scope`: later keys (inside this table) may inherit defaults from it via defaultFrom. */
  | { kind: 'table'; fields: Fields; scope?: DefaultScope }
  /** A table whose allowed keys depend on the value of its `tag` key (check.type). */
  | { kind: 'tagged'; tag: string; common: Fields; variants: Readonly<Record<string, Fields>> }
  | { kind: 'oneOf'; options: readonly ValueSpec[] };

export interface FieldSpec {
  type: ValueSpec;
  /** One line for docs and the example config. */
  doc: string;
  /** The keepalived.conf spelling, or null when keepalived has no such setting. */
  keepalived: string | null;
  required?: boolean;
  default?: unknown;
  /** Default computed at load time (e.g. the hostname); defaultText documents it. */
  defaultFn?: () => unknown;
  /** Default inherited from another, already resolved, key. */
  defaultFrom?: { scope: DefaultScope; key: string };
  /** How to document a default that is not a literal (computed, inherited or family dependent). */
  defaultText?: string;
  /** Appended to constraint errors, to say why a value is refused. */
  hint?: string;
  /** Other accepted spellings of the key (keepalived's synonyms, e.g. lvs_sched for lb_algo). */
  aliases?: readonly string[];
}

export type Fields = Readonly<Record<string, FieldSpec>>;

const EMAIL_RE = /^(?:[^<>\r\n]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/;

export const STRING_FORMATS: Readonly<Record<StringFormat, { text: string; test(s: string): boolean }>> = {
  ip: { text: 'an IPv4 or IPv6 address', test: (s) => parseIp(s) !== undefined },
  ipv4: { text: 'an IPv4 address', test: (s) => parseIp(s)?.family === 4 },
  cidr: { text: 'an IPv4 or IPv6 address with an optional /prefix', test: (s) => parseCidr(s) !== undefined },
  multicast: {
    text: 'an IPv4 or IPv6 multicast address',
    test: (s) => {
      const ip = parseIp(s);
      return ip !== undefined && isMulticast(ip);
    },
  },
  multicast4: {
    text: 'an IPv4 multicast address',
    test: (s) => {
      const ip = parseIp(s);
      return ip?.family === 4 && isMulticast(ip);
    },
  },
  multicast6: {
    text: 'an IPv6 multicast address',
    test: (s) => {
      const ip = parseIp(s);
      return ip?.family === 6 && isMulticast(ip);
    },
  },
  listen: { text: '"host:port", "[ipv6]:port" or "" (disabled)', test: (s) => s === '' || parseListen(s) !== undefined },
  md5: { text: 'an MD5 digest (32 hex digits)', test: (s) => /^[0-9a-fA-F]{32}$/.test(s) },
  status_range: { text: 'an HTTP status range "NNN-MMM" (100..599)', test: (s) => parseStatusRange(s) !== undefined },
  email: { text: 'an e-mail address "user@domain" or "Name <user@domain>"', test: (s) => EMAIL_RE.test(s) },
  hostport: { text: '"host", "host:port" or "[ipv6]:port"', test: (s) => parseHostPort(s, 1) !== undefined },
  regex: {
    text: 'a valid regular expression',
    test: (s) => {
      try {
        new RegExp(s);
        return true;
      } catch {
        return false;
      }
    },
  },
};

/** "200-299" -> [200, 299]; undefined unless 100 <= from <= to <= 599 (keepalived's status_code range). */
export function parseStatusRange(s: string): [number, number] | undefined {
  const m = /^([1-5][0-9][0-9])-([1-5][0-9][0-9])$/.exec(s.trim());
  if (!m) return undefined;
  const from = Number(m[1]);
  const to = Number(m[2]);
  return from <= to ? [from, to] : undefined;
}

function range(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `${min}..${max}`;
  if (min !== undefined) return `>= ${min}`;
  if (max !== undefined) return `<= ${max}`;
  return '';
}

export function rangeText(spec: { min?: number; max?: number }): string {
  return range(spec.min, spec.max);
}

/** "a string", "an integer 1..255", ... : used both in errors and in generated docs. */
export function describeSpec(spec: ValueSpec): string {
  switch (spec.kind) {
    case 'string': {
      if (spec.enum) return `one of ${spec.enum.map((e) => JSON.stringify(e)).join(', ')}`;
      if (spec.format) return STRING_FORMATS[spec.format].text;
      if (spec.minLength === 1 && spec.maxLength === undefined) return 'a non-empty string';
      const len = range(spec.minLength, spec.maxLength);
      return len ? `a string of ${len} characters` : 'a string';
    }
    case 'integer':
      return `an integer${spec.min !== undefined || spec.max !== undefined ? ` ${rangeText(spec)}` : ''}`;
    case 'number':
      return `a number${spec.min !== undefined || spec.max !== undefined ? ` ${rangeText(spec)}` : ''}`;
    case 'boolean':
      return 'a boolean';
    case 'array':
      return `${spec.single ? `${describeSpec(spec.of)} or ` : ''}an array of ${spec.of.kind === 'table' ? 'tables' : describeSpec(spec.of).replace(/^an? /, '')}`;
    case 'table':
      return 'a table';
    case 'tagged':
      return `a table with ${spec.tag} = ${Object.keys(spec.variants).join(' | ')}`;
    case 'oneOf':
      return spec.options.map(describeSpec).join(' or ');
  }
}
