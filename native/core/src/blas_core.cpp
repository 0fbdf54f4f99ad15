// Which CPU kernels OpenBLAS runs (blas_core.h), and the one correction the engine makes to its choice.
//
// Every OpenBLAS before 0.3.25 (Debian 12 ships 0.3.21; the prebuilt engine links it) takes an Intel
// family-6 CPU whose extended model is past its table (in 0.3.21: 11 and up — Raptor Lake, Arrow and Lunar
// Lake, Emerald Rapids; older versions' tables end earlier) for a Prescott: a `switch` without a `break`
// falls from family 6 into family 15 (OpenBLAS commit e12aaed, in 0.3.25). Prescott's kernels are SSE3: on
// an AVX-512 Xeon the GEMM runs at a fifth of its rate (63–73 against 316–337 GFLOP/s on two Emerald Rapids
// cores). When the user has not chosen a core (OPENBLAS_CORETYPE) and OpenBLAS says Prescott on a CPU with
// AVX, the engine re-initialises it with the core that OpenBLAS 0.3.25 picks from the CPU's features for a
// model it does not know, or the next one down where an older OpenBLAS does not know that core's name.
//
// The re-initialisation assumes no BLAS call is running: it happens once, before the engine's first
// (BlasTurn) and at the addon's load, with OpenBLAS's thread pool stopped. OpenBLAS keeps nothing from the
// first core besides the `gotoblas` table pointer (buffers are of one compile-time size; GEMM blocking is
// read from the table at every call).
// With the source build, another library of the process sharing libopenblas.so is switched too, and its
// thread pool is the one stopped and started again.
#include "brainlatent/blas_core.h"

#include <dlfcn.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define BRAINLATENT_X86_CPUID 1
#endif

#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace brainlatent::linalg {

namespace {

#ifdef BRAINLATENT_X86_CPUID
// The features OpenBLAS's dynamic.c tests, its way: CPUID bits and the OS's saved register state (XCR0).
struct X86Features {
  bool avx = false, fma = false, avx2 = false, avx512 = false, avx512_bf16 = false;
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
  if (f.family == 0xf) f.family += (a >> 20) & 0xff;  // (the extended family counts from 15 on)
  f.model = ((a >> 12) & 0xf0) | ((a >> 4) & 0xf);
  const bool osxsave = (c >> 27) & 1, avx_bit = (c >> 28) & 1;
  const unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  f.avx = avx_bit && (xcr0 & 0x6) == 0x6;  // the OS saves xmm and ymm
  f.fma = (c >> 12) & 1;                    // (Haswell's kernels and up use FMA3; OpenBLAS does not check it)
  if (!f.avx || max_leaf < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = ((b >> 5) & 1) && f.fma;
  // (as OpenBLAS: AVX-512 VL, and the OS saves the opmask and zmm state)
  f.avx512 = f.avx2 && ((b >> 31) & 1) && (xcr0 & 0xe0) == 0xe0;
  if (f.avx512) {
    __cpuid_count(7, 1, a, b, c, d);
    f.avx512_bf16 = (a >> 5) & 1;
  }
  return f;
}

// OpenBLAS 0.3.25's feature-based choice for an x86-64 CPU it does not list (driver/others/dynamic.c),
// best first, then the cores below it that the CPU also runs: before 0.3.22, OpenBLAS cannot find
// "Cooperlake" by name (its force_coretype stops one entry short) and, before 0.3.19, falls back to
// Prescott for a name it cannot find, so the engine asks again one core down.
std::vector<std::string> cores_for(const X86Features& f) {
  std::vector<std::string> cores;
  if (f.avx512_bf16) cores.push_back("Cooperlake");
  if (f.avx512) cores.push_back("SkylakeX");
  if (f.avx2) cores.push_back("Haswell");
  if (f.avx) cores.push_back("Sandybridge");
  return cores;
}

#ifdef BRAINLATENT_TEST_HOOKS
// Test builds only (CMake option BRAINLATENT_TEST_HOOKS; the package's engine neither has it nor reads these
// variables): with BRAINLATENT_TEST_HOOKS=1, BRAINLATENT_TEST_BLAS_CORES=<name>,<name>,… takes OpenBLAS's core
// for the Prescott it corrects, on any x86-64 CPU, and walks these names instead of the CPU's: a name OpenBLAS
// cannot find first, as an older OpenBLAS cannot find "Cooperlake" (tests/test_blas_core.cpp).
std::vector<std::string> test_cores() {
  std::vector<std::string> cores;
  const char* enabled = std::getenv("BRAINLATENT_TEST_HOOKS");
  const char* list = std::getenv("BRAINLATENT_TEST_BLAS_CORES");
  if (!enabled || std::string(enabled) != "1" || !list) return cores;
  std::istringstream names(list);
  for (std::string name; std::getline(names, name, ',');)
    if (!name.empty()) cores.push_back(name);
  return cores;
}
#endif
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
  if (g_core.name.empty()) return;  // not OpenBLAS
  // (OpenBLAS built for many CPUs: only such a build reads OPENBLAS_CORETYPE and can be re-initialised)
  using VoidFn = void (*)();
  const auto quit = blas_symbol<VoidFn>("gotoblas_dynamic_quit");
  const auto init = blas_symbol<VoidFn>("gotoblas_dynamic_init");
  const bool dynamic = quit && init;
  if (const char* forced = std::getenv("OPENBLAS_CORETYPE"); forced && *forced && dynamic) {
    g_core.source = "OPENBLAS_CORETYPE";
    return;
  }
  g_core.source = "OpenBLAS";
#ifdef BRAINLATENT_X86_CPUID
  const X86Features f = x86_features();
  std::vector<std::string> cores = cores_for(f);
#ifdef BRAINLATENT_TEST_HOOKS
  if (std::vector<std::string> walk = test_cores(); !walk.empty()) {
    g_core.name = "Prescott";
    cores = std::move(walk);
  }
#endif
  if (g_core.name != "Prescott") return;
  if (cores.empty()) return;  // a real SSE3-only CPU: Prescott is right
  const std::string cpu = std::string(f.intel ? "Intel" : "x86-64") + " family " + std::to_string(f.family) +
                          " model " + std::to_string(f.model);
  if (!dynamic) {
    g_core.note = "this OpenBLAS was built for Prescott's SSE3 kernels only, on a " + cpu + " CPU that runs " +
                  cores.front() + "'s: build OpenBLAS with DYNAMIC_ARCH=1 (or for that target) for a faster engine";
    return;
  }
  // OpenBLAS's worker threads, made by its constructor at load, may still be starting, and a starting one
  // reads the core's table, which quit() empties: stop them first, as OpenBLAS's own fork handler does,
  // and start them again after. An OpenBLAS with threads but no way to stop them is left as it is.
  using IntFn = int (*)();
  const auto stop_threads = blas_symbol<IntFn>("blas_thread_shutdown_");
  const auto start_threads = blas_symbol<IntFn>("blas_thread_init");
  const auto parallel = blas_symbol<IntFn>("openblas_get_parallel");  // (0: a serial build, no threads)
  if ((!stop_threads || !start_threads) && !(parallel && parallel() == 0)) {
    g_core.note = std::string("OpenBLAS took this ") + cpu + " CPU for a Prescott (SSE3 kernels), and the engine cannot " +
                  "stop its threads to correct that: OPENBLAS_CORETYPE=" + cores.front() + " gives it the kernels it runs";
    return;
  }
  if (stop_threads) stop_threads();
  // OpenBLAS reads the core from the environment only: set it for the call, then put back what was
  // there (nothing, or an empty value), so that neither the user's environment nor a child's changes.
  // (setenv without Node's environment lock: at the addon's load, on the loading thread; another of the
  // process's threads reading the environment at that moment could see it half-changed)
  const bool had = std::getenv("OPENBLAS_CORETYPE") != nullptr;
  for (const std::string& core : cores) {
    setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
    quit();
    init();
    g_core.name = corename();
    if (g_core.name == core) break;
  }
  if (had) setenv("OPENBLAS_CORETYPE", "", 1);
  else unsetenv("OPENBLAS_CORETYPE");
  // (started here, on the loading thread, not lazily by the next threaded call: that may come from an
  // engine job's thread, whose lowered priority (kit.cpp run_lowered) new threads would inherit for good)
  if (start_threads) start_threads();
  g_core.source = "engine";
  g_core.note = "OpenBLAS took this " + cpu + " CPU for a Prescott (SSE3 kernels), so the engine chose " +
                g_core.name + " by the CPU's features";
  if (g_core.name == "Prescott") g_core.note = "OpenBLAS took this " + cpu + " CPU for a Prescott (SSE3 kernels) and " +
                                               "kept it for every core the CPU runs: OPENBLAS_CORETYPE names one";
#endif
}

}  // namespace

const BlasCore& blas_core() {
  static std::once_flag once;
  std::call_once(once, choose_core);
  return g_core;
}

bool blas_core_test_hooks_compiled() {
#ifdef BRAINLATENT_TEST_HOOKS
  return true;
#else
  return false;
#endif
}

}  // namespace brainlatent::linalg
