/**
 * Scheduler configs as diffusers writes them (Python's json.dumps): every DPMSolverMultistepScheduler config since
 * diffusers 0.15 holds `"lambda_min_clipped": -Infinity`, which JSON.parse refused, so such a model folder could not be
 * loaded with any scheduler (review s35-r1).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { FormatError } from '../../ts/errors.js';
import { parsePythonJson } from '../../ts/io/pythonJson.js';
import { readScheduleConfig, readSchedulerConfig } from '../../ts/sd/schedulerConfig.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-py-json-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// (diffusers 0.21's DPM++ 2M Karras config, as saved by save_pretrained)
const DPM_CONFIG = `{
  "_class_name": "DPMSolverMultistepScheduler",
  "_diffusers_version": "0.21.0",
  "algorithm_type": "dpmsolver++",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "clip_sample": false,
  "dynamic_thresholding_ratio": 0.995,
  "euler_at_final": false,
  "lambda_min_clipped": -Infinity,
  "lower_order_final": true,
  "num_train_timesteps": 1000,
  "prediction_type": "epsilon",
  "sample_max_value": 1.0,
  "set_alpha_to_one": false,
  "skip_prk_steps": true,
  "solver_order": 2,
  "solver_type": "midpoint",
  "steps_offset": 1,
  "thresholding": false,
  "timestep_spacing": "leading",
  "trained_betas": null,
  "use_karras_sigmas": true,
  "variance_type": null
}
`;

describe("JSON with Python's NaN and infinities", () => {
  it('reads the bare tokens as numbers, and leaves them alone inside strings', () => {
    expect(parsePythonJson('{"a": -Infinity, "b": [Infinity, NaN, 1], "c": "-Infinity NaN \\" Infinity \\\\", "d": {"e": NaN}}')).toEqual({
      a: -Infinity,
      b: [Infinity, NaN, 1],
      c: '-Infinity NaN " Infinity \\',
      d: { e: NaN },
    });
    expect(parsePythonJson('[1, 2]')).toEqual([1, 2]);
    expect(() => parsePythonJson('{"a": -Inf}')).toThrow(SyntaxError);
    expect(() => parsePythonJson('{"a": Infinityx}')).toThrow(SyntaxError);
  });

  it("loads a model folder's DPM++ scheduler config as diffusers saves it", async () => {
    const dir = join(tmp, 'model');
    mkdirSync(join(dir, 'scheduler'), { recursive: true });
    writeFileSync(join(dir, 'scheduler', 'scheduler_config.json'), DPM_CONFIG);
    const cfg = await readSchedulerConfig(dir);
    expect(cfg.className).toBe('DPMSolverMultistepScheduler');
    expect(cfg.schedule.betaEnd).toBe(0.012);
    expect((await readScheduleConfig(dir)).betaEnd).toBe(0.012);
    // and another scheduler for the same folder (its keys are read all the same)
    expect((await readSchedulerConfig(dir, { scheduler: 'ddim' })).schedule.betaStart).toBe(0.00085);
    // a value the engine does not take is refused as written, not as null (JSON.stringify's NaN and ±Infinity)
    writeFileSync(join(dir, 'scheduler', 'scheduler_config.json'), DPM_CONFIG.replace('"lambda_min_clipped": -Infinity', '"lambda_min_clipped": Infinity'));
    await expect(readSchedulerConfig(dir)).rejects.toThrow(/lambda_min_clipped = Infinity is not supported by the engine \(supported: null, -Infinity, "-inf"\)/);
    writeFileSync(join(dir, 'scheduler', 'scheduler_config.json'), DPM_CONFIG.replace('"beta_end": 0.012', '"beta_end": NaN'));
    await expect(readSchedulerConfig(dir)).rejects.toThrow(/beta_end must be a finite number, got NaN/);
  });
});

// review C #9: a broken scheduler_config.json said "… is not valid JSON: … at position 1", where the folder's other
// JSON files (tokenizer, VAE config) say file:line:column
describe("a model folder's scheduler_config.json that does not parse", () => {
  it('names the file, line and column, Python numbers before the error included', async () => {
    const dir = join(tmp, 'broken');
    const file = join(dir, 'scheduler', 'scheduler_config.json');
    mkdirSync(join(dir, 'scheduler'), { recursive: true });
    writeFileSync(file, '{bad\n');
    const e = (await readSchedulerConfig(dir).catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toBe(`${file}:1:2: not valid JSON: invalid symbol`);
    // (-Infinity on line 11 is read; the missing comma after it is where the error is)
    writeFileSync(file, DPM_CONFIG.replace('"lambda_min_clipped": -Infinity,', '"lambda_min_clipped": -Infinity'));
    await expect(readScheduleConfig(dir)).rejects.toThrow(`${file}:12:3: not valid JSON: comma expected`);
    writeFileSync(file, '{"beta_end": 0.012,');
    await expect(readSchedulerConfig(dir)).rejects.toThrow(`${file}:1:20: not valid JSON: property name expected at the end of the file`);
  });
});
