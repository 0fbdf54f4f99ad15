// bench_ridge: the ridge engine on NSD-sized synthetic problems, in plain C++ (no Node), for a
// machine that has only a compiler, CMake and a BLAS — the GPU machine. It generates X (n×p) and
// Y (n×t) in parallel, fits ridge_cv_fit on the chosen backend, and prints one JSON line per fit
// (timings, GEMM flops and rate, the chosen alphas' histogram, memory). Optionally it measures the
// backend's own float32 GEMM rate through the Backend interface (--sgemm), so that a fit's rate
// can be given as a fraction of what the device's GEMM reaches, and checks the fit against the
// CPU backend on the first K targets (--verify K).
//
// Synthetic data (ridge's Bayes-optimal alpha is σ²/τ² for weights drawn with variance τ²):
//   X = E + L·F + μ      E iid ~N(0,1); L (n×32) latents, F (32×p) loadings of decaying scale: a
//                        few large eigenvalues over a Marchenko–Pastur bulk, as in cortex
//   Y = X·B·C + ε + ν    B (p×64) ~N(0,1), column j of C ~N(0, τ_j²/64): each weight has variance
//                        τ_j², so target j's best alpha is about α_j = 1/τ_j²; log10 α_j is drawn
//                        uniform in [1, 6.5] and 8% of the targets are pure noise (τ = 0)
// The normals are a cheap counter-based approximation (the sum of four uniforms, scaled), so that
// 6 GB are drawn in about a second on 16 cores; the low-rank products go through BLAS.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "brainlatent/backend.h"
#include "brainlatent/error.h"
#include "brainlatent/host_memory.h"
#include "brainlatent/linalg.h"
#include "brainlatent/ridge.h"
#include "bench_util.h"

using namespace brainlatent;
using namespace brainlatent::bench;
using i64 = std::int64_t;

namespace {

// ---------------------------------------------------------------- arguments

const char* kUsage = R"(bench_ridge: RidgeCV on synthetic NSD-sized data, one JSON line per fit on stdout.

Usage: bench_ridge [options]
  --backend cpu|cuda|cuda:N|auto  backend of the fit (default auto: cuda when usable, else cpu)
  --shape z|c|N,P,T        n samples, p features, t targets (default z)
                             z = 24980,6000,6400   early cortex -> SD latent z
                             c = 24980,8000,59136  ventral cortex -> CLIP c
  --folds K                contiguous folds (default 5); alphas are fixed: 9 log-spaced 1e-2..1e6
  --repeat R               fits to run, each reported (default 1; the first includes warm-up;
                           0: only the data and the sgemm records)
  --memory-gib G           RidgeOptions.memory_budget in GiB (default 0: the engine's default)
  --solver NAME            force a route (per-fold-primal, per-fold-kernel, exact-primal, exact-kernel)
  --target-batch B         force the target batch size (default: derived from the budget)
  --eig-precision auto|float32|float64
  --seed S                 data seed (default 1)
  --threads N              BLAS and data-generation threads (default 0: all cores)
  --sgemm N                first measure the backend's float32 GEMM rate on N×N×N through the Backend
                           interface (1 warm-up + 5 timed); 0 skips. Default 8192 on cuda, 2048 on cpu
  --verify K               after the fits, fit the CPU backend on the first K targets (same options;
                           the main fit's route unless --verify-solver auto) and compare chosen alphas,
                           scores and coefficients (default 0: skip). Exit code 2 when they disagree.
  --verify-solver same|auto
  --many K                 then K independent problems (X with the K column blocks of Y), one after
                           another and then all at once with ridge_cv_fit_many (each on its own backend
                           instance: on CUDA its own stream); reports both times and their agreement
  --reference              then refit every target on the same backend and route with float32 GEMMs as
                           plain SGEMM (BRAINLATENT_CUDA_F32_GEMM=sgemm) and float64 eigendecompositions,
                           and compare (record "reference"; exit code 2 when they disagree): what the
                           3xTF32 products and the eigendecomposition's precision rule change
  --json-out FILE          append every JSON record to FILE too
  --tag TEXT               a label copied into every record (e.g. the git commit)
  --quiet                  no progress lines on stderr
  --help                   this text

Records ("kind"): "data", "sgemm", "fit" (per repeat), "verify", "error". Rates: gemm_gflops is the
fit's GEMM/SYRK flops over its total seconds; of_sgemm divides it by the sgemm record's best rate.
)";

struct Args {
  std::string backend = "auto";
  std::string shape_name = "z";
  i64 n = 24980, p = 6000, t = 6400;
  int folds = 5;
  int repeat = 1;
  double memory_gib = 0;
  std::string solver;
  i64 target_batch = 0;
  std::string eig_precision = "auto";
  std::uint64_t seed = 1;
  int threads = 0;
  i64 sgemm = -1;  // -1: the backend's default
  i64 verify = 0;
  int many = 0;
  std::string verify_solver = "same";
  bool reference = false;
  std::string json_out;
  std::string tag;
  bool quiet = false;
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "bench_ridge: %s (see --help)\n", msg.c_str());
  std::exit(64);
}

i64 parse_int(const std::string& opt, const std::string& v, i64 lo) {
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo)
    usage_error(opt + ": expected an integer >= " + std::to_string(lo) + ", got '" + v + "'");
  return x;
}

double parse_double(const std::string& opt, const std::string& v) {
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x) || x < 0) usage_error(opt + ": expected a number >= 0, got '" + v + "'");
  return x;
}

void parse_shape(Args& a, const std::string& v) {
  a.shape_name = v;
  if (v == "z") {
    a.n = 24980, a.p = 6000, a.t = 6400;
    return;
  }
  if (v == "c") {
    a.n = 24980, a.p = 8000, a.t = 59136;
    return;
  }
  std::vector<std::string> parts;
  std::stringstream ss(v);
  for (std::string s; std::getline(ss, s, ',');) parts.push_back(s);
  if (parts.size() != 3) usage_error("--shape: expected z, c or N,P,T, got '" + v + "'");
  a.n = parse_int("--shape N", parts[0], 2);
  a.p = parse_int("--shape P", parts[1], 1);
  a.t = parse_int("--shape T", parts[2], 1);
  a.shape_name = "custom";
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string opt = argv[i];
    if (opt == "--help" || opt == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (opt == "--quiet") {
      a.quiet = true;
      continue;
    }
    if (opt == "--reference") {
      a.reference = true;
      continue;
    }
    if (i + 1 >= argc) usage_error(opt + ": missing its value");
    const std::string v = argv[++i];
    if (opt == "--backend") {
      if (v != "cpu" && v != "auto" && v.rfind("cuda", 0) != 0) usage_error("--backend: expected cpu, cuda, cuda:N or auto, got '" + v + "'");
      a.backend = v;
    } else if (opt == "--shape") {
      parse_shape(a, v);
    } else if (opt == "--folds") {
      a.folds = static_cast<int>(parse_int(opt, v, 2));
    } else if (opt == "--repeat") {
      a.repeat = static_cast<int>(parse_int(opt, v, 0));
    } else if (opt == "--memory-gib") {
      a.memory_gib = parse_double(opt, v);
    } else if (opt == "--solver") {
      a.solver = v;
    } else if (opt == "--target-batch") {
      a.target_batch = parse_int(opt, v, 0);
    } else if (opt == "--eig-precision") {
      if (v != "auto" && v != "float32" && v != "float64") usage_error("--eig-precision: expected auto, float32 or float64");
      a.eig_precision = v;
    } else if (opt == "--seed") {
      a.seed = static_cast<std::uint64_t>(parse_int(opt, v, 0));
    } else if (opt == "--threads") {
      a.threads = static_cast<int>(parse_int(opt, v, 0));
    } else if (opt == "--sgemm") {
      a.sgemm = parse_int(opt, v, 0);
    } else if (opt == "--verify") {
      a.verify = parse_int(opt, v, 0);
    } else if (opt == "--many") {
      a.many = static_cast<int>(parse_int(opt, v, 0));
    } else if (opt == "--verify-solver") {
      if (v != "same" && v != "auto") usage_error("--verify-solver: expected same or auto");
      a.verify_solver = v;
    } else if (opt == "--json-out") {
      a.json_out = v;
    } else if (opt == "--tag") {
      a.tag = v;
    } else {
      usage_error("unknown option '" + opt + "'");
    }
  }
  if (a.folds > a.n) usage_error("--folds: more folds than samples");
  if (a.verify > 0 && a.repeat == 0) usage_error("--verify needs a fit (--repeat >= 1)");
  if (a.reference && a.repeat == 0) usage_error("--reference needs a fit (--repeat >= 1)");
  return a;
}

// ---------------------------------------------------------------- JSON records

// The fields every record starts with.
Json record(const char* kind, const Args& a) {
  Json j;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  j.str("bench", "bench_ridge").str("kind", kind).str("time", utc_now()).str("host", host);
  if (!a.tag.empty()) j.str("tag", a.tag);
  j.str("shape", a.shape_name).num("n", static_cast<double>(a.n)).num("p", static_cast<double>(a.p))
      .num("t", static_cast<double>(a.t)).num("seed", static_cast<double>(a.seed)).str("loadavg", load_average());
  return j;
}

void emit(const Args& a, const Json& j) {
  const std::string line = j.done();
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out, std::ios::app);
    f << line << "\n";
    if (!f) std::fprintf(stderr, "bench_ridge: could not append to %s\n", a.json_out.c_str());
  }
}

// ---------------------------------------------------------------- synthetic data

// splitmix64's output function: element i of stream `key` is mix(key + i·γ), so that any thread
// draws any element independently (a counter-based generator).
inline std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
// Approximately standard normal (Irwin–Hall of four 16-bit uniforms: mean 0, variance 1, |x| ≤ 3.46).
inline float normal(std::uint64_t key, std::uint64_t i) {
  const std::uint64_t h = mix(key + i * 0x9e3779b97f4a7c15ull);
  const std::uint32_t s = static_cast<std::uint32_t>(h & 0xffff) + static_cast<std::uint32_t>((h >> 16) & 0xffff) +
                          static_cast<std::uint32_t>((h >> 32) & 0xffff) + static_cast<std::uint32_t>(h >> 48);
  // Sum of four uniforms on [0, 65535]: mean 2·65535, variance 4·(65536²−1)/12.
  return (static_cast<float>(s) - 131070.0f) * (1.7320508f / 65536.0f);
}
inline double uniform(std::uint64_t key, std::uint64_t i) {
  return static_cast<double>(mix(key + i * 0x9e3779b97f4a7c15ull) >> 11) * 0x1.0p-53;
}

// Runs fn(begin, end) over [0, n) in `threads` contiguous slices.
void parallel_rows(i64 n, int threads, const std::function<void(i64, i64)>& fn) {
  const int k = static_cast<int>(std::max<i64>(1, std::min<i64>(threads, n)));
  std::vector<std::thread> pool;
  for (int w = 0; w < k; ++w) {
    const i64 b = n * w / k, e = n * (w + 1) / k;
    pool.emplace_back([&fn, b, e] { fn(b, e); });
  }
  for (auto& th : pool) th.join();
}

// A large float array in huge-page memory, first touched by the threads that fill it (a
// std::vector would zero it on one thread first: seconds for the c shape's 5.9 GB Y).
struct HostArray {
  std::unique_ptr<float, void (*)(void*)> ptr{nullptr, free_pages};
  i64 count = 0;
  explicit HostArray(i64 n) : ptr(static_cast<float*>(alloc_pages(static_cast<std::size_t>(n) * sizeof(float))), free_pages), count(n) {
    if (n > 0 && !ptr) throw Error(ErrorCode::OutOfMemory, "bench_ridge: cannot allocate " + std::to_string(n * 4.0 / (1 << 30)) + " GiB");
  }
  float* data() const { return ptr.get(); }
};

struct Data {
  HostArray x, y;
  std::vector<double> alpha_star;  // per target: the planted best alpha (inf: pure noise)
  double seconds = 0, seconds_fill = 0;  // all of it; the parallel iid fill alone
};

enum Stream : std::uint64_t { kE = 1, kEps, kL, kF, kB, kC, kMuX, kNuY, kTau };

Data generate(const Args& a, int threads) {
  const auto t0 = Clock::now();
  const i64 n = a.n, p = a.p, t = a.t;
  const i64 rx = 32, rw = 64;
  auto key = [&](Stream s) { return mix(a.seed * 0x100000001b3ull + s); };
  Data d{HostArray(n * p), HostArray(n * t), std::vector<double>(static_cast<std::size_t>(t)), 0, 0};

  // Planted alphas: log10 uniform in [1, 6.5]; 8% pure noise.
  std::vector<float> tau(static_cast<std::size_t>(t));
  for (i64 j = 0; j < t; ++j) {
    const double u = uniform(key(kTau), static_cast<std::uint64_t>(2 * j)), v = uniform(key(kTau), static_cast<std::uint64_t>(2 * j + 1));
    const double alpha = v < 0.08 ? std::numeric_limits<double>::infinity() : std::pow(10.0, 1.0 + 5.5 * u);
    d.alpha_star[static_cast<std::size_t>(j)] = alpha;
    tau[static_cast<std::size_t>(j)] = static_cast<float>(1.0 / std::sqrt(alpha));
  }
  // Small factors, on one thread: L (n×rx), F (rx×p) with row k scaled by √(0.2·0.85^k), B (p×rw),
  // C (rw×t) with column j scaled by τ_j/√rw; feature and target offsets.
  std::vector<float> L(static_cast<std::size_t>(n * rx)), F(static_cast<std::size_t>(rx * p)), B(static_cast<std::size_t>(p * rw)),
      C(static_cast<std::size_t>(rw * t)), XB(static_cast<std::size_t>(n * rw)), mu(static_cast<std::size_t>(p)), nu(static_cast<std::size_t>(t));
  for (std::size_t i = 0; i < L.size(); ++i) L[i] = normal(key(kL), i);
  for (i64 k = 0; k < rx; ++k) {
    const float s = static_cast<float>(std::sqrt(0.2 * std::pow(0.85, static_cast<double>(k))));
    for (i64 j = 0; j < p; ++j) F[static_cast<std::size_t>(k * p + j)] = s * normal(key(kF), static_cast<std::uint64_t>(k * p + j));
  }
  for (std::size_t i = 0; i < B.size(); ++i) B[i] = normal(key(kB), i);
  const float inv_sqrt_rw = 1.0f / std::sqrt(static_cast<float>(rw));
  for (i64 k = 0; k < rw; ++k)
    for (i64 j = 0; j < t; ++j) {
      const auto idx = static_cast<std::size_t>(k * t + j);
      C[idx] = tau[static_cast<std::size_t>(j)] * inv_sqrt_rw * normal(key(kC), idx);
    }
  for (i64 j = 0; j < p; ++j) mu[static_cast<std::size_t>(j)] = 0.3f * normal(key(kMuX), static_cast<std::uint64_t>(j));
  for (i64 j = 0; j < t; ++j) nu[static_cast<std::size_t>(j)] = 1.5f + normal(key(kNuY), static_cast<std::uint64_t>(j));

  // The large iid parts, in parallel by rows (first touch of the big arrays).
  float* x = d.x.data();
  float* y = d.y.data();
  const auto t_fill = Clock::now();
  parallel_rows(n, threads, [&](i64 b, i64 e) {
    const std::uint64_t ke = key(kE), kn = key(kEps);
    for (i64 i = b; i < e; ++i) {
      float* xr = x + i * p;
      for (i64 j = 0; j < p; ++j) xr[j] = normal(ke, static_cast<std::uint64_t>(i * p + j)) + mu[static_cast<std::size_t>(j)];
      float* yr = y + i * t;
      for (i64 j = 0; j < t; ++j) yr[j] = normal(kn, static_cast<std::uint64_t>(i * t + j)) + nu[static_cast<std::size_t>(j)];
    }
  });
  d.seconds_fill = seconds_since(t_fill);
  // The low-rank parts through BLAS: X += L·F, then Y += (X·B)·C.
  linalg::gemm(false, false, n, p, rx, 1.0f, L.data(), rx, F.data(), p, 1.0f, x, p);
  linalg::gemm(false, false, n, rw, p, 1.0f, x, p, B.data(), rw, 0.0f, XB.data(), rw);
  linalg::gemm(false, false, n, t, rw, 1.0f, XB.data(), rw, C.data(), t, 1.0f, y, t);
  d.seconds = seconds_since(t0);
  return d;
}

// ---------------------------------------------------------------- the backend's GEMM rate

struct SgemmRate {
  double best_gflops = 0, median_gflops = 0;
  std::string device;
};

SgemmRate measure_sgemm(const std::string& backend_name, i64 n, int timed) {
  std::unique_ptr<Backend> be = make_backend(backend_name);
  const auto count = static_cast<std::size_t>(n * n);
  std::vector<float> ha(count), hb(count);
  for (std::size_t i = 0; i < count; ++i) {
    ha[i] = normal(11, i);
    hb[i] = normal(12, i);
  }
  BufferPtr wa = be->wrap_host(ha.data(), DType::F32, count), wb = be->wrap_host(hb.data(), DType::F32, count);
  BufferPtr da = be->alloc(DType::F32, count), db = be->alloc(DType::F32, count), dc = be->alloc(DType::F32, count);
  be->copy(view<float>(*wa, n, n), view<float>(*da, n, n));
  be->copy(view<float>(*wb, n, n), view<float>(*db, n, n));
  const ViewF A = view<float>(*da, n, n), Bv = view<float>(*db, n, n), Cv = view<float>(*dc, n, n);
  be->gemm(false, false, 1.0f, A, Bv, 0.0f, Cv);  // warm-up (library initialisation, kernel choice)
  be->synchronize();
  std::vector<double> rates;
  for (int r = 0; r < timed; ++r) {
    const auto t0 = Clock::now();
    be->gemm(false, false, 1.0f, A, Bv, 0.0f, Cv);
    be->synchronize();
    rates.push_back(2.0 * static_cast<double>(n) * n * n / seconds_since(t0) / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  return {rates.back(), rates[rates.size() / 2], be->description()};
}

// ---------------------------------------------------------------- fitting and comparing

const std::vector<double> kAlphas = {1e-2, 1e-1, 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6};

RidgeOptions make_options(const Args& a, const std::string& backend) {
  RidgeOptions o;
  o.alphas = kAlphas;
  o.n_folds = a.folds;
  o.folds = contiguous_folds(a.n, a.folds);
  o.backend = backend;
  o.solver = a.solver;
  o.target_batch = a.target_batch;
  o.memory_budget = static_cast<std::size_t>(a.memory_gib * 1024.0 * 1024.0 * 1024.0);
  o.eig_precision = a.eig_precision == "float32" ? EigPrecision::Float32 : a.eig_precision == "float64" ? EigPrecision::Float64 : EigPrecision::Auto;
  if (!a.quiet) {
    // One stderr line per stage change: where a long or stuck run is.
    auto last = std::make_shared<std::string>();
    auto t0 = std::make_shared<Clock::time_point>(Clock::now());
    o.progress = [last, t0](double frac, const std::string& stage) {
      if (stage == *last) return;
      *last = stage;
      std::fprintf(stderr, "  [%7.2f s] %3.0f%% %s\n", seconds_since(*t0), 100 * frac, stage.c_str());
    };
  }
  return o;
}

std::size_t alpha_index(float alpha) {
  for (std::size_t k = 0; k < kAlphas.size(); ++k)
    if (alpha == static_cast<float>(kAlphas[k])) return k;
  return kAlphas.size();
}

// Targets per grid alpha; off_grid counts any chosen alpha not on the grid (a bug if ever > 0).
std::vector<double> alpha_histogram(const std::vector<float>& best, double& off_grid) {
  std::vector<double> h(kAlphas.size() + 1, 0);
  for (float a : best) h[alpha_index(a)] += 1;
  off_grid = h.back();
  h.pop_back();
  return h;
}

// Agreement of the main fit with a CPU fit of its first K targets (same X, options, route).
struct Agreement {
  i64 k = 0, alphas_equal = 0, mismatches_near_tie = 0;
  double max_tie_gap = 0;          // largest CPU-score gap between the two alphas of a mismatch
  double max_best_score_diff = 0;  // max |Δ best score| over the K targets
  double max_cv_score_diff = 0;    // max |Δ cv score| over every alpha and target
  double max_coef_rel = 0, median_coef_rel = 0;  // ‖Δcoef_j‖ / ‖coef_j‖ over targets with equal alphas
  double max_intercept_diff = 0;
  bool ok = false;
};

constexpr double kTieTol = 1e-4;       // CV scores (R²) this close are a tie at float32 precision
constexpr double kScoreTol = 1e-4;     // best scores must agree to this
constexpr double kCoefRelTol = 2e-3;   // coefficients of equal alphas, relative 2-norm per target

Agreement compare(const RidgeResult& main, const RidgeResult& cpu, i64 p, i64 t, i64 k) {
  Agreement g;
  g.k = k;
  const std::size_t A = kAlphas.size();
  std::vector<double> rel;
  // Coefficient distances per target, read row by row (a column walk over p·t floats misses the cache).
  std::vector<double> dd(static_cast<std::size_t>(k), 0.0), nn(static_cast<std::size_t>(k), 0.0);
  for (i64 f = 0; f < p; ++f) {
    const float* cm = main.coef.data() + f * t;
    const float* cc = cpu.coef.data() + f * k;
    for (i64 j = 0; j < k; ++j) {
      const double d = static_cast<double>(cm[j]) - cc[j];
      dd[static_cast<std::size_t>(j)] += d * d;
      nn[static_cast<std::size_t>(j)] += static_cast<double>(cc[j]) * cc[j];
    }
  }
  for (i64 j = 0; j < k; ++j) {
    const auto J = static_cast<std::size_t>(j);
    const float am = main.best_alphas[J], ac = cpu.best_alphas[J];
    g.max_best_score_diff = std::max(g.max_best_score_diff, std::fabs(static_cast<double>(main.best_scores[J]) - cpu.best_scores[J]));
    for (std::size_t a = 0; a < A; ++a) {
      const double sm = main.cv_scores[a * static_cast<std::size_t>(t) + J], sc = cpu.cv_scores[a * static_cast<std::size_t>(k) + J];
      if (std::isfinite(sm) && std::isfinite(sc)) g.max_cv_score_diff = std::max(g.max_cv_score_diff, std::fabs(sm - sc));
      else if (std::isfinite(sm) != std::isfinite(sc)) g.max_cv_score_diff = std::numeric_limits<double>::infinity();
    }
    g.max_intercept_diff = std::max(g.max_intercept_diff, std::fabs(static_cast<double>(main.intercept[J]) - cpu.intercept[J]));
    if (am == ac) {
      ++g.alphas_equal;
      rel.push_back(nn[J] > 0 ? std::sqrt(dd[J] / nn[J]) : std::sqrt(dd[J]));
    } else {
      const std::size_t im = alpha_index(am), ic = alpha_index(ac);
      const double gap = im < A && ic < A ? std::fabs(static_cast<double>(cpu.cv_scores[im * static_cast<std::size_t>(k) + J]) -
                                                       cpu.cv_scores[ic * static_cast<std::size_t>(k) + J])
                                          : std::numeric_limits<double>::infinity();
      g.max_tie_gap = std::max(g.max_tie_gap, gap);
      if (gap <= kTieTol) ++g.mismatches_near_tie;
    }
  }
  if (!rel.empty()) {
    std::sort(rel.begin(), rel.end());
    g.max_coef_rel = rel.back();
    g.median_coef_rel = rel[rel.size() / 2];
  }
  g.ok = g.alphas_equal + g.mismatches_near_tie == k && g.max_best_score_diff <= kScoreTol && g.max_coef_rel <= kCoefRelTol;
  return g;
}

// The comparison's fields of a "verify" or "reference" record.
void add_agreement(Json& j, const Agreement& g) {
  j.num("k", static_cast<double>(g.k)).num("alphas_equal", static_cast<double>(g.alphas_equal))
      .num("mismatches_near_tie", static_cast<double>(g.mismatches_near_tie)).num("max_tie_gap", g.max_tie_gap)
      .num("max_best_score_diff", g.max_best_score_diff).num("max_cv_score_diff", g.max_cv_score_diff)
      .num("max_coef_rel", g.max_coef_rel).num("median_coef_rel", g.median_coef_rel)
      .num("max_intercept_diff", g.max_intercept_diff).num("tie_tol", kTieTol).num("score_tol", kScoreTol)
      .num("coef_rel_tol", kCoefRelTol).boolean("ok", g.ok);
}

// BRAINLATENT_CUDA_F32_GEMM set for the scope (a CUDA backend reads it when a fit or a measurement creates it).
class ScopedF32Gemm {
 public:
  explicit ScopedF32Gemm(const char* value) {
    const char* was = std::getenv(kName);
    had_ = was != nullptr;
    if (had_) saved_ = was;
    setenv(kName, value, 1);
  }
  ~ScopedF32Gemm() {
    if (had_) setenv(kName, saved_.c_str(), 1);
    else unsetenv(kName);
  }
  ScopedF32Gemm(const ScopedF32Gemm&) = delete;
  ScopedF32Gemm& operator=(const ScopedF32Gemm&) = delete;

 private:
  static constexpr const char* kName = "BRAINLATENT_CUDA_F32_GEMM";
  bool had_ = false;
  std::string saved_;
};

void add_info(Json& j, const RidgeFitInfo& i) {
  j.str("backend", i.backend).str("solver", i.solver).str("route", i.route).str("cv_method", i.cv_method)
      .str("eig_precision", i.eig_precision)
      .num("seconds_total", i.seconds_total).num("seconds_decompose", i.seconds_decompose).num("seconds_cv", i.seconds_cv)
      .num("seconds_refit", i.seconds_refit).num("gemm_flops", i.gemm_flops)
      .num("gemm_gflops", i.seconds_total > 0 ? i.gemm_flops / i.seconds_total / 1e9 : 0)
      .num("decompositions", static_cast<double>(i.decompositions)).num("target_batch", static_cast<double>(i.target_batch))
      .num("n_batches", static_cast<double>(i.n_batches)).num("unresolved_alphas", i.unresolved_alphas)
      .num("alpha_resolution", i.alpha_resolution).num("edge_low", i.edge_low).num("edge_high", i.edge_high)
      .num("fixed_bytes", static_cast<double>(i.fixed_bytes)).num("batch_bytes", static_cast<double>(i.batch_bytes))
      .num("budget_bytes", static_cast<double>(i.budget_bytes)).num("peak_bytes", static_cast<double>(i.peak_bytes));
}

// Copies the first k columns of y (n×t) into a contiguous n×k array.
std::vector<float> first_columns(const float* y, i64 n, i64 t, i64 k) {
  std::vector<float> out(static_cast<std::size_t>(n * k));
  for (i64 i = 0; i < n; ++i) std::copy(y + i * t, y + i * t + k, out.begin() + i * k);
  return out;
}

int run(const Args& a) {
  const int threads = a.threads > 0 ? a.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  linalg::set_blas_threads(a.threads);

  // The backend the name resolves to ('auto': cuda when usable), for the sgemm default and the
  // records; an unusable one is refused here, before gigabytes of data are generated.
  const std::string resolved = make_backend(a.backend)->name();
  const i64 sgemm_n = a.sgemm >= 0 ? a.sgemm : resolved == "cuda" ? 8192 : 2048;

  Data d = generate(a, threads);
  {
    Json j = record("data", a);
    // The planted alphas on the grid (nearest in log10; beyond the ends counted at the ends).
    std::vector<double> planted(kAlphas.size(), 0);
    double noise = 0;
    for (double s : d.alpha_star) {
      if (!std::isfinite(s)) noise += 1;
      else planted[static_cast<std::size_t>(std::clamp(std::lround(std::log10(s) + 2), 0l, static_cast<long>(kAlphas.size() - 1)))] += 1;
    }
    j.num("seconds_data", d.seconds).num("seconds_fill", d.seconds_fill).num("threads", threads).num("gib", (a.n * a.p + a.n * a.t) * 4.0 / (1 << 30))
        .nums("planted_alpha_hist", planted).num("planted_noise_targets", noise).str("blas", linalg::blas_vendor());
    emit(a, j);
  }

  double sgemm_best = 0;
  if (sgemm_n > 0) {
    // The card's plain float32 rate (SGEMM: the CUDA backend's 3xTF32 products switched off), and on
    // CUDA the rate of the float32 products the fits use by default.
    const SgemmRate r = [&] {
      const ScopedF32Gemm plain("sgemm");
      return measure_sgemm(a.backend, sgemm_n, 5);
    }();
    sgemm_best = r.best_gflops;
    Json j = record("sgemm", a);
    j.str("backend", resolved).str("device", r.device).num("sgemm_n", static_cast<double>(sgemm_n))
        .num("sgemm_gflops", r.best_gflops).num("sgemm_gflops_median", r.median_gflops);
    if (resolved == "cuda") {
      const SgemmRate f = measure_sgemm(a.backend, sgemm_n, 5);
      j.str("f32_gemm_device", f.device).num("f32_gemm_gflops", f.best_gflops).num("f32_gemm_gflops_median", f.median_gflops);
    }
    emit(a, j);
  }

  const ConstMatF X{d.x.data(), a.n, a.p}, Y{d.y.data(), a.n, a.t};
  std::optional<RidgeResult> last;
  for (int r = 0; r < a.repeat; ++r) {
    last.reset();  // the previous result's coefficients (up to p·t floats) freed first
    if (!a.quiet) std::fprintf(stderr, "fit %d/%d on %s (%s)\n", r + 1, a.repeat, resolved.c_str(), a.shape_name.c_str());
    const auto t0 = Clock::now();
    last.emplace(ridge_cv_fit(X, Y, make_options(a, a.backend)));
    const double wall = seconds_since(t0);
    double off_grid = 0;
    const std::vector<double> hist = alpha_histogram(last->best_alphas, off_grid);
    Json j = record("fit", a);
    add_info(j, last->info);
    const double rate = last->info.seconds_total > 0 ? last->info.gemm_flops / last->info.seconds_total / 1e9 : 0;
    j.num("repeat", r).num("seconds_wall", wall).num("seconds_data", d.seconds).num("folds", a.folds)
        .num("memory_gib", a.memory_gib).nums("alphas", kAlphas).nums("alpha_hist", hist)
        .num("alpha_off_grid", off_grid)
        .num("peak_rss_gib", peak_rss_gib());
    if (sgemm_best > 0) j.num("sgemm_gflops", sgemm_best).num("of_sgemm", rate / sgemm_best);
    emit(a, j);
  }

  if (a.many > 0) {
    // K problems: X with each column block of Y, sequential then concurrent.
    const i64 w = a.t / a.many;
    std::vector<std::vector<float>> blocks;
    std::vector<RidgeProblem> problems;
    for (int q = 0; q < a.many; ++q) {
      std::vector<float> yq(static_cast<std::size_t>(a.n * w));
      for (i64 i = 0; i < a.n; ++i)
        std::copy_n(d.y.data() + i * a.t + q * w, w, yq.data() + i * w);
      blocks.push_back(std::move(yq));
    }
    for (int q = 0; q < a.many; ++q) problems.push_back({X, {blocks[static_cast<std::size_t>(q)].data(), a.n, w}, make_options(a, a.backend)});
    if (!a.quiet) std::fprintf(stderr, "many: %d problems of %lld targets, one after another\n", a.many, static_cast<long long>(w));
    auto t0 = Clock::now();
    std::vector<RidgeResult> one;
    for (const RidgeProblem& pr : problems) one.push_back(ridge_cv_fit(pr.x, pr.y, pr.options));
    const double seq = seconds_since(t0);
    if (!a.quiet) std::fprintf(stderr, "many: all at once (ridge_cv_fit_many)\n");
    t0 = Clock::now();
    const std::vector<RidgeResult> all = ridge_cv_fit_many(problems, a.many);
    const double conc = seconds_since(t0);
    double coef_diff = 0, coef_max = 0;
    i64 alpha_diff = 0;
    for (std::size_t q = 0; q < one.size(); ++q) {
      for (std::size_t i = 0; i < one[q].coef.size(); ++i) {
        coef_diff = std::max(coef_diff, static_cast<double>(std::fabs(one[q].coef[i] - all[q].coef[i])));
        coef_max = std::max(coef_max, static_cast<double>(std::fabs(one[q].coef[i])));
      }
      for (std::size_t j = 0; j < one[q].best_alphas.size(); ++j) alpha_diff += one[q].best_alphas[j] != all[q].best_alphas[j];
    }
    Json j = record("many", a);
    j.str("backend", resolved).num("problems", a.many).num("targets_each", static_cast<double>(w)).num("seconds_sequential", seq)
        .num("seconds_concurrent", conc).num("speedup", seq / conc).num("alphas_differing", static_cast<double>(alpha_diff))
        .num("max_coef_diff_rel", coef_max > 0 ? coef_diff / coef_max : 0);
    emit(a, j);
  }

  if (a.reference) {
    RidgeOptions o = make_options(a, a.backend);
    o.solver = last->info.solver;
    o.eig_precision = EigPrecision::Float64;
    if (!a.quiet) std::fprintf(stderr, "reference: every target again, SGEMM and float64 eigendecompositions (%s)\n", o.solver.c_str());
    const RidgeResult ref = [&] {
      const ScopedF32Gemm plain("sgemm");
      return ridge_cv_fit(X, Y, o);
    }();
    const Agreement g = compare(*last, ref, a.p, a.t, a.t);
    Json j = record("reference", a);
    j.str("backend", last->info.backend).str("solver", last->info.solver).str("eig_precision", last->info.eig_precision)
        .str("reference_eig_precision", ref.info.eig_precision).num("reference_seconds_total", ref.info.seconds_total);
    add_agreement(j, g);
    emit(a, j);
    if (!g.ok) return 2;
  }

  if (a.verify > 0) {
    const i64 k = std::min(a.verify, a.t);
    std::vector<float> yk = first_columns(d.y.data(), a.n, a.t, k);
    RidgeOptions o = make_options(a, "cpu");
    if (a.verify_solver == "same") o.solver = last->info.solver;
    if (!a.quiet) std::fprintf(stderr, "verify: cpu fit of the first %lld targets (%s)\n", static_cast<long long>(k), o.solver.c_str());
    std::string verify_note;
    RidgeResult cpu;
    try {
      cpu = ridge_cv_fit(X, ConstMatF{yk.data(), a.n, k}, o);
    } catch (const Error& e) {
      // A route forced on the CPU can fail where the automatic choice falls back (e.g. an exact
      // route's (I − H) block not positive definite): compare with the CPU's own choice then.
      if (o.solver.empty() || e.code() != ErrorCode::NumericalFailure) throw;
      verify_note = "cpu " + o.solver + " failed (" + e.what() + "); compared with the cpu's automatic route";
      if (!a.quiet) std::fprintf(stderr, "verify: %s\n", verify_note.c_str());
      o.solver.clear();
      cpu = ridge_cv_fit(X, ConstMatF{yk.data(), a.n, k}, o);
    }
    const Agreement g = compare(*last, cpu, a.p, a.t, k);
    Json j = record("verify", a);
    j.str("backend", last->info.backend).str("solver", last->info.solver).str("cpu_solver", cpu.info.solver)
        .str("cpu_eig_precision", cpu.info.eig_precision).num("cpu_seconds_total", cpu.info.seconds_total);
    add_agreement(j, g);
    if (!verify_note.empty()) j.str("note", verify_note);
    emit(a, j);
    if (!g.ok) return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  try {
    return run(a);
  } catch (const Error& e) {
    Json j = record("error", a);
    j.str("code", error_code_name(e.code())).str("message", e.what()).str("backend", a.backend);
    emit(a, j);
    std::fprintf(stderr, "bench_ridge: %s: %s\n", error_code_name(e.code()), e.what());
    return 1;
  } catch (const std::exception& e) {
    Json j = record("error", a);
    j.str("code", "exception").str("message", e.what()).str("backend", a.backend);
    emit(a, j);
    std::fprintf(stderr, "bench_ridge: %s\n", e.what());
    return 1;
  }
}
