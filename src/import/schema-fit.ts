/**
 * Asks the config schema (src/config/schema.ts, the one list of keys) whether a key exists and
 * whether a value would pass it, so the importer emits a keepalived feature exactly when this
 * keepalive-ts accepts it (a fwmark service lights up by itself when the schema gets the key) and
 * leaves out, with a note, values keepalived takes and keepalive-ts refuses (bare user names as
 * mail recipients) without a grammar of its own.
 */
import { CHECK_COMMON_FIELDS, CHECK_VARIANT_FIELDS } from '../config/schema.js';
import type { FieldSpec, Fields } from '../config/schema-types.js';
import { IssueSink, validateDocument } from '../config/validate.js';
import type { TomlValue } from './toml-writer.js';

export function hasKey(fields: Fields, key: string): boolean {
  return Object.hasOwn(fields, key);
}

/** True when `value` passes the schema's spec of fields[key] (type, range, enum, format). */
export function accepts(fields: Fields, key: string, value: TomlValue): boolean {
  if (!hasKey(fields, key)) return false;
  const field: FieldSpec = { ...fields[key]!, required: false };
  delete field.defaultFrom;
  delete field.defaultFn;
  delete field.default;
  const sink = new IssueSink('-', () => undefined);
  validateDocument({ [key]: field }, { [key]: value }, sink);
  return sink.issues.length === 0;
}

/** The keys a check of `type` may have: type, the common keys, the type's own. */
export function checkFieldsOf(type: string): Fields {
  return { type: { type: { kind: 'string' }, doc: '', keepalived: null }, ...CHECK_COMMON_FIELDS, ...((CHECK_VARIANT_FIELDS as Record<string, Fields>)[type] ?? {}) };
}
