// The CPU kernels OpenBLAS runs (its "core": Haswell, SkylakeX, …), and who chose them.
#pragma once

#include <string>

namespace brainlatent::linalg {

struct BlasCore {
  std::string name;    // OpenBLAS's core name; empty for another BLAS or an OpenBLAS built for one CPU
  std::string source;  // "OpenBLAS" (its own detection), "OPENBLAS_CORETYPE" (the user's) or "engine"
  std::string note;    // why the engine chose, or what the user can do; empty when nothing was wrong
};

// Settles the core once (thread-safe) and says what it is. Called before the engine's first BLAS call
// (BlasTurn) and at the addon's load: the correction it may make (blas_core.cpp) must come before any
// BLAS work, since it re-initialises OpenBLAS.
const BlasCore& blas_core();

}  // namespace brainlatent::linalg
