// A small JSON Schema validator for the subset schema/report.schema.json uses ($ref to $defs,
// oneOf, allOf, not, type, enum, const, properties, required, additionalProperties: false, items,
// minimum, pattern). Any other keyword in the schema is an error, so the subset cannot drift silently.
import { readFileSync } from 'node:fs';

type Schema = Record<string, any>;
const known = new Set(['$schema', '$id', 'title', 'description', '$defs', '$ref', 'oneOf', 'allOf', 'not', 'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'items', 'minimum', 'pattern']);

export const reportSchema: Schema = JSON.parse(readFileSync(new URL('../schema/report.schema.json', import.meta.url), 'utf8'));

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** The problems with `value` (empty: valid), each as "path: what". */
export function validate(value: unknown, schema: Schema = reportSchema, root: Schema = schema, path = '$'): string[] {
  for (const key of Object.keys(schema)) if (!known.has(key)) throw new Error(`schema keyword ${key} at ${path} is not supported by test/schema.ts`);
  if (schema.$ref) {
    const name = /^#\/\$defs\/(.+)$/.exec(schema.$ref)?.[1];
    if (!name || !root.$defs?.[name]) throw new Error(`unresolvable $ref ${schema.$ref}`);
    return validate(value, root.$defs[name], root, path);
  }
  const errors: string[] = [];
  if (schema.oneOf) {
    const passing = schema.oneOf.map((s: Schema) => validate(value, s, root, path));
    const ok = passing.filter((e: string[]) => !e.length).length;
    if (ok !== 1) errors.push(`${path}: matches ${ok} of oneOf (want 1)${ok === 0 ? `: ${passing.map((e: string[]) => e[0]).join(' | ')}` : ''}`);
  }
  for (const s of schema.allOf ?? []) errors.push(...validate(value, s, root, path));
  if (schema.not && !validate(value, schema.not, root, path).length) errors.push(`${path}: matches a schema it must not`);
  if (schema.type) {
    const types = [schema.type].flat();
    const actual = typeOf(value);
    if (!types.includes(actual) && !(actual === 'integer' && types.includes('number'))) return [...errors, `${path}: ${actual}, want ${types.join(' or ')}`];
  }
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if ('const' in schema && value !== schema.const) errors.push(`${path}: ${JSON.stringify(value)}, want ${JSON.stringify(schema.const)}`);
  if (typeof value === 'number' && schema.minimum !== undefined && value < schema.minimum) errors.push(`${path}: ${value} < ${schema.minimum}`);
  if (typeof value === 'string' && schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) errors.push(`${path}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in object)) errors.push(`${path}: ${key} is missing`);
    for (const [key, v] of Object.entries(object)) {
      if (schema.properties?.[key]) errors.push(...validate(v, schema.properties[key], root, `${path}.${key}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: ${key} is not allowed`);
    }
  }
  if (Array.isArray(value) && schema.items) value.forEach((item, i) => errors.push(...validate(item, schema.items, root, `${path}[${i}]`)));
  return errors;
}
