/**
 * scripts/elf-needs.mjs: the symbol versions npm pack's prebuilt may need (README: glibc >= 2.34, GCC 11's runtimes).
 * The shipped engine of 0.1.0 needed GLIBCXX_3.4.30 (std::condition_variable::wait, GCC 12's libstdc++) and did
 * not load on RHEL 9 or Amazon Linux 2023; prepack now fails on such a binary.
 */
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { packageRoot } from '../../ts/native/binding.js';
import { commandOutput } from '../helpers/nodeChild.js';

const { parseVersionNeeds, tooNewVersions } = (await import(path.join(packageRoot, 'scripts', 'elf-needs.mjs'))) as {
  parseVersionNeeds(text: string): { file: string; version: string }[];
  tooNewVersions(needs: { file: string; version: string }[]): string[];
};

// `readelf --version-info --wide` of 0.1.0's prebuilt, shortened
const OLD_PREBUILT = `Version symbols section '.gnu.version' contains 3 entries:
 Addr: 0x0000000000003a3c  Offset: 0x00003a3c  Link: 3 (.dynsym)
  000:   0 (*local*)       4 (GLIBCXX_3.4)   13 (GLIBCXX_3.4.30)

Version needs section '.gnu.version_r' contains 3 entries:
 Addr: 0x0000000000004018  Offset: 0x00004018  Link: 4 (.dynstr)
  000000: Version: 1  File: libgcc_s.so.1  Cnt: 2
  0x0010:   Name: GCC_3.0  Flags: none  Version: 36
  0x0020:   Name: GCC_4.0.0  Flags: none  Version: 33
  0x0090: Version: 1  File: libstdc++.so.6  Cnt: 3
  0x00a0:   Name: GLIBCXX_3.4.29  Flags: none  Version: 19
  0x00b0:   Name: GLIBCXX_3.4.30  Flags: none  Version: 13
  0x00c0:   Name: CXXABI_1.3.13  Flags: none  Version: 7
  0x01b0: Version: 1  File: libc.so.6  Cnt: 3
  0x01c0:   Name: GLIBC_2.34  Flags: none  Version: 28
  0x01d0:   Name: GLIBC_2.2.5  Flags: none  Version: 27
  0x01e0:   Name: GLIBC_2.3.4  Flags: none  Version: 23
`;

describe('the prebuilt engine\'s symbol versions (scripts/elf-needs.mjs)', () => {
  it('reads each library and version of the "Version needs" section, and refuses those above glibc 2.34 and GCC 11', () => {
    const needs = parseVersionNeeds(OLD_PREBUILT);
    expect(needs).toHaveLength(8);
    expect(needs[0]).toEqual({ file: 'libgcc_s.so.1', version: 'GCC_3.0' });
    expect(tooNewVersions(needs)).toEqual(['libstdc++.so.6: GLIBCXX_3.4.30']);
  });

  it('compares versions by number, and refuses a namespace it has no ceiling for', () => {
    const need = (file: string, version: string) => ({ file, version });
    expect(tooNewVersions([need('libc.so.6', 'GLIBC_2.34'), need('libc.so.6', 'GLIBC_2.4'), need('libm.so.6', 'GLIBC_2.29')])).toEqual([]);
    expect(tooNewVersions([need('libc.so.6', 'GLIBC_2.36'), need('libc.so.6', 'GLIBC_2.35')])).toEqual(['libc.so.6: GLIBC_2.36', 'libc.so.6: GLIBC_2.35']);
    expect(tooNewVersions([need('libc.so.6', 'GLIBC_PRIVATE'), need('libfoo.so.1', 'FOO_1.0')])).toEqual(['libc.so.6: GLIBC_PRIVATE', 'libfoo.so.1: FOO_1.0']);
    expect(tooNewVersions([need('libgcc_s.so.1', 'GCC_12.0.0'), need('libstdc++.so.6', 'CXXABI_1.3.14')])).toHaveLength(2);
  });

  it("parses readelf's own output for a real binary", async () => {
    let text: string;
    try {
      text = await commandOutput('readelf', ['--version-info', '--wide', process.execPath]);
    } catch {
      return; // no binutils here: prepack needs them, the tests do not
    }
    expect(parseVersionNeeds(text).some((n) => n.file === 'libc.so.6' && n.version.startsWith('GLIBC_2.'))).toBe(true);
  });
});
