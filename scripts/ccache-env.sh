# Sourced by `scripts/setup.sh --ci` and .ci/run, in the checkout's root. CI compiles the engine three times: build/
# (with the test hooks), npm pack's prebuilt in build-prebuilt/, and the consumer check's source build. All but the
# two files with test hooks are the same sources with the same flags, so through ccache the second and third take
# the first's objects (the prebuilt's build 11 s against ~65 s on 2 cores). ccache gives the compiler's own output;
# CCACHE_BASEDIR=/ makes the paths in the compile commands relative, so a consumer's node_modules/brainlatent/build
# finds what the checkout's build-prebuilt/ compiled. The cache is this checkout's: build/ccache.
if command -v ccache >/dev/null 2>&1; then
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_DIR="$PWD/build/ccache" CCACHE_BASEDIR=/
fi
