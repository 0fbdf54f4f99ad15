// The CPU kernels OpenBLAS runs (its "core": Haswell, SkylakeX, …), and who chose them.
#pragma once

#include <string>

namespace brainlatent::linalg {

struct BlasCore {
  std::string name;    // OpenBLAS's core name (an OpenBLAS built for one CPU: its target); empty for another BLAS
  // "OpenBLAS" (its own detection, or its build's target), "OPENBLAS_CORETYPE" (the user's, which only an
  // OpenBLAS built with DYNAMIC_ARCH reads), "engine" (the correction in blas_core.cpp), or empty for another BLAS
  std::string source;
  std::string note;    // why the engine chose, or what the user can do; empty when nothing was wrong
};

// Settles the core once (thread-safe) and says what it is. Called before the engine's first BLAS call
// (BlasTurn) and at the addon's load: the correction it may make (blas_core.cpp) must come before any
// BLAS work, since it re-initialises OpenBLAS.
const BlasCore& blas_core();

// Whether this engine was compiled with blas_core.cpp's test hook (CMake BRAINLATENT_TEST_HOOKS: test builds only).
bool blas_core_test_hooks_compiled();

}  // namespace brainlatent::linalg
