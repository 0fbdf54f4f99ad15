/**
 * ts/config/typeBuilder.ts builds the config schemas without loading TypeBox (~200 modules at import): each builder,
 * and each exported schema, must be the object TypeBox itself builds, the TypeBox.Kind and TypeBox.Optional symbols
 * included (Fastify's TypeBox type provider and TypeBox's guards read them).
 */
import { Type as TypeBox, type TSchema } from '@sinclair/typebox';
import { describe, expect, it, vi } from 'vitest';

import { Type } from '../../ts/config/typeBuilder.js';
import * as encode from '../../ts/config/encode.js';
import * as reconstruct from '../../ts/config/reconstruct.js';
import * as ridgeFit from '../../ts/config/ridgeFit.js';
import * as schemaKit from '../../ts/config/schemaKit.js';
import * as service from '../../ts/config/service.js';
import * as sessions from '../../ts/config/sessions.js';

const Kind = Symbol.for('TypeBox.Kind');
const OptionalKind = Symbol.for('TypeBox.Optional');

/** The schema with its symbol keys as plain keys at every depth, so that a mismatch prints them. */
function visible(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(visible);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const k of Reflect.ownKeys(v)) out[typeof k === 'symbol' ? `[${k.description}]` : k] = visible((v as Record<PropertyKey, unknown>)[k]);
  return out;
}

function expectSame(ours: unknown, theirs: unknown, what: string): void {
  expect(visible(ours), what).toStrictEqual(visible(theirs));
  // keys in the same order too (help texts and the service's OpenAPI document list them in it)
  expect(JSON.stringify(visible(ours)), what).toBe(JSON.stringify(visible(theirs)));
}

describe('typeBuilder', () => {
  it('builds what TypeBox builds, builder by builder', () => {
    const opts = { description: 'd', title: 't' };
    const str = Type.String({ minLength: 1 });
    expectSame(str, TypeBox.String({ minLength: 1 }), 'String');
    expect((str as unknown as Record<symbol, unknown>)[Kind]).toBe('String');
    expectSame(Type.String(), TypeBox.String(), 'String()');
    expectSame(Type.Integer({ minimum: 0 }), TypeBox.Integer({ minimum: 0 }), 'Integer');
    expectSame(Type.Number(opts), TypeBox.Number(opts), 'Number');
    expectSame(Type.Boolean(opts), TypeBox.Boolean(opts), 'Boolean');
    expectSame(Type.Null(), TypeBox.Null(), 'Null');
    for (const v of ['a', 2, true] as const) expectSame(Type.Literal(v, opts), TypeBox.Literal(v, opts), `Literal ${v}`);
    expectSame(Type.Array(Type.Number(), { minItems: 1 }), TypeBox.Array(TypeBox.Number(), { minItems: 1 }), 'Array');
    expectSame(Type.Tuple([Type.Number(), Type.String()], opts), TypeBox.Tuple([TypeBox.Number(), TypeBox.String()], opts), 'Tuple');
    expectSame(Type.Tuple([]), TypeBox.Tuple([]), 'empty Tuple');
    // a union of two or more, of one (the member itself, with the options over it), of none (Never)
    expectSame(Type.Union([Type.Literal(0), Type.Literal(1)], opts), TypeBox.Union([TypeBox.Literal(0), TypeBox.Literal(1)], opts), 'Union');
    expectSame(Type.Union([Type.String()], opts), TypeBox.Union([TypeBox.String()], opts), 'Union of one');
    expectSame(Type.Union([]), TypeBox.Union([]), 'Union of none');
    // options never override the builder's own keys
    expectSame(Type.String({ type: 'number' } as never), TypeBox.String({ type: 'number' } as never), 'String over options');
    // optional members leave `required`; an object of optional members has none
    const optional = Type.Optional(Type.Number({ default: 3 }));
    expect((optional as unknown as Record<symbol, unknown>)[OptionalKind]).toBe('Optional');
    expectSame(optional, TypeBox.Optional(TypeBox.Number({ default: 3 })), 'Optional');
    expectSame(Type.Optional(optional, false), TypeBox.Optional(TypeBox.Optional(TypeBox.Number({ default: 3 })), false), 'Optional(false)');
    const props = { a: Type.String(), b: Type.Optional(Type.Number()) };
    const theirProps = { a: TypeBox.String(), b: TypeBox.Optional(TypeBox.Number()) };
    expectSame(Type.Object(props, { additionalProperties: false }), TypeBox.Object(theirProps, { additionalProperties: false }), 'Object');
    expectSame(Type.Object({ b: props.b }), TypeBox.Object({ b: theirProps.b }), 'Object without required');
  });

  it('builds every exported config schema exactly as TypeBox does', async () => {
    const ours: Record<string, Record<string, unknown>> = { encode, reconstruct, ridgeFit, schemaKit, service, sessions };
    // the same modules again, built with TypeBox's own Type
    vi.resetModules();
    vi.doMock('../../ts/config/typeBuilder.js', () => ({ Type: TypeBox }));
    try {
      const theirs: Record<string, Record<string, unknown>> = {
        encode: await import('../../ts/config/encode.js'),
        reconstruct: await import('../../ts/config/reconstruct.js'),
        ridgeFit: await import('../../ts/config/ridgeFit.js'),
        schemaKit: await import('../../ts/config/schemaKit.js'),
        service: await import('../../ts/config/service.js'),
        sessions: await import('../../ts/config/sessions.js'),
      };
      expect(theirs.encode.EncodeConfigSchema).not.toBe(encode.EncodeConfigSchema);
      let schemas = 0;
      for (const [mod, exports] of Object.entries(ours)) {
        for (const [name, value] of Object.entries(exports)) {
          // the schemas, and the schema factories called as the config modules call them
          let mine = value;
          let ref = theirs[mod][name];
          if (typeof value === 'function' && ['Path', 'Region', 'AlphaGrid', 'NsdSessions'].includes(name)) {
            mine = (value as (d: string) => unknown)('a description');
            ref = (ref as (d: string) => unknown)('a description');
          }
          if (typeof mine !== 'object' || mine === null || !(Kind in mine)) continue;
          expectSame(mine, ref, `${mod}.${name}`);
          schemas++;
        }
      }
      expect(schemas).toBeGreaterThanOrEqual(14);
      // the factories that take schemas
      const { Default, Nullable, Strict, Tagged } = schemaKit;
      const t = theirs.schemaKit as unknown as typeof schemaKit;
      const a = (T: typeof Type | typeof TypeBox) => T.Object({ kind: T.Literal('a'), n: T.Optional(T.Number()) });
      const b = (T: typeof Type | typeof TypeBox) => T.Object({ kind: T.Literal('b') });
      expectSame(Default(Type.Integer(), 4), t.Default(TypeBox.Integer() as TSchema, 4 as never), 'Default');
      expectSame(Nullable(Type.String(), { description: 'x' }), t.Nullable(TypeBox.String(), { description: 'x' }), 'Nullable');
      expectSame(Strict({ n: Type.Number() }), t.Strict({ n: TypeBox.Number() }), 'Strict');
      expectSame(Tagged([a(Type), b(Type)]), t.Tagged([a(TypeBox), b(TypeBox)] as never), 'Tagged');
    } finally {
      vi.doUnmock('../../ts/config/typeBuilder.js');
      vi.resetModules();
    }
  });
});
