import type { ConfigIssue, KeyPath } from './issues.js';
import { formatPath } from './issues.js';
import { STRING_FORMATS, describeSpec, rangeText, type DefaultScope, type Fields, type ValueSpec } from './schema-types.js';
import { didYouMean } from './suggest.js';

/** Collects issues against the file being validated; shared by the schema pass and the semantic pass. */
export class IssueSink {
  readonly issues: ConfigIssue[] = [];
  constructor(
    private readonly file: string,
    private readonly lineOf: (path: KeyPath) => number | undefined,
  ) {}

  add(path: KeyPath, message: string): void {
    const line = this.lineOf(path);
    this.issues.push({ file: this.file, ...(line === undefined ? {} : { line }), path: formatPath(path), message });
  }
}

export type Table = Record<string, unknown>;

/** Marks a value that failed validation; the caller substitutes the default so later checks can go on. */
const INVALID: unique symbol = Symbol('invalid');
type Result = unknown | typeof INVALID;

export function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

export function typeName(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'float';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Date) return 'datetime';
  if (isTable(v)) return 'table';
  return typeof v;
}

/** "; did you mean "x"?" or "" */
export function suggestion(word: string, candidates: Iterable<string>): string {
  const guess = didYouMean(word, candidates);
  return guess === undefined ? '' : `; did you mean ${JSON.stringify(guess)}?`;
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** Validates a document against a table schema, filling defaults; returns the normalized table. */
export function validateDocument(fields: Fields, data: Table, sink: IssueSink): Table {
  return new Validator(sink).table(fields, data, [], undefined);
}

class Validator {
  private scopes: Partial<Record<DefaultScope, Table>> = {};
  constructor(private readonly sink: IssueSink) {}

  table(fields: Fields, raw: Table, path: KeyPath, scope: DefaultScope | undefined, foreignKey?: (key: string) => string | undefined): Table {
    const aliases = new Set(Object.values(fields).flatMap((f) => f.aliases ?? []));
    for (const key of Object.keys(raw)) {
      if (Object.hasOwn(fields, key) || aliases.has(key)) continue;
      const foreign = foreignKey?.(key);
      if (foreign !== undefined) {
        this.sink.add([...path, key], foreign);
        continue;
      }
      this.sink.add([...path, key], `unknown key ${JSON.stringify(key)}${suggestion(key, Object.keys(fields))}`);
    }
    const out: Table = {};
    const saved = this.scopes;
    this.scopes = { ...saved, self: out, ...(scope ? { [scope]: out } : {}) };
    for (const [name, field] of Object.entries(fields)) {
      const spellings = [name, ...(field.aliases ?? [])].filter((k) => Object.hasOwn(raw, k));
      if (spellings.length > 1) this.sink.add([...path, spellings[1]!], `${spellings.map((k) => JSON.stringify(k)).join(' and ')} are the same setting; keep one`);
      const present = spellings.length > 0;
      const key = spellings[0] ?? name;
      const value = present ? this.value(field.type, raw[key], [...path, key], field.hint) : INVALID;
      if (value !== INVALID) {
        out[name] = value;
        continue;
      }
      if (!present && field.required) this.sink.add([...path, name], 'is required');
      const fallback = this.defaultOf(field, [...path, name]);
      if (fallback !== undefined) out[name] = fallback;
    }
    // A scope table stays visible after it is done: [global] is read by every later section.
    this.scopes = scope ? { ...saved, [scope]: out } : saved;
    return out;
  }

  private defaultOf(field: Fields[string], path: KeyPath): unknown {
    // An absent section with a table default ([global]) still gets every key's default filled in.
    if (field.type.kind === 'table' && isTable(field.default)) {
      return this.table(field.type.fields, field.default, path, field.type.scope);
    }
    if (field.defaultFrom) return this.scopes[field.defaultFrom.scope]?.[field.defaultFrom.key];
    if (field.defaultFn) return field.defaultFn();
    // Arrays are copied so two configs never share a mutable default.
    return Array.isArray(field.default) ? [...field.default] : field.default;
  }

  private value(spec: ValueSpec, v: unknown, path: KeyPath, hint?: string): Result {
    switch (spec.kind) {
      case 'string':
        return this.string(spec, v, path, hint);
      case 'integer':
      case 'number':
        return this.number(spec, v, path, hint);
      case 'boolean':
        return typeof v === 'boolean' ? v : this.wrongType(spec, v, path);
      case 'array':
        return this.array(spec, v, path, hint);
      case 'table':
        return isTable(v) ? this.table(spec.fields, v, path, spec.scope) : this.wrongType(spec, v, path);
      case 'tagged':
        return this.tagged(spec, v, path);
      case 'oneOf': {
        const option = spec.options.find((o) => accepts(o, v));
        return option ? this.value(option, v, path, hint) : this.wrongType(spec, v, path);
      }
    }
  }

  private wrongType(spec: ValueSpec, v: unknown, path: KeyPath): typeof INVALID {
    this.sink.add(path, `must be ${describeSpec(spec)}, got ${typeName(v)}`);
    return INVALID;
  }

  private fail(path: KeyPath, message: string, hint: string | undefined): typeof INVALID {
    this.sink.add(path, hint ? `${message} (${hint})` : message);
    return INVALID;
  }

  private string(spec: Extract<ValueSpec, { kind: 'string' }>, v: unknown, path: KeyPath, hint: string | undefined): Result {
    if (typeof v !== 'string') return this.wrongType(spec, v, path);
    const refusal = spec.refused && Object.hasOwn(spec.refused, v) ? spec.refused[v] : undefined;
    if (refusal !== undefined) return this.fail(path, `${show(v)} is not supported: ${refusal}`, undefined);
    if (spec.enum && !spec.enum.includes(v)) {
      return this.fail(path, `must be one of ${spec.enum.join(', ')}; got ${show(v)}${suggestion(v, spec.enum)}`, hint);
    }
    if ((spec.minLength !== undefined && v.length < spec.minLength) || (spec.maxLength !== undefined && v.length > spec.maxLength)) {
      const message = spec.minLength === 1 && spec.maxLength === undefined
        ? 'must not be empty'
        : `must be ${rangeText({ min: spec.minLength, max: spec.maxLength })} characters long, got ${v.length}`;
      return this.fail(path, message, hint);
    }
    if (spec.format && !STRING_FORMATS[spec.format].test(v)) {
      return this.fail(path, `must be ${STRING_FORMATS[spec.format].text}, got ${show(v)}`, hint);
    }
    return v;
  }

  private number(spec: Extract<ValueSpec, { kind: 'integer' | 'number' }>, v: unknown, path: KeyPath, hint: string | undefined): Result {
    if (typeof v !== 'number') return this.wrongType(spec, v, path);
    if (!Number.isFinite(v)) return this.fail(path, `must be a finite number, got ${v}`, undefined);
    if (spec.kind === 'integer' && !Number.isInteger(v)) return this.fail(path, `must be a whole number, got ${v}`, undefined);
    if ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max)) {
      return this.fail(path, `must be ${rangeText(spec)}, got ${v}`, hint);
    }
    return v;
  }

  private array(spec: Extract<ValueSpec, { kind: 'array' }>, v: unknown, path: KeyPath, hint: string | undefined): Result {
    if (!Array.isArray(v)) {
      if (spec.single && accepts(spec.of, v)) {
        const item = this.value(spec.of, v, [...path, 0], hint);
        return item === INVALID ? INVALID : [item];
      }
      return this.wrongType(spec, v, path);
    }
    if (spec.minItems !== undefined && v.length < spec.minItems) {
      return this.fail(path, spec.minItems === 1 ? 'must not be empty' : `must have at least ${spec.minItems} items`, undefined);
    }
    const items = v.map((item, i) => this.value(spec.of, item, [...path, i], hint));
    return items.includes(INVALID) ? INVALID : items;
  }

  private tagged(spec: Extract<ValueSpec, { kind: 'tagged' }>, v: unknown, path: KeyPath): Result {
    if (!isTable(v)) return this.wrongType(spec, v, path);
    const tags = Object.keys(spec.variants);
    const tag = v[spec.tag];
    if (tag === undefined) return this.fail([...path, spec.tag], `is required (one of ${tags.join(', ')})`, undefined);
    if (typeof tag !== 'string' || !Object.hasOwn(spec.variants, tag)) {
      const guess = typeof tag === 'string' ? suggestion(tag, tags) : '';
      return this.fail([...path, spec.tag], `must be one of ${tags.join(', ')}; got ${show(tag)}${guess}`, undefined);
    }
    const fields: Fields = { [spec.tag]: { type: { kind: 'string' }, doc: '', keepalived: null }, ...spec.common, ...spec.variants[tag] };
    const otherKeys = new Set(Object.values(spec.variants).flatMap((f) => Object.keys(f)));
    const foreign = (key: string): string | undefined =>
      otherKeys.has(key) ? `key ${JSON.stringify(key)} is not valid for ${spec.tag} = ${JSON.stringify(tag)}` : undefined;
    return this.table(fields, v, path, undefined, foreign);
  }
}

/** Whether a value's TOML type fits the spec's shape (used to pick a oneOf branch). */
function accepts(spec: ValueSpec, v: unknown): boolean {
  switch (spec.kind) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    case 'array':
      return Array.isArray(v) || (spec.single === true && accepts(spec.of, v));
    case 'table':
    case 'tagged':
      return isTable(v);
    case 'oneOf':
      return spec.options.some((o) => accepts(o, v));
  }
}
