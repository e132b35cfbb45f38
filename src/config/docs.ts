import { CONFIG_FIELDS } from './schema.js';
import { describeSpec, type FieldSpec, type Fields, type ValueSpec } from './schema-types.js';
import type { Config } from './types.js';

/** One documented key, flattened out of the schema for README / man-page generation. */
export interface SchemaRow {
  /** e.g. "vrrp_instance[].priority", "virtual_server[].real_server[].check[].path (HTTP_GET, SSL_GET)" */
  path: string;
  /** Only for check keys that belong to some types. */
  checkTypes?: string[];
  type: string;
  required: boolean;
  /** The default as TOML text or a description ("the hostname", "global.vrrp_version"); undefined if none. */
  default?: string;
  doc: string;
  keepalived: string | null;
}

function defaultText(field: FieldSpec): string | undefined {
  if (field.defaultText !== undefined) return field.defaultText;
  if (field.default === undefined || (field.type.kind === 'table' && typeof field.default === 'object')) return undefined;
  return JSON.stringify(field.default).replace(/,/g, ', ');
}

/** Nested tables reachable from a spec, with the path suffix that leads to them. */
function nestedTables(spec: ValueSpec, suffix = ''): { suffix: string; spec: Extract<ValueSpec, { kind: 'table' | 'tagged' }> }[] {
  switch (spec.kind) {
    case 'table':
    case 'tagged':
      return [{ suffix, spec }];
    case 'array':
      return nestedTables(spec.of, `${suffix}[]`);
    case 'oneOf':
      return spec.options.flatMap((o) => nestedTables(o, suffix));
    default:
      return [];
  }
}

function rowsOf(fields: Fields, prefix: string, checkTypes?: string[]): SchemaRow[] {
  return Object.entries(fields).flatMap(([name, field]) => {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    const row: SchemaRow = {
      path,
      ...(checkTypes ? { checkTypes } : {}),
      type: describeSpec(field.type),
      required: field.required === true,
      ...(defaultText(field) === undefined ? {} : { default: defaultText(field) }),
      doc: field.aliases ? `${field.doc} (also spelled ${field.aliases.join(', ')})` : field.doc,
      keepalived: field.keepalived,
    };
    return [row, ...nestedTables(field.type).flatMap(({ suffix, spec }) => tableRows(spec, `${path}${suffix}`))];
  });
}

function tableRows(spec: Extract<ValueSpec, { kind: 'table' | 'tagged' }>, path: string): SchemaRow[] {
  if (spec.kind === 'table') return rowsOf(spec.fields, path);
  const owners = new Map<string, { field: FieldSpec; types: string[] }>();
  for (const [tag, fields] of Object.entries(spec.variants)) {
    for (const [name, field] of Object.entries(fields)) {
      const entry = owners.get(name) ?? { field, types: [] };
      entry.types.push(tag);
      owners.set(name, entry);
    }
  }
  const tagRow: SchemaRow = {
    path: `${path}.${spec.tag}`,
    type: `one of ${Object.keys(spec.variants).join(', ')}`,
    required: true,
    doc: 'selects the check and which keys are valid',
    keepalived: 'the check block name',
  };
  const variantRows = [...owners].flatMap(([name, { field, types }]) => rowsOf({ [name]: field }, path, types));
  return [tagRow, ...rowsOf(spec.common, path), ...variantRows];
}

/** Every config key with its type, default, doc line and keepalived spelling, in schema order. */
export function schemaRows(): SchemaRow[] {
  return rowsOf(CONFIG_FIELDS, '');
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** One-line summary for `keepalive-ts check`: "router_id director-a, 1 vrrp_instance, ...". */
export function describeConfig(config: Config): string {
  const reals = config.virtual_server.reduce((n, vs) => n + vs.real_server.length, 0);
  return [
    `router_id ${config.global.router_id}`,
    plural(config.vrrp_instance.length, 'vrrp_instance'),
    plural(config.vrrp_sync_group.length, 'vrrp_sync_group'),
    plural(config.vrrp_script.length, 'vrrp_script'),
    plural(config.virtual_server.length, 'virtual_server'),
    plural(reals, 'real_server'),
    config.sync ? `sync on ${config.sync.interface}` : 'no sync',
    ...(config.bgp ? [`bgp AS ${config.bgp.local_as} with ${plural(config.bgp.peer.length, 'peer')}`] : []),
  ].join(', ');
}
