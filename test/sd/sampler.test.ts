/** Scheduler plans through the addon, the TS Philox port against the engine, and the CLIP tokenizer. */
import { describe, expect, it } from 'vitest';

import { InvalidArgumentError } from '../../ts/errors.js';
import { ClipTokenizer } from '../../ts/sd/clipTokenizer.js';
import { fixtureTokenizer } from '../../ts/sd/fixture.js';
import { nativeSync } from '../../ts/native/call.js';
import { philox4x32, philoxNormal } from '../../ts/sd/philox.js';
import { SD1_SCHEDULE, scheduleFromJson } from '../../ts/sd/schedulerConfig.js';

const LEADING = { ...SD1_SCHEDULE, timestepSpacing: 'leading' as const };
const plan = (scheduler: string, steps: number, strength: number, img2imgRule = 'diffusers') =>
  nativeSync((b) => b.sdPlan({ schedule: LEADING, scheduler, steps, strength, eta: 0, img2imgRule }));

describe('scheduler plans', () => {
  it('matches the SD 1.x alphas_cumprod reference values', () => {
    const ac = nativeSync((b) => b.sdAlphasCumprod(SD1_SCHEDULE));
    const ref: [number, number][] = [[0, 0.99915], [261, 0.655669], [501, 0.274999], [781, 0.043456], [999, 0.0046601]];
    for (const [t, a] of ref) expect(Math.abs(ac[t] - a)).toBeLessThan(1e-6 + 5e-6 * a);
  });

  it('follows diffusers img2img strength: N=50 s=0.8 runs 781…1, noised at 781', () => {
    const p = plan('ddim', 50, 0.8);
    expect(p.runs.length).toBe(40);
    expect(p.runs[0].timestep).toBe(781);
    expect(p.runs.at(-1)?.timestep).toBe(1);
    expect(p.noiseTimestep).toBe(781);
    expect(plan('ddim', 20, 0.75).runs.map((r) => r.timestep)).toEqual([701, 651, 601, 551, 501, 451, 401, 351, 301, 251, 201, 151, 101, 51, 1]);
    expect(plan('ddim', 50, 0.75).runs.length).toBe(37);
  });

  it('CompVis rule noises one DDIM step above: alpha 0.0365465 at 801', () => {
    const p = plan('ddim', 50, 0.8, 'compvis');
    expect(p.noiseTimestep).toBe(801);
    expect(Math.abs(p.noiseAlphaCumprod - 0.0365465)).toBeLessThan(1e-6);
  });

  it('Euler: init_noise_sigma 11.0736 at N=20; DPM-Solver++ leading timesteps 941…48', () => {
    const e = plan('euler', 20, 1);
    expect(Math.abs(Math.hypot(e.runs[0].sigma, 1) - 11.0736)).toBeLessThan(2e-4);
    const d = plan('dpmpp2m', 20, 1);
    expect(d.runs[0].timestep).toBe(941);
    expect(d.runs.at(-1)?.timestep).toBe(48);
  });

  it('reads scheduler_config.json as the keys it names (the class defaults fill the rest)', () => {
    const s = scheduleFromJson({ beta_start: 0.0001, beta_schedule: 'linear', timestep_spacing: 'trailing' });
    expect(s.betaStart).toBe(0.0001);
    expect(s.timestepSpacing).toBe('trailing');
    expect(s.stepsOffset).toBeUndefined();
    // DDIMScheduler's own defaults: steps_offset 0 → trailing 999, …; set_alpha_to_one true
    const p = nativeSync((b) => b.sdPlan({ schedule: s, scheduler: 'ddim', steps: 4, strength: 1, eta: 0, img2imgRule: 'diffusers' }));
    expect(p.timesteps).toEqual([999, 749, 499, 249]);
    expect(() => scheduleFromJson({ timestep_spacing: 'karras' })).toThrow(/timestep_spacing is "karras"/);
  });

  it("trailing spacing takes exactly the steps asked for (review s35-r1: numpy's arange gave 62 points at 61 steps, the last t = -1)", () => {
    const s = { ...SD1_SCHEDULE, timestepSpacing: 'trailing' as const };
    for (const steps of [61, 103, 121, 60, 62]) {
      const ddim = nativeSync((b) => b.sdPlan({ schedule: s, scheduler: 'ddim', steps, strength: 1, eta: 0, img2imgRule: 'diffusers' }));
      expect(ddim.timesteps.length, `ddim ${steps}`).toBe(steps);
      expect(ddim.timesteps[0]).toBe(999);
      expect(Math.min(...ddim.timesteps)).toBeGreaterThanOrEqual(0);
      const euler = nativeSync((b) => b.sdPlan({ schedule: s, scheduler: 'euler', steps, strength: 1, eta: 0, img2imgRule: 'diffusers' }));
      expect(euler.timesteps.length, `euler ${steps}`).toBe(steps);
    }
    // 61: 1000 − 60·(1000/61) = 16.39 → t = 15
    expect(nativeSync((b) => b.sdPlan({ schedule: s, scheduler: 'ddim', steps: 61, strength: 1, eta: 0, img2imgRule: 'diffusers' })).timesteps.at(-1)).toBe(15);
  });
});

describe('Philox noise', () => {
  it('passes the Random123 known-answer vectors', () => {
    expect(philox4x32([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    expect(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])).toEqual([
      0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1,
    ]);
  });

  it('the TS port equals the engine bit for bit, at any offset', () => {
    for (const [seed, index, stream, first, count] of [
      [42, 0, 0, 0, 1000],
      [2 ** 40 + 3, 7, 5, 3, 61],
      [0, 2 ** 33, 0xffffffff, 1001, 10],
    ]) {
      const a = nativeSync((b) => b.philoxNormal(seed, index, stream, first, count));
      const b = philoxNormal(seed, index, stream, first, count);
      expect(Array.from(b)).toEqual(Array.from(a));
    }
  });
});

describe('CLIP tokenizer', () => {
  const { vocab, merges } = fixtureTokenizer();
  const tok = new ClipTokenizer(vocab, merges);
  const bos = vocab['<|startoftext|>'];
  const eos = vocab['<|endoftext|>'];

  it('pads the empty prompt with <|endoftext|> to 77', () => {
    const ids = tok.encode('');
    expect(ids.length).toBe(77);
    expect(ids[0]).toBe(bos);
    expect(Array.from(ids.slice(1)).every((v) => v === eos)).toBe(true);
  });

  it('normalises, splits and merges: "Hello  CAT!" -> hello</w> cat</w> !</w>', () => {
    expect(tok.tokenize('Hello  CAT!')).toEqual(['hello</w>', 'cat</w>', '!</w>']);
    const ids = tok.encode('Hello  CAT!');
    expect(Array.from(ids.slice(0, 5))).toEqual([bos, vocab['hello</w>'], vocab['cat</w>'], vocab['!</w>'], eos]);
    // byte-level fallback for words without merges, digits one by one, contractions apart
    expect(tok.tokenize("xy 42 dog's")).toEqual(['x', 'y</w>', '4</w>', '2</w>', 'dog</w>', "'", 's</w>']);
  });

  it('reads the special tokens typed in a caption as themselves, as transformers does (review s35-r1)', () => {
    expect(tok.tokenize('<|startoftext|>')).toEqual(['<|startoftext|>']);
    expect(tok.tokenize('a cat<|endoftext|>')).toEqual(['a</w>', 'cat</w>', '<|endoftext|>']);
    expect(Array.from(tok.encode('<|startoftext|>').slice(0, 4))).toEqual([bos, bos, eos, eos]);
  });

  it('truncates to 77 keeping <|endoftext|>', () => {
    const ids = tok.encode(Array(100).fill('cat').join(' '));
    expect(ids.length).toBe(77);
    expect(ids[76]).toBe(eos);
    expect(ids[75]).toBe(vocab['cat</w>']);
  });

  it("agrees with the reference implementation's own known-answer case (transformers' CLIPTokenizationTest)", () => {
    // vocabulary and merges of transformers' tests/models/clip/test_tokenization_clip.py: "lower newer"
    // tokenizes to lo w er</w> n e w er</w>, ids 10 2 16 9 3 2 16
    const words = ['l', 'o', 'w', 'e', 'r', 's', 't', 'i', 'd', 'n', 'lo', 'l</w>', 'w</w>', 'r</w>', 't</w>', 'low</w>', 'er</w>',
      'lowest</w>', 'newer</w>', 'wider', '<unk>', '<|startoftext|>', '<|endoftext|>'];
    const v = Object.fromEntries(words.map((w, i) => [w, i]));
    const t = new ClipTokenizer(v, ['l o', 'lo w</w>', 'e r</w>']);
    expect(t.tokenize('lower newer')).toEqual(['lo', 'w', 'er</w>', 'n', 'e', 'w', 'er</w>']);
    expect(Array.from(t.encode('lower newer').slice(0, 9))).toEqual([21, 10, 2, 16, 9, 3, 2, 16, 22]);
  });

  it('refuses a maxLength that is not an integer in 2..16384 (BOS and EOS), naming the option', () => {
    // (NaN, 0 and 1 failed at encode() with 'offset is out of bounds', -1 with 'Invalid typed array length'; 2.5, '3' and 1e9 were taken)
    for (const [bad, shown] of [[NaN, 'NaN'], [0, '0'], [1, '1'], [-1, '-1'], [2.5, '2.5'], ['3', 'string "3"'], [1e9, '1000000000']] as const) {
      expect(() => new ClipTokenizer(vocab, merges, { maxLength: bad as number }), String(bad)).toThrow(
        new InvalidArgumentError(`ClipTokenizer maxLength: expected an integer in 2..16384, got ${shown}`),
      );
    }
    expect(Array.from(new ClipTokenizer(vocab, merges, { maxLength: 2 }).encode('cat'))).toEqual([bos, eos]);
  });

  it('refuses an explicit null as any other wrong value: only a missing option takes its default', () => {
    const nul = null as never;
    expect(() => new ClipTokenizer(vocab, merges, { maxLength: nul })).toThrow(new InvalidArgumentError('ClipTokenizer maxLength: expected an integer in 2..16384, got null'));
    for (const name of ['bosToken', 'eosToken', 'padToken'] as const) {
      // (a null token was read as CLIP's own)
      expect(() => new ClipTokenizer(vocab, merges, { [name]: nul })).toThrow(new InvalidArgumentError(`ClipTokenizer ${name}: expected a token (a non-empty string), got null`));
    }
    expect(() => new ClipTokenizer(vocab, merges, { padToken: 5 as never })).toThrow(new InvalidArgumentError('ClipTokenizer padToken: expected a token (a non-empty string), got 5'));
  });

  it('uses the SD 1.x ids for the special tokens of a real vocabulary layout', () => {
    // CLIP's vocabulary puts <|startoftext|> at 49406 and <|endoftext|> at 49407
    const big: Record<string, number> = { ...vocab, '<|startoftext|>': 49406, '<|endoftext|>': 49407 };
    const t = new ClipTokenizer(big, merges);
    expect(Array.from(t.encode('').slice(0, 3))).toEqual([49406, 49407, 49407]);
  });
});
