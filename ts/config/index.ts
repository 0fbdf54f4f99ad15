/**
 * One JSON Schema per config, used wherever a config enters (CLI, library, service): the schemas, the ajv
 * options that check them, problems as messages, the help and the paths they declare.
 */
export { ReconstructConfigSchema, FeatureNetworkSchema, RECONSTRUCT_ALPHAS } from './reconstruct.js';
export type { ReconstructConfigInput } from './reconstruct.js';
export { EncodeConfigSchema, FeatureSetSchema, BandedSchema, resolveEncodeConfig } from './encode.js';
export type { FeatureSetSpec, BandedSpec } from './encode.js';
export { CONFIG_AJV_OPTIONS, configAjv, validatorFor } from './ajv.js';
export { checkConfig, type Checked } from './validate.js';
export { problemsFrom, expectedOf, describeValue, fieldLabel } from './problems.js';
export { fieldNames, type FieldFlags, type FieldNames, type FieldValue } from './fieldNames.js';
export { ConfigError } from './errors.js';
export { configHelp, schemaHelpText } from './help.js';
export { configPaths, resolveConfigPaths, mapConfigPaths, type ConfigPath, type Schema } from './paths.js';
export type { Resolved, ResolvedObject, RequiredKeys, OptionalKeys, Evaluate, TAlphaGrid, TDefault } from './schemaKit.js';
