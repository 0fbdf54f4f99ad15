# Sourced by `scripts/setup.sh --ci` and .ci/run, in the checkout's root. CI compiles the engine three times: build/
# (with the test hooks), npm pack's prebuilt in build-prebuilt/, and the consumer check's source build, in a project
# under the temporary folder (scripts/consumer-check.mjs). ccache gives the compiler's own output for a compile it has
# seen: the same flags, the same preprocessed source.
# CCACHE_BASEDIR makes the absolute paths under it relative to the build folder, so that a build in another folder of
# the same layout (<package>/build beside <package>/native) hashes alike. It is the folder that holds both the checkout
# and the temporary folder, and never `/`: under `/` the system headers' paths were made relative too, and those
# differ with the build folder's depth (../../../usr/include against ../../../../../usr/include; ccache 4.7 hashes
# them), so the consumer's source build found none of build/'s objects. When the two have no folder in common but
# `/`, the base is the checkout and only npm pack's prebuilt shares build/'s objects.
# The cache is this checkout's: build/ccache.
if command -v ccache >/dev/null 2>&1; then
  bl_checkout=$(pwd -P)
  bl_base=$(cd "${TMPDIR:-/tmp}" 2>/dev/null && pwd -P || echo /)
  while [ "$bl_base" != / ] && [ "${bl_checkout#"$bl_base"/}" = "$bl_checkout" ]; do bl_base=$(dirname "$bl_base"); done
  [ "$bl_base" = / ] && bl_base=$bl_checkout
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_DIR="$bl_checkout/build/ccache" CCACHE_BASEDIR="$bl_base"
  unset bl_checkout bl_base
fi
