/**
 * README says what scripts/setup.sh installs and what .ci/run runs, read from the scripts themselves: it left
 * out chromium, redis-server, make and libopenblas-pthread-dev, and said CI ran "the two consumer-project
 * checks" ("CI runs both") when .ci/run runs four.
 */
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

const readme = readFileSync('README.md', 'utf8').replace(/\s+/g, ' ');
const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six'];

describe('README and the scripts', () => {
  it('names every package scripts/setup.sh installs', () => {
    const list = /^packages=\(([^)]*)\)/m.exec(readFileSync('scripts/setup.sh', 'utf8'));
    expect(list).not.toBeNull();
    const packages = list![1].trim().split(/\s+/);
    expect(packages.length).toBeGreaterThan(8);
    const paragraph = /`scripts\/setup\.sh` installs (.*?) then runs `npm install`/.exec(readme);
    expect(paragraph).not.toBeNull();
    // (Debian's python3-X as X, scikit-learn for sklearn)
    const named = (p: string) => p.replace(/^python3-/, '').replace(/^sklearn$/, 'scikit-learn');
    const missing = packages.filter((p) => !paragraph![1].toLowerCase().includes(named(p).toLowerCase()));
    expect(missing).toEqual([]);
  });

  it("counts .ci/run's consumer checks and names each", () => {
    const ci = readFileSync('.ci/run', 'utf8');
    // (each check installs the tarball packed once: --pack-only and --compare-results are not checks)
    const checks = ci.split('\n').filter((l) => l.startsWith('node scripts/consumer-check.mjs --tarball'));
    expect(checks.length).toBeGreaterThan(1);
    const word = WORDS[checks.length];
    expect(readme).toContain(`followed by \`npm test\` and ${word} consumer-project checks`);
    expect(readme).toContain(`CI (\`.ci/run\`) runs ${word}:`);
    expect(readme).not.toMatch(/CI runs both/);
    expect(ci).toMatch(/^node scripts\/consumer-check\.mjs --compare-results build\/package\/prebuilt\.json build\/package\/source\.json build\/package\/pnpm\.json$/m);
    for (const flag of ['--npm-ci', '--slim', '--build-from-source', '--pnpm']) {
      expect(checks.some((l) => l.includes(flag)), flag).toBe(true);
      expect(readme).toContain(flag);
    }
  });
});

describe('what npm 11 does with install scripts, as README and the hints say it', () => {
  // npm 11.19 runs a dependency's install script that allowScripts does not cover, and warns (reviewer R2): README,
  // install.mjs and the engine's build hint said it ran one only once approved.
  const files = ['README.md', 'scripts/install.mjs', 'scripts/consumer-check.mjs', 'ts/native/binding.ts'];

  it('no file says npm 11 runs or needs a dependency install script only once approved', () => {
    for (const file of files) {
      const text = readFileSync(file, 'utf8').replace(/\s+/g, ' ');
      expect(text, file).not.toMatch(/only once (you )?approv|once approved|skips unapproved/);
    }
  });

  it('README gives BRAINLATENT_BUILD_FROM_SOURCE=1 and --foreground-scripts for the source build, and the onnxruntime-node line skips its download', () => {
    expect(readme).toContain('BRAINLATENT_BUILD_FROM_SOURCE=1 npm rebuild brainlatent --foreground-scripts');
    expect(readme).toContain('Unknown cli config "--build-from-source"');
    expect(readme).not.toMatch(/(?<!ONNXRUNTIME_NODE_INSTALL=skip )npm install onnxruntime-node@1/);
    expect(readFileSync('ts/native/binding.ts', 'utf8')).toContain('BRAINLATENT_BUILD_FROM_SOURCE=1 npm rebuild brainlatent --foreground-scripts');
  });

  it('README says how CommonJS loads the package', () => {
    expect(readme).toContain("`require('brainlatent')` works on Node ≥ 20.19");
    expect(readme).toContain('ERR_REQUIRE_ESM');
  });
});
