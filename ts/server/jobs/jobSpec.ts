/**
 * A validated job body → a JobSpec a runner can run: every path the config's schema declares is resolved inside
 * the root (all refusals listed at once, like any other problem), then the config goes through the same
 * resolution as on the CLI (alpha grids parsed, cross-field checks), so the runner gets exactly what
 * `brainlatent reconstruct --config` would run.
 */
import type { TSchema } from '@sinclair/typebox';

import { resolveAlphaGrid } from '../../config/alphaGrid.js';
import { ConfigError, configPaths, EncodeConfigSchema, mapConfigPaths, ReconstructConfigSchema, resolveEncodeConfig } from '../../config/index.js';
import { RidgeFitConfigSchema, type RidgeFitConfig } from '../../config/ridgeFit.js';
import { resolveConfig } from '../../pipeline/config.js';
import { PathOutsideRootError, type RootFolder } from '../rootPaths.js';
import { DemoJobSchema } from '../schemas.js';
import { RequestValidationError } from '../validation.js';
import type { DemoJobInput, JobInput } from './executeJob.js';
import type { JobSpec } from './JobRunner.js';
import type { JobKind } from './types.js';

export type JobBody =
  | { kind: 'reconstruct'; config: Record<string, unknown>; force: boolean }
  | { kind: 'encode'; config: Record<string, unknown> }
  | { kind: 'ridge-fit'; config: Record<string, unknown> }
  | ({ kind: 'demo' } & DemoJobInput);

/** The config with every declared path resolved inside the root; throws a 400 listing every path refused. */
async function confineConfig<T>(root: RootFolder, schema: TSchema, config: T, source: string): Promise<T> {
  const resolved = new Map<string, string>();
  const problems: string[] = [];
  for (const p of configPaths(schema, config)) {
    try {
      resolved.set(p.field, await root.resolve(p.value, `${source}.${p.field}`));
    } catch (e) {
      if (!(e instanceof PathOutsideRootError)) throw e;
      problems.push(e.message);
    }
  }
  if (problems.length) throw new RequestValidationError('body', problems);
  return mapConfigPaths(schema as never, config, ({ field, value }) => resolved.get(field) ?? value) as T;
}

/** A ConfigError from the library's resolver becomes a 400 with its problems. */
function asRequestError(e: unknown): never {
  if (e instanceof ConfigError) throw new RequestValidationError('body', e.problems);
  throw e;
}

export async function jobSpecOf(body: JobBody, root: RootFolder): Promise<JobSpec> {
  const spec = (kind: JobKind, out: string, input: JobInput): JobSpec => ({ kind, out, outShown: root.relative(out), input });
  switch (body.kind) {
    case 'reconstruct': {
      const config = await confineConfig(root, ReconstructConfigSchema, body.config, 'body.config');
      const model = config.model as { ortLibrary?: string | null } | undefined;
      if (model?.ortLibrary) {
        throw new RequestValidationError('body', ['body.config.model.ortLibrary: must be null in the service (its operator chooses ONNX Runtime with BRAINLATENT_ORT_LIB)']);
      }
      let resolved;
      try {
        resolved = resolveConfig(config, 'body.config');
      } catch (e) {
        asRequestError(e);
      }
      return spec('reconstruct', resolved.out, { kind: 'reconstruct', config: resolved, force: body.force });
    }
    case 'ridge-fit': {
      const config = await confineConfig(root, RidgeFitConfigSchema, body.config, 'body.config');
      const problems: string[] = [];
      const alphas = resolveAlphaGrid(config.alphas as string | number[], 'body.config.alphas', problems);
      if (problems.length) throw new RequestValidationError('body', problems);
      const resolved = { ...(config as unknown as RidgeFitConfig), alphas };
      return spec('ridge-fit', resolved.out, { kind: 'ridge-fit', config: resolved });
    }
    case 'demo': {
      const { kind: _kind, ...demo } = body;
      const out = await confineConfig(root, DemoJobSchema, body, 'body').then((b) => b.out);
      return spec('demo', out, { kind: 'demo', demo: { ...demo, out } });
    }
    case 'encode': {
      const config = await confineConfig(root, EncodeConfigSchema, body.config, 'body.config');
      let resolved;
      try {
        resolved = resolveEncodeConfig(config, 'body.config');
      } catch (e) {
        asRequestError(e);
      }
      return spec('encode', resolved.out, { kind: 'encode', config: resolved });
    }
  }
}
