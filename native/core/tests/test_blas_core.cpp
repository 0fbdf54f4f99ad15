// OpenBLAS's core (blas_core.h). Without OPENBLAS_CORETYPE: on a CPU with AVX the core is never the
// Prescott that every OpenBLAS before 0.3.25 falls back to for Intel models past its table (the engine
// corrects it), and the environment is left as it was. With `test_blas_core NAME` (ctest sets
// OPENBLAS_CORETYPE=NAME): the user's core is kept as given. With `test_blas_core --walk NAME` (test hooks:
// BRAINLATENT_TEST_BLAS_CORES=NoSuchCore,NAME,…): the engine walks past a core OpenBLAS cannot find to NAME, and
// stops there. Either way the chosen kernels compute a GEMM
// and a rank-k product at awkward sizes as a float64 reference does. Skips (77) without an OpenBLAS built
// for many CPUs (DYNAMIC_ARCH: only such a build reads OPENBLAS_CORETYPE and can be re-initialised).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "brainlatent/blas_core.h"
#include "brainlatent/linalg.h"
#include "test_util.h"

using namespace brainlatent;

namespace {

bool cpu_has_avx() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx");
#else
  return false;
#endif
}
bool cpu_has_avx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// op(A)·B (m×k times k×n, row-major) against a float64 loop, and AAᵀ (gram's transpose form).
void check_products(std::int64_t m, std::int64_t n, std::int64_t k) {
  test::Rng rng(static_cast<unsigned long long>(m * 131 + n * 7 + k));
  std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n)), c(static_cast<std::size_t>(m * n), 0.f),
      g(static_cast<std::size_t>(m * m), 0.f);
  for (auto& v : a) v = static_cast<float>(rng.normal());
  for (auto& v : b) v = static_cast<float>(rng.normal());
  linalg::gemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
  linalg::outer_gram(m, k, a.data(), k, 1.0f, 0.0f, g.data(), m);
  double worst = 0, worst_g = 0;
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double ref = 0;
      for (std::int64_t l = 0; l < k; ++l) ref += static_cast<double>(a[i * k + l]) * b[l * n + j];
      worst = std::max(worst, std::fabs(ref - c[i * n + j]));
    }
    for (std::int64_t j = 0; j < m; ++j) {
      double ref = 0;
      for (std::int64_t l = 0; l < k; ++l) ref += static_cast<double>(a[i * k + l]) * a[j * k + l];
      worst_g = std::max(worst_g, std::fabs(ref - g[i * m + j]));
    }
  }
  // (sums of k products of unit normals, each of size ~√k: float32 rounding leaves ~1e-7·k; a wrong kernel is off by O(1))
  const double tol = 1e-5 * static_cast<double>(k);
  CHECK_NEAR(worst, 0.0, tol);
  CHECK_NEAR(worst_g, 0.0, tol);
}

}  // namespace

int main(int argc, char** argv) {
  const linalg::BlasCore& core = linalg::blas_core();
  const std::string vendor = linalg::blas_vendor();
  if (vendor.rfind("OpenBLAS", 0) != 0 || vendor.find("DYNAMIC_ARCH") == std::string::npos || core.name.empty()) {
    std::printf("skipped: the BLAS is %s, not an OpenBLAS built for many CPUs (DYNAMIC_ARCH)\n", vendor.c_str());
    return 77;
  }
  std::printf("core %s (%s)%s%s\n", core.name.c_str(), core.source.c_str(), core.note.empty() ? "" : ": ", core.note.c_str());
  const bool walk = argc > 2 && std::string(argv[1]) == "--walk";
  const char* given = argc > 1 && !walk ? argv[1] : nullptr;
  if (walk) {
    // (ctest: BRAINLATENT_TEST_HOOKS=1, BRAINLATENT_TEST_BLAS_CORES=NoSuchCore,<argv[2]>,<a core after it>: the
    // walk passes the first and stops at the second)
    const char* list = std::getenv("BRAINLATENT_TEST_BLAS_CORES");
    if (!linalg::blas_core_test_hooks_compiled()) {
      std::printf("skipped: the engine was built without its test hooks (BRAINLATENT_TEST_HOOKS)\n");
      return 77;
    }
    if (std::getenv("OPENBLAS_CORETYPE")) {
      std::printf("skipped: OPENBLAS_CORETYPE is set in this environment, and a core the user names is kept\n");
      return 77;
    }
    if (!cpu_has_avx2()) {
      std::printf("skipped: the walk ends at Haswell, whose kernels this CPU cannot run (no AVX2)\n");
      return 77;
    }
    test::run("the walk down the cores: past a name OpenBLAS cannot find, to the next core it runs; the environment is unchanged", [&] {
      CHECK(list != nullptr && std::string(list).rfind("NoSuchCore,", 0) == 0);
      CHECK(core.name == argv[2]);
      CHECK(core.source == "engine");
      CHECK(core.note.find("Prescott") != std::string::npos && core.note.find(argv[2]) != std::string::npos);
      CHECK(linalg::blas_vendor().find(argv[2]) != std::string::npos);  // (OpenBLAS's own config says so too)
      CHECK(std::getenv("OPENBLAS_CORETYPE") == nullptr);
    });
  } else if (given) {
    test::run("a core the user names in OPENBLAS_CORETYPE is kept, even the Prescott the engine corrects", [&] {
      const char* env = std::getenv("OPENBLAS_CORETYPE");
      CHECK(env != nullptr && std::string(env) == given);
      CHECK(core.name == given);
      CHECK(core.source == "OPENBLAS_CORETYPE");
      CHECK(core.note.empty());
    });
  } else {
    if (std::getenv("OPENBLAS_CORETYPE")) {
      std::printf("skipped: OPENBLAS_CORETYPE is set in this environment, so OpenBLAS's own choice cannot be seen\n");
      return 77;
    }
    test::run("without OPENBLAS_CORETYPE, a CPU with AVX never runs Prescott's SSE3 kernels; the environment is unchanged", [&] {
      CHECK(core.source == "OpenBLAS" || core.source == "engine");
      if (cpu_has_avx()) CHECK(core.name != "Prescott");
      if (core.source == "engine") {
        CHECK(core.note.find("Prescott") != std::string::npos);
        CHECK(core.note.find(core.name) != std::string::npos);
        CHECK(linalg::blas_vendor().find(core.name) != std::string::npos);  // (OpenBLAS's own config says so too)
      }
      CHECK(std::getenv("OPENBLAS_CORETYPE") == nullptr);
    });
  }
  test::run("the chosen kernels: GEMM and AAᵀ at awkward sizes equal a float64 reference, on two BLAS threads", [] {
    linalg::set_blas_threads(2);  // (the pool the correction stopped and started again, on a one-CPU runner too)
    CHECK(linalg::blas_threads() == 2);
    check_products(1, 1, 1);
    check_products(67, 131, 29);
    check_products(257, 97, 513);
    check_products(130, 513, 1031);
  });
  return test::finish();
}
