// Which CPU kernels OpenBLAS runs (blas_core.h), and the one correction the engine makes to its choice.
//
// OpenBLAS 0.3.21–0.3.24 (Debian 12 ships 0.3.21; the prebuilt engine links it) takes every Intel family-6
// CPU whose model it does not list (Emerald Rapids, Raptor and Meteor Lake, Granite Rapids, …) for a
// Prescott: a `switch` without a `break` falls from family 6 into family 15 (OpenBLAS commit e12aaed,
// fixed in 0.3.25). Prescott's kernels are SSE3: on an AVX-512 Xeon the GEMM runs at a fifth of its rate
// (65 against 330 GFLOP/s on two Emerald Rapids cores). When the user has not chosen a core
// (OPENBLAS_CORETYPE) and OpenBLAS says Prescott on a CPU with AVX, the engine re-initialises it with the
// core that OpenBLAS 0.3.25 picks from the CPU's features for a model it does not know.
#include "brainlatent/blas_core.h"

#include <dlfcn.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define BRAINLATENT_X86_CPUID 1
#endif

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace brainlatent::linalg {

namespace {

#ifdef BRAINLATENT_X86_CPUID
// The features OpenBLAS's dynamic.c tests, its way: CPUID bits and the OS's saved register state (XCR0).
struct X86Features {
  bool avx = false, avx2 = false, avx512 = false, avx512_bf16 = false;
  unsigned family = 0, model = 0;
  bool intel = false;
};

unsigned long long xgetbv0() {
  unsigned eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

X86Features x86_features() {
  X86Features f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  f.intel = b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;  // "GenuineIntel"
  __get_cpuid(1, &a, &b, &c, &d);
  f.family = (a >> 8) & 0xf;
  f.model = ((a >> 12) & 0xf0) | ((a >> 4) & 0xf);
  const bool osxsave = (c >> 27) & 1, avx_bit = (c >> 28) & 1;
  const unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  f.avx = avx_bit && (xcr0 & 0x6) == 0x6;  // the OS saves xmm and ymm
  if (!f.avx || max_leaf < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = (b >> 5) & 1;
  // (as OpenBLAS: AVX-512 VL, and the OS saves the opmask and zmm state)
  f.avx512 = f.avx2 && ((b >> 31) & 1) && (xcr0 & 0xe0) == 0xe0;
  if (f.avx512) {
    __cpuid_count(7, 1, a, b, c, d);
    f.avx512_bf16 = (a >> 5) & 1;
  }
  return f;
}

// OpenBLAS 0.3.25's feature-based choice for an x86-64 CPU it does not list (driver/others/dynamic.c).
const char* core_for(const X86Features& f) {
  if (f.avx512_bf16) return "Cooperlake";
  if (f.avx512) return "SkylakeX";
  if (f.avx2) return "Haswell";
  if (f.avx) return "Sandybridge";
  return nullptr;
}
#endif

template <class Fn>
Fn blas_symbol(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

std::string corename() {
  using NameFn = char* (*)();
  const auto fn = blas_symbol<NameFn>("openblas_get_corename");
  const char* name = fn ? fn() : nullptr;
  return name ? std::string(name) : std::string();
}

BlasCore g_core;

void choose_core() {
  g_core.name = corename();
  if (g_core.name.empty()) return;  // not OpenBLAS, or one built for a single CPU
  if (const char* forced = std::getenv("OPENBLAS_CORETYPE"); forced && *forced) {
    g_core.source = "OPENBLAS_CORETYPE";
    return;
  }
  g_core.source = "OpenBLAS";
#ifdef BRAINLATENT_X86_CPUID
  if (g_core.name != "Prescott") return;
  const X86Features f = x86_features();
  const char* better = core_for(f);
  if (!better) return;  // a real SSE3-only CPU: Prescott is right
  using VoidFn = void (*)();
  const auto quit = blas_symbol<VoidFn>("gotoblas_dynamic_quit");
  const auto init = blas_symbol<VoidFn>("gotoblas_dynamic_init");
  const std::string cpu = std::string(f.intel ? "Intel" : "x86-64") + " family " + std::to_string(f.family) +
                          " model " + std::to_string(f.model);
  if (!quit || !init) {
    g_core.note = "OpenBLAS took this " + cpu + " CPU for a Prescott and cannot be re-initialised here; " +
                  "OPENBLAS_CORETYPE=" + better + " gives it the kernels its features allow";
    return;
  }
  // OpenBLAS reads the core from the environment only: set it for the call, then take it away again,
  // so that neither the user's environment nor a child process's changes.
  setenv("OPENBLAS_CORETYPE", better, 1);
  quit();
  init();
  unsetenv("OPENBLAS_CORETYPE");
  g_core.name = corename();
  g_core.source = "engine";
  g_core.note = "OpenBLAS took this " + cpu + " CPU for a Prescott (SSE3 kernels; fixed in " +
                "OpenBLAS 0.3.25), so the engine chose " + g_core.name + " by the CPU's features";
#endif
}

}  // namespace

const BlasCore& blas_core() {
  static std::once_flag once;
  std::call_once(once, choose_core);
  return g_core;
}

}  // namespace brainlatent::linalg
