/**
 * What to tell a user whose engine failed to load, read from the loader's message. A shared library the engine was
 * linked against and the system lacks (a source build's OpenBLAS after the runtime package went away) is installed,
 * not rebuilt around: the advice names it and its package. Anything else (a damaged file, a prebuilt engine this
 * system is too old for) calls for a source build.
 */

/** Debian/Ubuntu packages of the runtime libraries a source build links (CMake's BLAS/LAPACK and what they need). */
const DEBIAN_PACKAGES: Record<string, string> = {
  'libopenblas.so.0': 'libopenblas0',
  'libblas.so.3': 'libblas3',
  'liblapack.so.3': 'liblapack3',
  'libgfortran.so.5': 'libgfortran5',
  'libquadmath.so.0': 'libquadmath0',
};

/** The library in "libopenblas.so.0: cannot open shared object file: …", or undefined for another failure. */
export function missingSharedLibrary(message: string): string | undefined {
  return /(?:^|[\s:/])([^\s:/]+\.so(?:\.\d+)*): cannot open shared object file/.exec(message)?.[1];
}

/** The advice that follows a load failure's message; `howToBuild` is the source build's. */
export function loadFailureAdvice(message: string, howToBuild: string): string {
  const lib = missingSharedLibrary(message);
  if (!lib) return howToBuild;
  const debian = DEBIAN_PACKAGES[lib] ? `sudo apt-get install ${DEBIAN_PACKAGES[lib]}` : `the package \`apt-file search ${lib}\` names`;
  return (
    `The engine was linked against ${lib}, which is not installed here (or not on the loader's path): install it ` +
    `(Debian/Ubuntu: ${debian}; RHEL/Fedora: sudo dnf install '${lib}()(64bit)'). ` +
    `Rebuilding is needed only to link another library instead: ${howToBuild}`
  );
}
