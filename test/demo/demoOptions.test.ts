/**
 * The demo's options are checked before anything is built or written (errors name the CLI flag and the range),
 * a killed build's temporaries are removed when the demo starts again, and a cancel (Ctrl-C in the CLI) stops it cleanly.
 * Small worlds (3 sessions of 30 trials, 16 px) keep each build to a second or two.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { demoOptionProblems } from '../../ts/demo/options.js';
import { runDemo, type DemoOptions } from '../../ts/demo/runDemo.js';
import { buildDemoWorld } from '../../ts/demo/world.js';
import { isAtomicTemporary, withAtomicFile } from '../../ts/io/atomicWrite.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';

const root = mkdtempSync(join(tmpdir(), 'bl-demo-options-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${n++}`);
const small = { sessions: 3, trialsPerSession: 30, imageSize: 16, testImages: 4, seeds: 1, steps: 3 };

/** Every temporary or moved-aside name under `dir`. */
function temporaries(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (isAtomicTemporary(e.name)) out.push(p);
    else if (e.isDirectory()) out.push(...temporaries(p));
  }
  return out;
}

/** A pid that belongs to no running process: a child that has exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

async function hostTag(dir: string): Promise<string> {
  let tag = '';
  await withAtomicFile(join(dir, 'probe'), async (_fh, tmp) => {
    tag = /\.tmp-([0-9a-f]{6})-/.exec(tmp)![1];
  });
  rmSync(join(dir, 'probe'));
  return tag;
}

describe('demo options are checked before anything is written', () => {
  const refused = async (options: Partial<DemoOptions>, ...patterns: RegExp[]) => {
    const out = fresh();
    const err = await runDemo({ out, ...options }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).not.toBeNull();
    for (const p of patterns) expect(err!.message).toMatch(p);
    expect(existsSync(out), 'nothing written').toBe(false);
    return err!;
  };

  it('names the CLI flag and the allowed range', async () => {
    const err = await refused({ testImages: 1 }, /^demo: --test-images \(testImages\): expected an integer from 2 to 390 \(two-way identification needs 2; the subject sees 400 images, of which 10 must remain to train the decoders\), got 1$/);
    expect(err.name).toBe('InvalidArgumentError');
    await refused({ testImages: 10000 }, /--test-images \(testImages\): expected an integer from 2 to 390 .*got 10000/);
    await refused({ imageSize: 33 }, /--image-size \(imageSize\): expected a multiple of 8 from 16 to 256 \(latents are 1\/8 of it\), got 33/);
    await refused({ imageSize: 8 }, /--image-size \(imageSize\): expected a multiple of 8 from 16 to 256/);
    await refused({ seeds: 0 }, /--seeds \(seeds\): expected an integer from 1 to 1000, got 0/);
    await refused({ steps: 5000 }, /--steps \(steps\): expected an integer from 2 to 1000 \(img2img denoises the last ⌊steps·strength⌋ of them, at strength 0\.8 none below 2\), got 5000/);
    // one step at the demo's strength 0.8 denoises none: refused here, not by the run's preflight after the world (review s43)
    await refused({ steps: 1 }, /--steps \(steps\): expected an integer from 2 to 1000 .*got 1$/);
    expect(demoOptionProblems({ out: 'o', steps: 1 }, 1)).toEqual([]);
    expect(demoOptionProblems({ out: 'o', steps: 3 }, 0.3)[0]).toMatch(/from 4 to 1000 \(img2img denoises the last ⌊steps·strength⌋ of them, at strength 0\.3 none below 4\), got 3$/);
    await refused({ seed: -1 }, /--seed \(seed\): expected an integer from 0 to 2147483647, got -1/);
    await refused({ prior: 'x' as 'world' }, /--prior \(prior\): expected 'world' or 'training', got 'x'/);
    // the range follows the world's size
    await refused({ sessions: 3, trialsPerSession: 30, testImages: 25 }, /--test-images \(testImages\): expected an integer from 2 to 20 .*the subject sees 30 images/);
  });

  it('lists every problem at once, options of the library and overrides of the run config included', async () => {
    const err = await refused({ testImages: 1, imageSize: 33, noiseSd: -1, subjects: [9] }, /^demo: 4 invalid options:/);
    expect(err.message.split('\n  - ')).toHaveLength(5);
    expect(err.message).toMatch(/noiseSd: expected a finite number >= 0, got -1/);
    expect(err.message).toMatch(/subjects: expected a non-empty list of subjects from 1 to 8, got \[9\]/);
    await refused({ config: { img2img: { strength: 2 } } }, /demo config\.img2img\.strength: expected a number in \(0, 1\], got number 2/);
    await refused({ sessions: 40, trialsPerSession: 750 }, /--image-size \(imageSize\): \d+ stimuli of 128×128 make a [\d.]+ GiB stimulus file, over the 1 GiB limit/);
    expect(demoOptionProblems({ out: 'x', ...small })).toEqual([]);
  });

  it('buildDemoWorld checks them too', async () => {
    const out = fresh();
    await expect(buildDemoWorld({ out, imageSize: 33 })).rejects.toThrow(/--image-size \(imageSize\): expected a multiple of 8/);
    expect(existsSync(out)).toBe(false);
  });

  it('the CLI exits 1 with the message and writes nothing', async () => {
    const out = fresh();
    const r = await runCommand(process.execPath, [distModule('cli/main'), 'demo', '--out', out, '--test-images', '1']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/brainlatent: InvalidArgumentError: demo: --test-images \(testImages\): expected an integer from 2 to 390/);
    expect(existsSync(out)).toBe(false);
  });
});

describe("a killed demo's temporaries", () => {
  it('are removed when the demo starts again, whether the world is reused or rebuilt; a live writer\'s are kept', async () => {
    const out = fresh();
    const world = join(out, 'world');
    await buildDemoWorld({ out: world, ...small });
    const tag = await hostTag(world);
    // what a demo killed in the middle of synthNsd leaves: the dataset under its temporary name, with a half-written session file
    const deadNsd = join(world, `.nsd.tmp-${tag}-${deadPid()}-0123abcd`);
    mkdirSync(join(deadNsd, 'betas'), { recursive: true });
    writeFileSync(join(deadNsd, 'betas', `.betas_session01.hdf5.tmp-${tag}-${deadPid()}-00000000`), 'partial');
    const deadFile = join(world, 'model', 'unet', `.model.onnx.tmp-${tag}-${deadPid()}-11111111`);
    writeFileSync(deadFile, 'partial');
    const live = join(world, `.features.onnx.tmp-${tag}-${process.pid}-22222222`);
    writeFileSync(live, 'being written');
    const reused = await buildDemoWorld({ out: world, ...small });
    expect(reused.reused).toBe(true);
    expect(temporaries(world)).toEqual([live]);
    writeFileSync(deadFile, 'partial');
    const rebuilt = await buildDemoWorld({ out: world, ...small }, { force: true });
    expect(rebuilt.reused).toBe(false);
    expect(temporaries(world)).toEqual([live]);
  });
});

describe('stopping the demo', () => {
  it('a cancel stops the world build cleanly: a CancelledError, no temporary left, nothing of the world kept', async () => {
    const out = fresh();
    const ac = new AbortController();
    const err = await runDemo({ out, ...small }, { signal: ac.signal, onWorldProgress: () => ac.abort() }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe('CancelledError');
    expect(err!.message).toMatch(/^demo: cancelled/);
    expect(temporaries(out)).toEqual([]);
    expect(existsSync(join(out, 'world', 'world.json'))).toBe(false);
    expect(existsSync(join(out, 'run'))).toBe(false);
  });

  it('a cancel stops the run cleanly too, and the next demo reuses the world and redoes the run', async () => {
    const out = fresh();
    const ac = new AbortController();
    const err = await runDemo({ out, ...small }, { signal: ac.signal, onProgress: () => ac.abort() }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe('CancelledError');
    expect(temporaries(out)).toEqual([]);
    const again = await runDemo({ out, ...small });
    expect(again.world.reused).toBe(true);
    expect(again.run.testImages).toBe(4);
  });

  it('brainlatent demo: Ctrl-C (SIGINT) during the world build exits 1 with the cancel, leaving no temporary', async () => {
    const out = fresh();
    const child = spawn(process.execPath, [distModule('cli/main'), 'demo', '--out', out, '--test-images', '4', '--seeds', '1', '--steps', '3'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // the first progress line of the world build: the process is inside it
      if (/world: /.test(stderr) && child.exitCode === null && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/CancelledError: demo: cancelled \(the world build stopped; the next demo rebuilds it\)/);
    expect(temporaries(out)).toEqual([]);
    expect(existsSync(join(out, 'world', 'world.json'))).toBe(false);
  });
});
