/**
 * Building blocks for the config schemas (TypeBox, so each schema is plain JSON Schema and its TypeScript
 * types are derived from it): fields with defaults, nullable fields, paths, alpha grids, unions tagged by
 * `kind`, and `Resolved<S>`, the type of a config once the schema's defaults are filled in.
 */
import type {
  ObjectOptions,
  Static,
  TArray,
  TNumber,
  TObject,
  TOptional,
  TProperties,
  TSchema,
  TString,
  TUnion,
} from '@sinclair/typebox';
import { Type } from './typeBuilder.js';

declare const DefaultBrand: unique symbol;
declare const AlphaGridBrand: unique symbol;

/** An optional field whose absence means `default` (filled in by the validator, so it is always there afterwards). */
export type TDefault<T extends TSchema> = TOptional<T> & { readonly [DefaultBrand]: true };

/** An alpha grid as written (`"1e1:1e7:10"`, `"1,10,100"` or a list); a list of numbers once resolved. */
export type TAlphaGrid = TUnion<[TString, TArray<TNumber>]> & { readonly [AlphaGridBrand]: true };

/** `schema` with a default value: optional in what a user writes, present in the resolved config. */
export function Default<T extends TSchema>(schema: T, value: Static<T>): TDefault<T> {
  return Type.Optional({ ...schema, default: value }) as unknown as TDefault<T>;
}

/** `schema` or null. */
export function Nullable<T extends TSchema>(schema: T, options: { description?: string } = {}): TUnion<[T, ReturnType<typeof Type.Null>]> {
  return Type.Union([schema, Type.Null()], options);
}

/** A file or folder; relative paths in a config file are relative to the file (see resolveConfigPaths). */
export const Path = (description: string) => Type.String({ minLength: 1, format: 'path', description });

/** A region spec ('nsdgeneral', 'streams:early', 'prf-visualrois:V1v,V2v') or a mask file on the subject's grid. */
/** The z-score SD's delta degrees of freedom; absent: the adapter's default (1 for 'train', 0 for 'session'). */
export const ZscoreDdof = Type.Union([Type.Literal(0), Type.Literal(1)], {
  description:
    "the z-score SD's ddof: 1 = Brain-Diffuser (np.std ddof=1); 0 = scikit-learn's StandardScaler (Takagi & Nishimoto) and scipy.stats.zscore (MindEye). Default: 1 for 'train', 0 for 'session'",
});

export const Region = (description: string) => Type.String({ minLength: 1, format: 'region', description });

/** Grammar of the string form of an alpha grid: `start:stop:count` (log-spaced) or a comma-separated list. */
export const ALPHA_GRID_PATTERN = '^\\s*[^:,\\s]+\\s*(:\\s*[^:,\\s]+\\s*:\\s*[^:,\\s]+\\s*|(,\\s*[^:,\\s]+\\s*)*)$';

export function AlphaGrid(description: string): TAlphaGrid {
  return Type.Union(
    [
      Type.String({ pattern: ALPHA_GRID_PATTERN, title: '"start:stop:count" (log-spaced, e.g. "1e1:1e7:10") or "a,b,c"' }),
      Type.Array(Type.Number({ exclusiveMinimum: 0 }), { minItems: 1 }),
    ],
    { description },
  ) as unknown as TAlphaGrid;
}

/**
 * A union of objects told apart by their `kind` (JSON Schema `oneOf` with an OpenAPI `discriminator`):
 * the validator checks only the branch the `kind` names, so errors speak of that branch alone.
 */
export function Tagged<T extends TObject[]>(branches: [...T], options: { description?: string } = {}): TUnion<T> {
  const u = Type.Union(branches, options) as unknown as Record<string, unknown>;
  const { anyOf, ...rest } = u;
  return { ...rest, type: 'object', oneOf: anyOf, discriminator: { propertyName: 'kind' } } as unknown as TUnion<T>;
}

/** `Object` with unknown keys rejected, the schemas' convention. */
export function Strict<P extends TProperties>(properties: P, options: ObjectOptions = {}): TObject<P> {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

/** `T` flattened into one object type (an intersection reads as one object). */
export type Evaluate<T> = T extends infer O ? { [K in keyof O]: O[K] } : never;

/** The keys of an object schema's properties that are present after validation: required and defaulted ones. */
export type RequiredKeys<P extends TProperties> = {
  [K in keyof P]: P[K] extends TDefault<TSchema> ? K : P[K] extends TOptional<TSchema> ? never : K;
}[keyof P];
/** The keys of an object schema's properties that may be absent after validation. */
export type OptionalKeys<P extends TProperties> = Exclude<keyof P, RequiredKeys<P>>;

/** The type of an object schema's value after validation (see Resolved). */
export type ResolvedObject<P extends TProperties> = Evaluate<
  { [K in RequiredKeys<P>]-?: Resolved<P[K]> } & { [K in OptionalKeys<P>]?: Resolved<P[K]> }
>;

/** The type of a value of schema `S` after validation: defaulted fields present, alpha grids as number lists. */
export type Resolved<S extends TSchema> = S extends TAlphaGrid
  ? number[]
  : S extends TObject<infer P>
    ? ResolvedObject<P>
    : S extends TArray<infer I>
      ? Resolved<I>[]
      : S extends TUnion<infer U>
        ? { [K in keyof U]: U[K] extends TSchema ? Resolved<U[K]> : never }[number]
        : Static<S>;
