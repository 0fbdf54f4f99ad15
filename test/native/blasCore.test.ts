/**
 * OpenBLAS's CPU kernels (buildInfo().blasCore). Debian's OpenBLAS 0.3.21 takes Intel CPUs past its table
 * (extended model 11 and up: Raptor Lake, Emerald Rapids, …) for a Prescott and runs SSE3 kernels, a fifth of the AVX-512 GEMM rate; the engine
 * then picks the core OpenBLAS 0.3.25 would, keeps a core the user names in OPENBLAS_CORETYPE, and leaves the
 * environment as it found it. The benches hand the engine's core to numpy and scikit-learn (the same OpenBLAS).
 */
import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

import { expect, it } from 'vitest';

import { sameKernelsEnv } from '../../ts/bench/blasKernels.js';
import { buildInfo } from '../../ts/native/buildInfo.js';
import { distModule } from '../helpers/dist.js';
import { runModule } from '../helpers/nodeChild.js';

const info = buildInfo();
// (an OpenBLAS built for many CPUs: only such a build reads OPENBLAS_CORETYPE and can be re-initialised)
const openblas = /OpenBLAS/.test(info.blas) && /DYNAMIC_ARCH/.test(info.blas) && info.blasCore.name !== '';

/** A child's buildInfo().blasCore and its OPENBLAS_CORETYPE after the engine loaded, under `env`. */
async function childCore(env: NodeJS.ProcessEnv): Promise<{ core: { name: string; source: string; note: string }; env: string | null }> {
  const r = await runModule(
    `const { buildInfo } = await import(${JSON.stringify(pathToFileURL(distModule('native/buildInfo')).href)});
     console.log(JSON.stringify({ core: buildInfo().blasCore, env: process.env.OPENBLAS_CORETYPE ?? null }));`,
    60_000,
    env,
  );
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { core: { name: string; source: string; note: string }; env: string | null };
}

const unset = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  return env;
};

it.skipIf(!openblas)("without OPENBLAS_CORETYPE the core is OpenBLAS's own or the engine's correction of a Prescott, and the environment stays unset", async () => {
  const { core, env } = await childCore(unset());
  expect(env).toBeNull();
  expect(['OpenBLAS', 'engine']).toContain(core.source);
  expect(info.blas.length).toBeGreaterThan(0);
  // (OpenBLAS's own configuration string already starts with its name and version: said once)
  expect(info.blas).toMatch(/^OpenBLAS \d\S* /);
  expect(info.blas).toContain(core.name);
  if (core.source === 'engine') {
    expect(core.note).toMatch(/took this .* CPU for a Prescott .* so the engine chose (Cooperlake|SkylakeX|Haswell|Sandybridge) by the CPU's features/);
    expect(core.note).toContain(core.name);
  } else expect(core.note).toBe('');
  // A CPU with AVX never runs Prescott's SSE3 kernels (the engine's correction; /proc/cpuinfo's flags, Linux's word for it)
  const flags = existsSync('/proc/cpuinfo') ? (/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '') : '';
  if (flags.split(/\s+/).includes('avx')) expect(core.name).not.toBe('Prescott');
  expect(core.name).not.toBe('');
});

it.skipIf(!openblas || process.arch !== 'x64')('a core the user names in OPENBLAS_CORETYPE is kept, even the Prescott the engine would correct', async () => {
  const { core, env } = await childCore({ ...unset(), OPENBLAS_CORETYPE: 'Prescott' });
  expect(core).toEqual({ name: 'Prescott', source: 'OPENBLAS_CORETYPE', note: '' });
  expect(env).toBe('Prescott');
});

it("the benches' comparison processes run the engine's core: OPENBLAS_CORETYPE only where the engine chose it", () => {
  const env = sameKernelsEnv({ PATH: '/usr/bin' });
  if (info.blasCore.source === 'engine') expect(env).toEqual({ PATH: '/usr/bin', OPENBLAS_CORETYPE: info.blasCore.name });
  else expect(env).toEqual({ PATH: '/usr/bin' });
});
