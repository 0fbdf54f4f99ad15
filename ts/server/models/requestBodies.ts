/**
 * The data bodies of /v1/ridge/:model/predict (.npy or JSON) and /v1/sd/:model/img2img (JSON with base64 .npy
 * arrays) → the arrays the models take, with every check a client's error deserves a 400 for: shape, dtype, NaN
 * and Inf (naming the field and element). A small body is decoded here on the event loop, where it costs well under
 * a millisecond; a large one (dataBodies.ts) is decoded by a predict thread with `decodeLargeBody`, which parses
 * and validates its JSON exactly as the route's schema would have, so both give the same answers.
 */
import sjson from 'secure-json-parse';

import { ShapeError } from '../../errors.js';
import { fieldLabel, problemsFrom, validatorFor } from '../../config/index.js';
import { Img2ImgBodySchema, PredictBodySchema, type Img2ImgBody, type PredictBody } from '../../config/service.js';
import { assertFinite } from '../../io/finite.js';
import { jsonSyntaxError, numbersBeyondFloat64 } from '../../io/json.js';
import { decodeNpy, FLOAT_DTYPES } from '../../io/npy.js';
import type { Matrix } from '../../matrix.js';
import type { Tensor } from '../../sd/tensor.js';
import { RequestValidationError } from '../validation.js';

/** A 2-D (or 1-D: one sample) float array from a .npy body. */
export function matrixFromNpy(body: Uint8Array): Matrix {
  // (the dtype is refused from the header, naming what this route takes)
  const a = decodeNpy(body, 'body', { dtypes: FLOAT_DTYPES });
  if (a.shape.length !== 1 && a.shape.length !== 2) throw new ShapeError(`body: expected a 2-D array (samples × features), got shape (${a.shape.join(', ')})`);
  const [rows, cols] = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  const data = a.data instanceof Float32Array ? a.data : Float32Array.from(a.data as Float64Array);
  // a float64 value beyond float32's range becomes Inf here: the client's error too
  const sent = a.data instanceof Float32Array ? undefined : (i: number) => (a.data as Float64Array)[i];
  assertFinite(data, 'body (X as .npy)', { shape: [rows, cols], axes: ['sample', 'feature'], sent });
  return { data, rows, cols };
}

export function matrixFromJson(x: number[][]): Matrix {
  const cols = x[0].length;
  const data = new Float32Array(x.length * cols);
  x.forEach((row, i) => {
    if (row.length !== cols) throw new ShapeError(`body.x[${i}]: has ${row.length} features, body.x[0] has ${cols}`);
    data.set(row, i * cols);
  });
  // JSON has no NaN, and 1e999 (Infinity from JSON.parse) is refused as parsed (refuseNumbersBeyondFloat64), but 1e39
  // is Inf in float32 (named as sent)
  assertFinite(data, 'body.x', { shape: [x.length, cols], axes: ['sample', 'feature'], sent: (i) => x[Math.floor(i / cols)][i % cols] });
  return { data, rows: x.length, cols };
}

function tensorFromBase64(text: string, field: string, rank: number): Tensor {
  const a = decodeNpy(Buffer.from(text, 'base64'), field, { dtypes: ['float32'] });
  const data = a.data as Float32Array;
  if (a.shape.length !== rank) throw new ShapeError(`${field}: expected a ${rank}-D array, got shape (${a.shape.join(', ')})`);
  assertFinite(data, field, { shape: a.shape });
  return { data, shape: a.shape };
}

/** An img2img body with its arrays decoded. */
export interface Img2ImgInput {
  settings: Omit<Img2ImgBody, 'z' | 'c' | 'uncond'>;
  z: Tensor;
  c: Tensor;
  uncond?: Tensor;
}

export function img2imgInput(b: Img2ImgBody): Img2ImgInput {
  const { z, c, uncond, ...settings } = b;
  // (their shapes against each other and the model are checked by the route, before queueing: Diffusion.checkImg2ImgShapes)
  return {
    settings,
    z: tensorFromBase64(z, 'body.z', 4),
    c: tensorFromBase64(c, 'body.c', 3),
    ...(uncond ? { uncond: tensorFromBase64(uncond, 'body.uncond', 3) } : {}),
  };
}

/** What a large body holds: X as .npy, X as JSON, or an img2img request. */
export type LargeBodyKind = 'predict-npy' | 'predict-json' | 'img2img';
export type DecodedBody = { kind: 'matrix'; x: Matrix } | { kind: 'img2img'; input: Img2ImgInput };

/**
 * What a JSON body's `__proto__` and `constructor.prototype` keys get ('error': the body is refused as not JSON):
 * the app's Fastify options onProtoPoisoning and onConstructorPoisoning, which its own JSON parser follows.
 */
export interface JsonKeyRules {
  protoAction: 'error' | 'remove' | 'ignore';
  constructorAction: 'error' | 'remove' | 'ignore';
}

/** Fastify's defaults. */
export const REFUSE_PROTO_KEYS: JsonKeyRules = { protoAction: 'error', constructorAction: 'error' };

/** A body's text without its UTF-8 byte order mark, which Fastify's JSON parser (secure-json-parse) skips. */
export const withoutBom = (text: string): string => (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);

/** What a JSON parser refuses a body for expected: its content-type's media type. */
const EXPECTED_JSON = 'expected JSON (application/json)';

/**
 * What is wrong with a body that is not JSON, as a 400's problem naming the body, as the validator's name their
 * field: what was expected, where the body stops being JSON and what was expected there (never its text).
 */
export function invalidJsonProblem(text: string): string {
  const where = jsonSyntaxError(withoutBom(text));
  if (where?.tooDeep) return `body: ${EXPECTED_JSON}, got text that is not JSON or holds a key that is refused (__proto__, or constructor with a prototype); it is nested too deeply to say where`;
  return where
    ? `body: ${EXPECTED_JSON}, got text that stops being JSON at line ${where.line}, column ${where.column}: ${where.what}${where.atEnd ? ' (at the end of the body)' : ''}`
    : `body: ${EXPECTED_JSON} without a __proto__ key, or a constructor key holding a prototype, got JSON that holds one (such keys are refused)`;
}

/** The problem of an empty body sent as JSON to a route that takes one. */
export const EMPTY_JSON_PROBLEM = `body: ${EXPECTED_JSON}, got an empty body`;

/**
 * Refuses a JSON body (`text`, parsed as `value`) that holds a number beyond float64's range: JSON.parse reads 1e999
 * as Infinity, which the schema refused as "got number Infinity", a value the client never sent. The 400 names each
 * such number's field and the number as written (the first 10, and how many in all). Numbers are read as float64,
 * then a data array as float32, whose own range (±3.4e38) is checked with the arrays (assertFinite).
 */
export function refuseNumbersBeyondFloat64(text: string, value: unknown): void {
  const { found, count } = numbersBeyondFloat64(text, value);
  if (count === 0) return;
  // (a number of thousands of digits is not quoted whole)
  const shown = (t: string) => (t.length > 40 ? `${t.slice(0, 24)}…${t.slice(-8)} (${t.length} characters)` : t);
  const problems = found.map(
    (n) => `${fieldLabel('body', n.path.map(String))}: ${shown(n.text)} is beyond float64's range (±1.8e308), the type JSON numbers are read as; finite numbers are required`,
  );
  if (found.length === 0) problems.push(`body: ${count} number${count > 1 ? 's' : ''} beyond float64's range (such as 1e999), nested too deeply to say where; finite numbers are required`);
  else if (count > found.length) problems.push(`body: ${count - found.length} more numbers beyond float64's range (${count} in all)`);
  throw new RequestValidationError('body', problems);
}

/** A body that is not JSON (Fastify's own error for it is raised from this on the event loop, with this message). */
export class InvalidJsonBodyError extends Error {
  /** `text`: the body; the message (a 400's problem) says where it stops being JSON, as the event loop's does for a small body. */
  constructor(text: string) {
    super(invalidJsonProblem(text));
    this.name = 'InvalidJsonBodyError';
  }
}

/**
 * A JSON body parsed as Fastify parses a small one (secure-json-parse, under the app's `keys` rules: a BOM skipped, a
 * `__proto__` key refused as not JSON), then validated against `schema` as the route would (defaults filled in,
 * every problem listed).
 */
function validJson<T>(bytes: Buffer, schema: Parameters<typeof validatorFor>[0], keys: JsonKeyRules): T {
  let body: unknown;
  const text = withoutBom(bytes.toString('utf8'));
  try {
    body = sjson.parse(text, null, keys);
  } catch {
    throw new InvalidJsonBodyError(text);
  }
  refuseNumbersBeyondFloat64(text, body);
  const validate = validatorFor(schema);
  if (!validate(body)) throw new RequestValidationError('body', problemsFrom(validate.errors ?? [], 'body'));
  return body as T;
}

/** The segments of a large body as one Buffer (in the thread that decodes it). */
export function joinSegments(segments: readonly ArrayBuffer[], length: number): Buffer {
  if (segments.length === 1) return Buffer.from(segments[0], 0, length);
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (const s of segments) {
    const n = Math.min(s.byteLength, length - at);
    out.set(new Uint8Array(s, 0, n), at);
    at += n;
  }
  return out;
}

/** A large body's bytes → its arrays (in a predict thread); `keys`: the app's rules for a JSON body's prototype keys. */
export function decodeLargeBody(kind: LargeBodyKind, bytes: Buffer, keys: JsonKeyRules = REFUSE_PROTO_KEYS): DecodedBody {
  switch (kind) {
    case 'predict-npy':
      return { kind: 'matrix', x: matrixFromNpy(bytes) };
    case 'predict-json':
      return { kind: 'matrix', x: matrixFromJson(validJson<PredictBody>(bytes, PredictBodySchema, keys).x) };
    case 'img2img':
      return { kind: 'img2img', input: img2imgInput(validJson<Img2ImgBody>(bytes, Img2ImgBodySchema, keys)) };
  }
}
