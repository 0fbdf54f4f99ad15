/**
 * problemsFrom on a union with one object branch (`N | {…}`, `{…} | null`): an object with an unknown or missing key
 * was reported as "expected an integer or an object, got an object" (the branch's own errors, at the object's
 * path, were dropped); now the object branch's errors are named, with the closest known key.
 */
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';

import { CONFIG_AJV_OPTIONS } from '../../ts/config/ajv.js';
import { problemsFrom } from '../../ts/config/problems.js';

const item = {
  type: 'object',
  additionalProperties: false,
  required: ['subject'],
  properties: { subject: { type: 'integer', minimum: 1 }, name: { type: 'string' } },
};
const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    one: { oneOf: [{ type: 'integer', minimum: 1, maximum: 8 }, item] },
    maybe: { anyOf: [item, { type: 'null' }] },
  },
};
const validate = new Ajv({ ...CONFIG_AJV_OPTIONS, useDefaults: false }).compile(schema);
const problems = (v: unknown) => (validate(v) ? [] : problemsFrom(validate.errors ?? [], 'x.json'));

describe('problemsFrom: a union with one object branch', () => {
  it("names an object's unknown and missing keys", () => {
    expect(problems({ one: { subject: 1, nmae: 'a' } })).toEqual(['x.json: one.nmae: unknown key (did you mean "name"?); known: subject, name']);
    expect(problems({ maybe: { name: 'a' } })).toEqual(['x.json: maybe.subject: required, expected an integer >= 1']);
    expect(problems({ one: { subject: 0 } })).toEqual(['x.json: one.subject: expected an integer >= 1, got number 0']);
  });
  it('keeps the union\'s message for a value of none of its types or of a scalar branch', () => {
    expect(problems({ one: 'x' })).toEqual(['x.json: one: expected an integer from 1 to 8 or an object, got the string "x"']);
    expect(problems({ one: 9 })).toEqual(['x.json: one: expected an integer from 1 to 8 or an object, got number 9']);
    expect(problems({ maybe: 3 })).toEqual(['x.json: maybe: expected an object or null, got number 3']);
    expect(problems({ one: 3, maybe: null })).toEqual([]);
  });
});
