/**
 * fillDefaults (ts/config/defaults.ts) fills a schema's defaults without ajv, so that pipeline/config.ts's DEFAULTS
 * is built at import without loading the validator: it must give what the validator's useDefaults gives.
 */
import { describe, expect, it } from 'vitest';

import { fillDefaults } from '../../ts/config/defaults.js';
import { EncodeConfigSchema } from '../../ts/config/encode.js';
import { Default, Strict } from '../../ts/config/schemaKit.js';
import { Type } from '../../ts/config/typeBuilder.js';
import { checkConfig } from '../../ts/config/validate.js';
import { DEFAULTS, resolveConfig } from '../../ts/pipeline/config.js';

describe('fillDefaults', () => {
  it('DEFAULTS are the defaults resolveConfig (ajv) fills into a minimal config', () => {
    const { out: _o, nsd: { root: _r, subject: _s, ...nsd }, model: { dir: _d, ...model }, ...rest } = resolveConfig({ out: '-', nsd: { root: '-', subject: 1 }, model: { dir: '-' } });
    expect(DEFAULTS).toStrictEqual({ ...rest, nsd, model });
    expect(DEFAULTS.decoders.z.alphas.length).toBeGreaterThan(5);
    expect(DEFAULTS.img2img.scheduler).toBe('ddim');
  });

  it('fills what the validator fills in an encode config too, at every depth', () => {
    const input = { out: 'o', nsd: { root: 'r', subject: 1 }, featureSets: [{ name: 'z', kind: 'z' }], model: 'm' };
    const viaAjv = checkConfig(EncodeConfigSchema, input, 'config');
    expect(viaAjv.problems).toEqual([]);
    // (feature sets are oneOf branches, whose defaults ajv fills through the discriminator and fillDefaults leaves:
    // compared without them)
    const { featureSets: _a, ...ours } = fillDefaults(EncodeConfigSchema, structuredClone(input)) as Record<string, unknown>;
    const { featureSets: _b, ...theirs } = viaAjv.value as Record<string, unknown>;
    expect(ours).toStrictEqual(theirs);
  });

  it('keeps values given, copies each default, and fills an object it defaulted', () => {
    const schema = Strict({
      a: Default(Type.Integer(), 1),
      list: Default(Type.Array(Type.Integer()), [1, 2]),
      inner: Default(Strict({ b: Default(Type.String(), 'x'), c: Type.Optional(Type.String()) }), {}),
    });
    expect(fillDefaults(schema, { a: 5 })).toStrictEqual({ a: 5, list: [1, 2], inner: { b: 'x' } });
    const first = fillDefaults(schema, {}) as { list: number[] };
    first.list.push(3);
    expect((fillDefaults(schema, {}) as { list: number[] }).list).toEqual([1, 2]);
    expect(fillDefaults(schema, { inner: { b: 'y' } })).toStrictEqual({ a: 1, list: [1, 2], inner: { b: 'y' } });
    expect(fillDefaults(schema, 7)).toBe(7);
  });
});
