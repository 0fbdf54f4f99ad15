// The symbol versions a Linux binary needs from the system's libraries (`readelf --version-info`'s "Version needs"
// section), checked against what README promises for the prebuilt engine: glibc 2.34 (RHEL/Rocky/Alma 9,
// Amazon Linux 2023, Ubuntu 22.04) and that distribution generation's GCC 11 runtimes. scripts/prepack.mjs fails
// the pack on a version above these; a newer one makes the engine unloadable there ("version `GLIBCXX_3.4.30' not
// found"), which the build machine's own loader never shows.

/** The newest version of each namespace a prebuilt may need; any other namespace is refused too. */
export const VERSION_CEILINGS = {
  GLIBC: '2.34', // glibc 2.34
  GLIBCXX: '3.4.29', // GCC 11's libstdc++ (the prebuilt links libstdc++ statically and needs none)
  CXXABI: '1.3.13', // GCC 11's libstdc++
  GCC: '7.0.0', // libgcc_s.so.1 (GCC_7.0.0 and older are in every GCC >= 7's)
};

/** [{ file, version }] from `readelf --version-info` output: each library named in "Version needs" and its versions. */
export function parseVersionNeeds(readelfText) {
  const start = readelfText.indexOf("Version needs section");
  if (start < 0) return [];
  const needs = [];
  let file;
  for (const line of readelfText.slice(start).split('\n')) {
    if (/^Version (symbols|definition)/.test(line)) break; // another section follows
    const f = /\bFile: (\S+)/.exec(line);
    if (f) file = f[1];
    const n = /\bName: (\S+)/.exec(line);
    if (n && file) needs.push({ file, version: n[1] });
  }
  return needs;
}

function compareDotted(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return 0;
}

/** The needs above the ceilings (or in a namespace they do not list), as `file: VERSION` strings. */
export function tooNewVersions(needs, ceilings = VERSION_CEILINGS) {
  return needs
    .filter(({ version }) => {
      const m = /^([A-Z]+)_(\d+(?:\.\d+)*)$/.exec(version);
      if (!m || !(m[1] in ceilings)) return true;
      return compareDotted(m[2], ceilings[m[1]]) > 0;
    })
    .map(({ file, version }) => `${file}: ${version}`);
}
