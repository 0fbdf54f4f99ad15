import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { loadManifest, ManifestError, resolveManifest, type BatchManifest } from '../../ts/batch/manifest.js';
import { FormatError, MissingFileError } from '../../ts/errors.js';

// A manifest's problems are named as the other config errors name theirs ("enc.json: featureSets[0].name"): the
// file, then the field's path in it. A problem of an analysis's config that every subject has is listed once.

const dir = mkdtempSync(join(tmpdir(), 'bl-manifest-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The --help example's shape: four subjects (one with overrides), a reconstruction and an encoding. */
const manifest = (): BatchManifest => ({
  name: 'nsd4',
  out: 'runs/nsd4',
  nsd: { root: '/data/nsd' },
  subjects: [1, 2, 3, { subject: 3, name: 's3b', overrides: { recon: { img2img: { seeds: 0 } } } }],
  analyses: [
    { name: 'recon', kind: 'reconstruct', config: { model: { dir: 'models/sd' } } },
    { name: 'enc', kind: 'encode', config: { model: 'models/sd', featureSets: [{ kind: 'z' }, { kind: 'c' }] } },
  ],
});

async function problems(m: unknown, file: string): Promise<{ source: string; problems: string[] }> {
  const f = join(dir, file);
  writeFileSync(f, JSON.stringify(m));
  try {
    await loadManifest(f);
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return { source: f, problems: (e as ManifestError).problems };
  }
  throw new Error('expected a ManifestError');
}

describe('a manifest’s problems', () => {
  // an override's bad value was named 'analyses[0].config.img2img.seeds … (for s3b)', where the file has no such
  // field: it is at subjects[3].overrides.recon.img2img.seeds
  it('name the file and the field in it, and an analysis problem of every subject once (an override’s where the override is)', async () => {
    const { source, problems: p } = await problems(manifest(), 'nsd4.json');
    expect(p).toEqual([
      `${source}: subjects[3].overrides.recon.img2img.seeds: expected an integer >= 1, got number 0`,
      `${source}: analyses[1].config.featureSets[0].name: required, expected a string of letters, digits, _ . or -, not starting with .`,
      `${source}: analyses[1].config.featureSets[1].name: required, expected a string of letters, digits, _ . or -, not starting with .`,
    ]);
    // a subject listed twice: each entry's override by its index, an unknown key included
    const twice = { ...manifest(), subjects: [2, { subject: 2, name: 'again', overrides: { recon: { img2img: { seedz: 1 } } } }] };
    const t = await problems(twice, 'twice.json');
    expect(t.problems).toContain(
      `${t.source}: subjects[1].overrides.recon.img2img.seedz: unknown key (did you mean "seeds"?); known: size, reencode, strength, steps, guidance, scheduler, karras, eta, seeds, seed, rule, batchSize`,
    );
  });

  // the template's bad steps was named at subjects[1].overrides.recon.img2img.steps, a key not in the file, because the
  // override sets img2img (merged: its seeds only), and the template's line said "(for subj01)" (review s44)
  it("a template's problem below an object an override merges into is the template's, for every subject", async () => {
    const m = { ...manifest(), subjects: [1, { subject: 2, overrides: { recon: { img2img: { seeds: 2 } } } }], analyses: [{ name: 'recon', kind: 'reconstruct', config: { model: { dir: 'models/sd' }, img2img: { steps: '50' } } }] };
    const { source, problems: p } = await problems(m, 'merged.json');
    expect(p).toEqual([`${source}: analyses[0].config.img2img.steps: expected an integer from 1 to 1000, got the string "50"`]);
    // an array the override sets replaces the template's: its items' problems are the override's
    const arr = { ...manifest(), subjects: [1, { subject: 2, overrides: { enc: { featureSets: [{ kind: 'z', name: '' }] } } }] };
    const a = await problems(arr, 'array.json');
    expect(a.problems.filter((l) => l.includes('subjects[1]'))).toEqual([expect.stringMatching(/subjects\[1\]\.overrides\.enc\.featureSets\[0\]\.name: /)]);
  });

  it('schema problems and the manifest’s own checks are named the same way; a manifest given as an object is "manifest"', async () => {
    const m = { ...manifest(), extra: 1, subjects: [1, 1] } as unknown;
    // in one round: an unknown key and a name used twice (the second was reported only once the first was fixed)
    expect((await problems(m, 'schema.json')).problems).toEqual([
      `${join(dir, 'schema.json')}: extra: unknown key; known: name, out, nsd, subjects, analyses, retry`,
      `${join(dir, 'schema.json')}: subjects[1]: subject name 'subj01' is used twice (give each entry its own name)`,
    ]);
    const { source, problems: own } = await problems({ ...manifest(), subjects: [1, 1], analyses: [...manifest().analyses, { ...manifest().analyses[0], config: { out: 'x' } }] }, 'own.json');
    expect(own).toEqual(
      expect.arrayContaining([
        `${source}: analyses[2].name: 'recon' is used twice`,
        `${source}: analyses[2].config.out: set by the batch (<out>/<subject>/recon); remove it`,
        `${source}: subjects[1]: subject name 'subj01' is used twice (give each entry its own name)`,
      ]),
    );
    let thrown: ManifestError | undefined;
    try {
      resolveManifest(manifest());
    } catch (e) {
      thrown = e as ManifestError;
    }
    expect(thrown?.problems.slice(0, 2)).toEqual([
      'manifest.subjects[3].overrides.recon.img2img.seeds: expected an integer >= 1, got number 0',
      'manifest.analyses[1].config.featureSets[0].name: required, expected a string of letters, digits, _ . or -, not starting with .',
    ]);
  });

  it('an unknown key names the closest known one and lists them, as every config error does (it said only "unknown key")', async () => {
    const { subjects, analyses, ...rest } = manifest();
    const typo = { ...rest, subject: subjects, analyses: [{ ...analyses[0], shard: { images: 8 } }, analyses[1]] };
    const { source, problems: p } = await problems(typo, 'typo.json');
    expect(p).toEqual([
      `${source}: subjects: required, expected an array of at least 1 item, each an integer from 1 to 8 or an object`,
      `${source}: subject: unknown key (did you mean "subjects"?); known: name, out, nsd, subjects, analyses, retry`,
      `${source}: analyses[0].shard: unknown key (did you mean "shards"?); known: name, kind, config, shards`,
    ]);
    // inside a subject's object (a branch of "an integer or an object"), a retry and shards
    const deeper = { ...manifest(), subjects: [{ subject: 1, nmae: 's1' }, 9, 'x'], retry: { attempt: 2 }, analyses: [{ ...analyses[0], kind: 'reconstrct', shards: { image: 8 } }] };
    const d = await problems(deeper, 'deeper.json');
    expect(d.problems).toEqual([
      `${d.source}: subjects[0].nmae: unknown key (did you mean "name"?); known: subject, name, root, overrides`,
      `${d.source}: subjects[1]: expected an integer from 1 to 8 or an object, got number 9`,
      `${d.source}: subjects[2]: expected an integer from 1 to 8 or an object, got the string "x"`,
      `${d.source}: analyses[0].kind: expected one of "reconstruct", "encode", got the string "reconstrct" (did you mean "reconstruct"?)`,
      `${d.source}: analyses[0].shards.image: unknown key (did you mean "images"?); known: images, seeds`,
      `${d.source}: retry.attempt: unknown key (did you mean "attempts"?); known: attempts, backoffMs`,
    ]);
    // a name says in words what it takes
    expect((await problems({ ...manifest(), name: '1bad' }, 'name.json')).problems).toEqual([
      `${join(dir, 'name.json')}: name: expected a string of letters, digits, _ or -, starting with a letter (64 at most), got the string "1bad"`,
    ]);
  });

  // (past setTimeout's range the local runner's retry timer fired after 1 ms)
  it("bounds retry.backoffMs at setTimeout's longest delay", async () => {
    const slow = await problems({ ...manifest(), subjects: [1], retry: { backoffMs: 2 ** 31 } }, 'slow.json');
    expect(slow.problems).toContain(`${slow.source}: retry.backoffMs: expected an integer from 0 to 2147483647, got number 2147483648`);
    expect(resolveManifest({ ...manifest(), subjects: [1], analyses: [manifest().analyses[0]], retry: { backoffMs: 2 ** 31 - 1 } }, { baseDir: dir }).retry.backoffMs).toBe(2 ** 31 - 1);
  });
});

// review C #9: 'manifest syn.json is not valid JSON: Expected double-quoted property name in JSON at position 109',
// and 'manifest none.json cannot be read (ENOENT)'; read now as configs are
describe('a manifest file that does not parse or is not there', () => {
  it('is named with the line and column of its syntax error, or as not found', async () => {
    const f = join(dir, 'syntax.json');
    writeFileSync(f, '{ "name": "b1", "subjects": [1],,\n  "analyses": [] }\n');
    const e = (await loadManifest(f).catch((x: unknown) => x)) as Error;
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toBe(`${f}:1:33: not valid JSON: property name expected`);
    const none = (await loadManifest(join(dir, 'none.json')).catch((x: unknown) => x)) as Error;
    expect(none).toBeInstanceOf(MissingFileError);
    expect(none.message).toBe(`${join(dir, 'none.json')}: file not found`);
  });
});
