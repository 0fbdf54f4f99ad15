# Sourced by `scripts/setup.sh --ci` and .ci/run, in the checkout's root. CI compiles the engine three times: build/
# (with the test hooks), npm pack's prebuilt in build-prebuilt/, and the consumer check's source build. build/ and
# build-prebuilt/ compile the same sources with the same flags but for the two files with test hooks, so through ccache
# the prebuilt takes build/'s objects (47 of its 52 compiles; npm pack 22 s against 100 s with its tsc, 2 cores).
# ccache gives the compiler's own output. CCACHE_BASEDIR=/ makes the paths in the compile commands relative. (The
# consumer's source build, in another folder, found none: its preprocessed sources name their own absolute paths.)
# The cache is this checkout's: build/ccache.
if command -v ccache >/dev/null 2>&1; then
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_DIR="$PWD/build/ccache" CCACHE_BASEDIR=/
fi
