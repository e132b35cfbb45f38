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
  return new Validator(sink).table(fields, data, undefined);
}

/** Per schema table, computed once: its fields as entries, and the set of every alias spelling. */
const FIELD_INFO = new WeakMap<Fields, { entries: [string, Fields[string]][]; aliases: Set<string> }>();
function fieldInfo(fields: Fields): { entries: [string, Fields[string]][]; aliases: Set<string> } {
  let info = FIELD_INFO.get(fields);
  if (!info) {
    info = { entries: Object.entries(fields), aliases: new Set(Object.values(fields).flatMap((f) => f.aliases ?? [])) };
    FIELD_INFO.set(fields, info);
  }
  return info;
}

class Validator {
  private scopes: Partial<Record<DefaultScope, Table>> = {};
  /** Key path of the value being validated: pushed and popped around each child (issues copy it). */
  private readonly path: (string | number)[] = [];
  constructor(private readonly sink: IssueSink) {}

  /** An issue at the current path, or at the current path + `key`. */
  private add(message: string, key?: string | number): void {
    this.sink.add(key === undefined ? this.path : [...this.path, key], message);
  }

  table(fields: Fields, raw: Table, scope: DefaultScope | undefined, foreignKey?: (key: string) => string | undefined): Table {
    const { entries, aliases } = fieldInfo(fields);
    for (const key of Object.keys(raw)) {
      if (Object.hasOwn(fields, key) || aliases.has(key)) continue;
      const foreign = foreignKey?.(key);
      if (foreign !== undefined) {
        this.add(foreign, key);
        continue;
      }
      this.add(`unknown key ${JSON.stringify(key)}${suggestion(key, Object.keys(fields))}`, key);
    }
    const out: Table = {};
    const saved = this.scopes;
    this.scopes = { ...saved, self: out, ...(scope ? { [scope]: out } : {}) };
    const path = this.path;
    for (const [name, field] of entries) {
      let key = name;
      let present = Object.hasOwn(raw, name);
      if (field.aliases) {
        const spellings = [name, ...field.aliases].filter((k) => Object.hasOwn(raw, k));
        if (spellings.length > 1) this.add(`${spellings.map((k) => JSON.stringify(k)).join(' and ')} are the same setting; keep one`, spellings[1]!);
        present = spellings.length > 0;
        key = spellings[0] ?? name;
      }
      if (present) {
        path.push(key);
        const value = this.value(field.type, raw[key], field.hint);
        path.pop();
        if (value !== INVALID) {
          out[name] = value;
          continue;
        }
      }
      path.push(name);
      if (!present && field.required) this.add('is required');
      const fallback = this.defaultOf(field);
      path.pop();
      if (fallback !== undefined) out[name] = fallback;
    }
    // A scope table stays visible after it is done: [global] is read by every later section.
    this.scopes = scope ? { ...saved, [scope]: out } : saved;
    return out;
  }

  private defaultOf(field: Fields[string]): unknown {
    // An absent section with a table default ([global]) still gets every key's default filled in.
    if (field.type.kind === 'table' && isTable(field.default)) {
      return this.table(field.type.fields, field.default, field.type.scope);
    }
    if (field.defaultFrom) return this.scopes[field.defaultFrom.scope]?.[field.defaultFrom.key];
    if (field.defaultFn) return field.defaultFn();
    // Arrays are copied so two configs never share a mutable default.
    return Array.isArray(field.default) ? [...field.default] : field.default;
  }

  private value(spec: ValueSpec, v: unknown, hint?: string): Result {
    switch (spec.kind) {
      case 'string':
        return this.string(spec, v, hint);
      case 'integer':
      case 'number':
        return this.number(spec, v, hint);
      case 'boolean':
        return typeof v === 'boolean' ? v : this.wrongType(spec, v);
      case 'array':
        return this.array(spec, v, hint);
      case 'table':
        return isTable(v) ? this.table(spec.fields, v, spec.scope) : this.wrongType(spec, v);
      case 'tagged':
        return this.tagged(spec, v);
      case 'oneOf': {
        const option = spec.options.find((o) => accepts(o, v));
        return option ? this.value(option, v, hint) : this.wrongType(spec, v);
      }
    }
  }

  private wrongType(spec: ValueSpec, v: unknown): typeof INVALID {
    this.add(`must be ${describeSpec(spec)}, got ${typeName(v)}`);
    return INVALID;
  }

  private fail(message: string, hint: string | undefined, key?: string | number): typeof INVALID {
    this.add(hint ? `${message} (${hint})` : message, key);
    return INVALID;
  }

  private string(spec: Extract<ValueSpec, { kind: 'string' }>, v: unknown, hint: string | undefined): Result {
    if (typeof v !== 'string') return this.wrongType(spec, v);
    const refusal = spec.refused && Object.hasOwn(spec.refused, v) ? spec.refused[v] : undefined;
    if (refusal !== undefined) return this.fail(`${show(v)} is not supported: ${refusal}`, undefined);
    if (spec.enum && !spec.enum.includes(v)) {
      return this.fail(`must be one of ${spec.enum.join(', ')}; got ${show(v)}${suggestion(v, spec.enum)}`, hint);
    }
    if ((spec.minLength !== undefined && v.length < spec.minLength) || (spec.maxLength !== undefined && v.length > spec.maxLength)) {
      const message = spec.minLength === 1 && spec.maxLength === undefined
        ? 'must not be empty'
        : `must be ${rangeText({ min: spec.minLength, max: spec.maxLength })} characters long, got ${v.length}`;
      return this.fail(message, hint);
    }
    if (spec.format && !STRING_FORMATS[spec.format].test(v)) {
      return this.fail(`must be ${STRING_FORMATS[spec.format].text}, got ${show(v)}`, hint);
    }
    return v;
  }

  private number(spec: Extract<ValueSpec, { kind: 'integer' | 'number' }>, v: unknown, hint: string | undefined): Result {
    if (typeof v !== 'number') return this.wrongType(spec, v);
    if (!Number.isFinite(v)) return this.fail(`must be a finite number, got ${v}`, undefined);
    if (spec.kind === 'integer' && !Number.isInteger(v)) return this.fail(`must be a whole number, got ${v}`, undefined);
    if ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max)) {
      return this.fail(`must be ${rangeText(spec)}, got ${v}`, hint);
    }
    return v;
  }

  private array(spec: Extract<ValueSpec, { kind: 'array' }>, v: unknown, hint: string | undefined): Result {
    const path = this.path;
    if (!Array.isArray(v)) {
      if (spec.single && accepts(spec.of, v)) {
        path.push(0);
        const item = this.value(spec.of, v, hint);
        path.pop();
        return item === INVALID ? INVALID : [item];
      }
      return this.wrongType(spec, v);
    }
    if (spec.minItems !== undefined && v.length < spec.minItems) {
      return this.fail(spec.minItems === 1 ? 'must not be empty' : `must have at least ${spec.minItems} items`, undefined);
    }
    const items = new Array<unknown>(v.length);
    let invalid = false;
    for (let i = 0; i < v.length; i++) {
      path.push(i);
      const item = this.value(spec.of, v[i], hint);
      path.pop();
      if (item === INVALID) invalid = true;
      items[i] = item;
    }
    return invalid ? INVALID : items;
  }

  private tagged(spec: Extract<ValueSpec, { kind: 'tagged' }>, v: unknown): Result {
    if (!isTable(v)) return this.wrongType(spec, v);
    const tags = Object.keys(spec.variants);
    const tag = v[spec.tag];
    if (tag === undefined) return this.fail(`is required (one of ${tags.join(', ')})`, undefined, spec.tag);
    if (typeof tag !== 'string' || !Object.hasOwn(spec.variants, tag)) {
      const guess = typeof tag === 'string' ? suggestion(tag, tags) : '';
      return this.fail(`must be one of ${tags.join(', ')}; got ${show(tag)}${guess}`, undefined, spec.tag);
    }
    const { fields, foreign } = variantOf(spec, tag);
    return this.table(fields, v, undefined, foreign);
  }
}

type TaggedSpec = Extract<ValueSpec, { kind: 'tagged' }>;
/** Per tagged spec and tag: the variant's fields and its foreign-key test (built once, not per value). */
const VARIANTS = new WeakMap<TaggedSpec, Map<string, { fields: Fields; foreign: (key: string) => string | undefined }>>();

function variantOf(spec: TaggedSpec, tag: string): { fields: Fields; foreign: (key: string) => string | undefined } {
  let byTag = VARIANTS.get(spec);
  if (!byTag) VARIANTS.set(spec, (byTag = new Map()));
  let v = byTag.get(tag);
  if (!v) {
    const fields: Fields = { [spec.tag]: { type: { kind: 'string' }, doc: '', keepalived: null }, ...spec.common, ...spec.variants[tag] };
    const otherKeys = new Set(Object.values(spec.variants).flatMap((f) => Object.keys(f)));
    const foreign = (key: string): string | undefined =>
      otherKeys.has(key) ? `key ${JSON.stringify(key)} is not valid for ${spec.tag} = ${JSON.stringify(tag)}` : undefined;
    byTag.set(tag, (v = { fields, foreign }));
  }
  return v;
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
