/**
 * The TypeBox builders the config schemas use, without loading TypeBox: its ESM build is ~200 modules, and the
 * schemas are built when the package's main entry is imported, whatever the caller uses. Each builder returns the
 * object TypeBox 0.34's own returns (the same keys, the `TypeBox.Kind` / `TypeBox.Optional` symbols included, in its
 * default instance mode), so the schemas stay TypeBox schemas for Fastify's type provider and TypeBox's guards, and
 * their TypeScript types are TypeBox's (the signatures are taken from it). test/config/typeBuilder.test.ts holds each
 * builder, and every exported config schema, against TypeBox's.
 */
import type { Type as TypeBoxType } from '@sinclair/typebox';

type Schema = Record<PropertyKey, unknown>;
type Options = Record<string, unknown> | undefined;

const Kind = Symbol.for('TypeBox.Kind');
const OptionalKind = Symbol.for('TypeBox.Optional');

// TypeBox's CreateType: options first, the builder's own keys over them; the schema itself when there are none.
function create(schema: Schema, options: Options): Schema {
  return options !== undefined ? { ...options, ...schema } : schema;
}

const isOptional = (s: unknown): boolean => typeof s === 'object' && s !== null && (s as Schema)[OptionalKind] === 'Optional';

function optional(schema: Schema, enable?: boolean): Schema {
  if (enable === false) {
    const { [OptionalKind]: _, ...rest } = schema;
    return rest;
  }
  return { ...schema, [OptionalKind]: 'Optional' };
}

function object(properties: Record<string, Schema>, options: Options): Schema {
  const required = Object.keys(properties).filter((key) => !isOptional(properties[key]));
  const schema = required.length > 0 ? { [Kind]: 'Object', type: 'object', required, properties } : { [Kind]: 'Object', type: 'object', properties };
  return create(schema, options);
}

function union(types: Schema[], options: Options): Schema {
  if (types.length === 0) return create({ [Kind]: 'Never', not: {} }, options);
  if (types.length === 1) return create(types[0], options);
  return create({ [Kind]: 'Union', anyOf: types }, options);
}

function tuple(types: Schema[], options: Options): Schema {
  const n = types.length;
  return create(
    n > 0
      ? { [Kind]: 'Tuple', type: 'array', items: types, additionalItems: false, minItems: n, maxItems: n }
      : { [Kind]: 'Tuple', type: 'array', minItems: n, maxItems: n },
    options,
  );
}

type Builders = Pick<
  typeof TypeBoxType,
  'Array' | 'Boolean' | 'Integer' | 'Literal' | 'Null' | 'Number' | 'Object' | 'Optional' | 'String' | 'Tuple' | 'Union'
>;

/** The subset of TypeBox's `Type` the config schemas are written with. */
export const Type: Builders = {
  Array: (items: Schema, options?: Options) => create({ [Kind]: 'Array', type: 'array', items }, options),
  Boolean: (options?: Options) => create({ [Kind]: 'Boolean', type: 'boolean' }, options),
  Integer: (options?: Options) => create({ [Kind]: 'Integer', type: 'integer' }, options),
  Literal: (value: string | number | boolean, options?: Options) => create({ [Kind]: 'Literal', const: value, type: typeof value }, options),
  Null: (options?: Options) => create({ [Kind]: 'Null', type: 'null' }, options),
  Number: (options?: Options) => create({ [Kind]: 'Number', type: 'number' }, options),
  Object: object,
  Optional: optional,
  String: (options?: Options) => create({ [Kind]: 'String', type: 'string' }, options),
  Tuple: tuple,
  Union: union,
} as unknown as Builders;
