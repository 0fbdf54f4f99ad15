/**
 * A source-built engine whose shared OpenBLAS is gone failed to load with "libopenblas.so.0: cannot open shared object
 * file", followed by advice to rebuild from source; the fix is installing the runtime library, which the advice now
 * names (ts/native/loadAdvice.ts). The real loader's message comes from a small shared object linked against a
 * library that is then deleted.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { binding } from '../../ts/native/binding.js';
import { loadFailureAdvice, missingSharedLibrary } from '../../ts/native/loadAdvice.js';
import { commandOutput } from '../helpers/nodeChild.js';

const BUILD = 'BUILD FROM SOURCE';
const dir = mkdtempSync(path.join(tmpdir(), 'bl-load-advice-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An addon-shaped file that needs `libbl_gone.so.1`, which no longer exists; undefined without a C compiler. */
async function addonNeedingAGoneLibrary(): Promise<string | undefined> {
  try {
    writeFileSync(path.join(dir, 'gone.c'), 'int bl_gone(void) { return 1; }\n');
    writeFileSync(path.join(dir, 'addon.c'), 'int bl_gone(void);\nint bl_use(void) { return bl_gone(); }\n');
    await commandOutput('cc', ['-shared', '-fPIC', '-o', 'libbl_gone.so.1', '-Wl,-soname,libbl_gone.so.1', 'gone.c'], { cwd: dir });
    await commandOutput('cc', ['-shared', '-fPIC', '-o', 'fake.node', 'addon.c', '-L.', '-l:libbl_gone.so.1', '-Wl,--no-as-needed'], { cwd: dir });
  } catch {
    return undefined;
  }
  rmSync(path.join(dir, 'libbl_gone.so.1'));
  return path.join(dir, 'fake.node');
}

describe('advice after the engine fails to load', () => {
  it('names a missing shared library and how to install it, instead of a rebuild', () => {
    const msg = '/x/node_modules/brainlatent/build/Release/brainlatent.node: libopenblas.so.0: cannot open shared object file: No such file or directory';
    expect(missingSharedLibrary(msg)).toBe('libopenblas.so.0');
    const advice = loadFailureAdvice(msg, BUILD);
    expect(advice).toContain('linked against libopenblas.so.0, which is not installed here');
    expect(advice).toContain('Debian/Ubuntu: sudo apt-get install libopenblas0;');
    expect(advice).toContain("RHEL/Fedora: sudo dnf install 'libopenblas.so.0()(64bit)'");
    expect(loadFailureAdvice('libfoo.so.7: cannot open shared object file: No such file or directory', BUILD)).toContain('`apt-file search libfoo.so.7`');
  });

  it('keeps the source build for any other failure (a damaged file, a too-new C++ runtime, the file itself missing)', () => {
    for (const msg of [
      '/x/brainlatent.napi.glibc.node: invalid ELF header',
      "/lib64/libstdc++.so.6: version `GLIBCXX_3.4.30' not found (required by /x/brainlatent.napi.glibc.node)",
      '/x/build/Release/brainlatent.node: cannot open shared object file: No such file or directory',
    ]) {
      expect(missingSharedLibrary(msg)).toBeUndefined();
      expect(loadFailureAdvice(msg, BUILD)).toBe(BUILD);
    }
  });

  it("says so for the real loader's message (BRAINLATENT_ADDON at a file that needs a deleted library)", async (ctx) => {
    const file = await addonNeedingAGoneLibrary();
    if (!file) return ctx.skip(); // no C compiler here
    const was = process.env.BRAINLATENT_ADDON;
    process.env.BRAINLATENT_ADDON = file;
    try {
      expect(() => binding()).toThrow(/libbl_gone\.so\.1: cannot open shared object file.*linked against libbl_gone\.so\.1, which is not installed here/s);
    } finally {
      if (was === undefined) delete process.env.BRAINLATENT_ADDON;
      else process.env.BRAINLATENT_ADDON = was;
    }
  });
});
