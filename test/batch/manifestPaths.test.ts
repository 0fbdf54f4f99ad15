import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { loadManifest } from '../../ts/batch/manifest.js';

// Every path field of a manifest's analysis configs is taken from the manifest's folder, as its out, NSD root and
// model folders were: captions, cache, networks, feature files, their ids, ncsnr and masks were left relative to the
// process's working folder (so a service checked them in its root and read them from its working folder).
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'bl-manifest-paths-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a manifest's relative paths", () => {
  it("are all the manifest folder's", async () => {
    const f = join(dir, 'm.json');
    writeFileSync(f, JSON.stringify({
      name: 'paths',
      out: 'runs',
      nsd: { root: 'nsd' },
      subjects: [1],
      analyses: [
        {
          name: 'recon',
          kind: 'reconstruct',
          config: {
            model: { dir: 'models/sd' },
            nsd: { captions: 'caps/{subj}.json', cacheDir: 'cache' },
            decoders: { z: { roi: 'masks/early.nii.gz' } },
            evaluation: { networks: [{ name: 'Net', path: 'nets/net.onnx', inputSize: 64, metric: 'identification' }] },
          },
        },
        {
          name: 'enc',
          kind: 'encode',
          config: {
            model: 'models/sd',
            nsd: { captions: 'caps.csv' },
            featureSets: [{ name: 'f', kind: 'file', path: 'feats/f.npy', ids: 'feats/ids.npy' }, { name: 'z', kind: 'z' }],
            noiseCeiling: 'nc/ncsnr.nii.gz',
          },
        },
      ],
    }));
    const b = await loadManifest(f);
    const [recon, enc] = b.subjects[0].analyses.map((a) => a.config as any);
    expect(recon.model.dir).toBe(join(dir, 'models/sd'));
    expect(recon.nsd.captions).toBe(join(dir, 'caps/subj01.json'));
    expect(recon.nsd.cacheDir).toBe(join(dir, 'cache'));
    expect(recon.decoders.z.roi).toBe(join(dir, 'masks/early.nii.gz'));
    expect(recon.evaluation.networks[0].path).toBe(join(dir, 'nets/net.onnx'));
    expect(enc.model).toBe(join(dir, 'models/sd'));
    expect(enc.nsd.captions).toBe(join(dir, 'caps.csv'));
    expect(enc.featureSets[0]).toMatchObject({ path: join(dir, 'feats/f.npy'), ids: join(dir, 'feats/ids.npy') });
    expect(enc.noiseCeiling).toBe(join(dir, 'nc/ncsnr.nii.gz'));
    // what the batch fills in is as before
    expect(recon.nsd.root).toBe(join(dir, 'nsd'));
    expect(enc.nsd.cacheDir).toBe(join(dir, 'runs/subj01/cache'));
  });
});
