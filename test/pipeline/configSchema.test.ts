/** The config schemas as JSON Schema: help generated from them, paths found through them, the CLI's use of them. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { Ajv } from 'ajv';
import { CONFIG_AJV_OPTIONS } from '../../ts/config/ajv.js';
import { EncodeConfigSchema } from '../../ts/config/encode.js';
import { configHelp } from '../../ts/config/help.js';
import { configPaths, resolveConfigPaths } from '../../ts/config/paths.js';
import { ReconstructConfigSchema } from '../../ts/config/reconstruct.js';
import { checkConfig } from '../../ts/config/validate.js';
import { registerReconstructCommand } from '../../ts/cli/commands/reconstruct.js';
import { resolveConfig } from '../../ts/pipeline/config.js';
import { extractOptions } from '../../ts/pipeline/stages.js';
import { ConfigError } from '../../ts/pipeline/errors.js';
import { SCHEDULERS } from '../../ts/sd/schedulerConfig.js';
import { tempDir } from '../helpers/tempDir.js';

type Schema = Record<string, unknown>;

/** Every leaf field of a schema, as the help writes it ("nsd.root", "evaluation.networks[].name"). */
function leafFields(s: Schema, field = ''): string[] {
  if (s.type === 'object' && s.properties) {
    return Object.entries(s.properties as Record<string, Schema>).flatMap(([k, p]) => leafFields(p, field ? `${field}.${k}` : k));
  }
  const items = s.items as Schema | undefined;
  if (s.type === 'array' && items?.type === 'object') return leafFields(items, `${field}[]`);
  if (s.type === 'array' && Array.isArray(items?.oneOf)) {
    return (items!.oneOf as Schema[]).flatMap((b) => Object.keys(b.properties as object).filter((k) => k !== 'kind').map((k) => `${field}[].${k}`));
  }
  return [field];
}

const schemas = { reconstruct: ReconstructConfigSchema, encode: EncodeConfigSchema };

describe.each(Object.entries(schemas))('the %s schema', (_name, schema) => {
  it('is plain JSON Schema that a stock ajv with the exported options compiles', () => {
    const json = JSON.parse(JSON.stringify(schema));
    expect(() => new Ajv(CONFIG_AJV_OPTIONS).compile(json)).not.toThrow();
  });

  it('describes every field in the help, and its example validates', () => {
    const help = configHelp(schema);
    const fields = leafFields(schema as unknown as Schema);
    expect(fields.length).toBeGreaterThan(20);
    for (const f of fields) expect(help).toMatch(new RegExp(`^  ${f.replace(/[.[\]]/g, '\\$&')}\\s`, 'm'));
    const examples = (schema as unknown as Schema).examples as unknown[];
    expect(examples.length).toBeGreaterThan(0);
    for (const e of examples) expect(checkConfig(schema, e, 'example').problems).toEqual([]);
  });
});

describe('paths in a config', () => {
  it('are found through the schema and resolved against the config file', () => {
    const c = {
      out: 'runs/a',
      nsd: { root: '/abs/nsd', subject: 1, captions: 'caps.json', cacheDir: null },
      model: { dir: '../models/sd' },
      decoders: { z: { roi: 'streams:early' }, c: { roi: 'masks/ventral.nii.gz' } },
      evaluation: { networks: [{ name: 'n', path: 'net.onnx', inputSize: 224, metric: 'distance' }] },
    };
    expect(configPaths(ReconstructConfigSchema, c).map((p) => p.field)).toEqual(['out', 'nsd.root', 'nsd.captions', 'model.dir', 'decoders.c.roi', 'evaluation.networks[0].path']);
    const r = resolveConfigPaths(ReconstructConfigSchema, c, '/base/cfg');
    expect(r.out).toBe('/base/cfg/runs/a');
    expect(r.nsd.root).toBe('/abs/nsd');
    expect(r.model.dir).toBe('/base/models/sd');
    expect(r.decoders.z.roi).toBe('streams:early');
    expect(r.decoders.c.roi).toBe('/base/cfg/masks/ventral.nii.gz');
    expect(r.evaluation.networks[0].path).toBe('/base/cfg/net.onnx');
    expect(resolveConfig(r).nsd.captions).toBe('/base/cfg/caps.json');
  });
});

describe('brainlatent reconstruct --config', () => {
  async function run(...args: string[]): Promise<unknown> {
    const program = new Command().exitOverride();
    registerReconstructCommand(program);
    try {
      await program.parseAsync(['node', 'brainlatent', 'reconstruct', ...args]);
    } catch (e) {
      return e;
    }
    return null;
  }

  it('reports a config file holding null, naming the file', async () => {
    const dir = tempDir('bl-cfg-');
    const file = join(dir, 'run.json');
    writeFileSync(file, 'null');
    const err = (await run('--config', file, '--dry-run')) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.problems).toEqual([`${file}: expected an object, got null`]);
  });

  it('takes every scheduler of the sampler, and Karras sigmas only where they are defined', () => {
    const base = { out: 'x', nsd: { root: 'nsd', subject: 1 }, model: { dir: 'm' } };
    // (the default rule, compvis, is DDIM's: the others run diffusers')
    for (const scheduler of SCHEDULERS) {
      expect(resolveConfig({ ...base, img2img: { scheduler, rule: scheduler === 'ddim' ? 'compvis' : 'diffusers' } }).img2img.scheduler).toBe(scheduler);
    }
    expect(resolveConfig({ ...base, img2img: { scheduler: 'unipc', rule: 'diffusers', karras: true } }).img2img.karras).toBe(true);
    expect(() => resolveConfig({ ...base, img2img: { scheduler: 'pndm', rule: 'diffusers', karras: true } }, 'run.json')).toThrow(
      /run\.json: img2img\.karras: Karras sigmas are defined for euler, heun, lms, dpmpp2m, dpmpp2m-sde, unipc, not pndm/,
    );
    // an old config (no karras) keeps its hash, so its run folder still resumes
    expect('karras' in resolveConfig(base).img2img).toBe(false);
  });

  it("takes the z-score's ddof per decoder, hands it to the NSD adapter, and refuses it without a z-score", () => {
    const base = { out: 'x', nsd: { root: 'nsd', subject: 1 }, model: { dir: 'm' } };
    const c = resolveConfig({ ...base, decoders: { z: { zscore: 'train', zscoreDdof: 0 }, c: { zscore: 'session' } } });
    expect(extractOptions(c, 'z')).toMatchObject({ zscore: 'train', ddof: 0 });
    expect('ddof' in extractOptions(c, 'c')).toBe(false); // the adapter's default (0 for session)
    expect('zscoreDdof' in resolveConfig(base).decoders.z).toBe(false); // old configs keep their hash
    expect(() => resolveConfig({ ...base, decoders: { z: { zscoreDdof: 1 } } }, 'run.json')).toThrow(/run\.json: decoders\.z\.zscoreDdof: set, but decoders\.z\.zscore is 'none'/);
    expect(() => resolveConfig({ ...base, decoders: { z: { zscore: 'train', zscoreDdof: 2 } } }, 'run.json')).toThrow(/decoders\.z\.zscoreDdof/);
  });

  it('refuses an alpha grid listing an alpha twice, as the string forms and --alphas do', () => {
    const base = { out: 'x', nsd: { root: 'nsd', subject: 1 }, model: { dir: 'm' } };
    expect(() => resolveConfig({ ...base, decoders: { z: { alphas: [1, 10, 1] } } }, 'run.json')).toThrow(
      /run\.json: decoders\.z\.alphas: the alphas must be distinct, got 1 at positions 0 and 2/,
    );
    expect(resolveConfig({ ...base, decoders: { z: { alphas: [1, 10] } } }).decoders.z.alphas).toEqual([1, 10]);
  });

  it('lists every problem of the file and of the flags at once', async () => {
    const dir = tempDir('bl-cfg-');
    const file = join(dir, 'run.json');
    writeFileSync(file, JSON.stringify({ out: 'x', nsd: { root: 'nsd', subject: 1, colour: 1 }, model: { dir: 'm' }, img2img: { strenght: 0.5 } }));
    const err = (await run('--config', file, '--seeds', '0', '--dry-run')) as ConfigError;
    expect(err.problems).toEqual([
      `${file}: nsd.colour: unknown key; known: root, subject, sessions, format, cacheDir, captions, testImages`,
      `${file}: img2img.strenght: unknown key (did you mean "strength"?); known: size, reencode, strength, steps, guidance, scheduler, karras, eta, seeds, seed, rule, batchSize`,
      // a bad flag is named as the flag, not as the file's field
      '--seeds: expected an integer >= 1, got 0',
    ]);
  });
});
