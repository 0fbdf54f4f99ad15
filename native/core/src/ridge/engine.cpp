// The CV driver of the ridge engine (see engine.h): one loop for RidgeCV and banded ridge over
// any registered route and any backend.
#include "engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>
#include <sstream>
#include <type_traits>

#include "brainlatent/error.h"
#include "brainlatent/long_ops.h"
#include "brainlatent/parallel.h"
#include "brainlatent/profile.h"

namespace brainlatent::ridge {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
std::size_t Z(i64 v) { return static_cast<std::size_t>(v); }
std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g GiB", bytes / static_cast<double>(1ull << 30));
  return buf;
}
}  // namespace

// ------------------------------------------------------------------ context
namespace {
// Fits running on device backends in this process now: a device's default budget is shared
// between them (a batch worker runs several jobs' fits on one GPU, each on its own stream).
std::atomic<int> g_device_fits{0};
struct DeviceFit {
  bool on;
  explicit DeviceFit(const Backend& be) : on(!be.host_visible()) {
    if (on) g_device_fits.fetch_add(1);
  }
  ~DeviceFit() {
    if (on) g_device_fits.fetch_sub(1);
  }
};
}  // namespace

double budget_of(const Problem& pb, const Backend& be) {
  if (pb.memory_budget) return static_cast<double>(pb.memory_budget);
  if (be.host_visible()) return static_cast<double>(kDefaultMemoryBudget);
  const int fits = std::max(1, g_device_fits.load());
  return std::max(static_cast<double>(kDefaultMemoryBudget), 0.85 * static_cast<double>(be.memory_available()) / fits);
}

Context::Context(const Problem& problem, Backend& backend) : pb(problem), be(backend), budget(budget_of(problem, backend)) {
  unresolved.assign(Z(pb.n_alphas()), 0);
}

// (run() makes pb.cancel this thread's flag: the same check linalg's long operations make)
void Context::checkpoint() const { poll_cancel(); }

void Context::report(double fraction, const std::string& stage) const {
  // (monotone: a route's own steps may map a fraction below what the engine reported last)
  reported = std::max(reported, std::min(1.0, std::max(0.0, fraction)));
  reported_stage = stage;
  if (pb.progress) pb.progress(reported, stage);
}

BufferPtr Context::upload(const std::vector<double>& v) const {
  BufferPtr b = be.alloc(DType::F64, v.size());
  if (!v.empty()) {
    BufferPtr h = be.wrap_host(const_cast<double*>(v.data()), DType::F64, v.size());
    be.copy(vec<double>(*h, static_cast<i64>(v.size())), vec<double>(*b, static_cast<i64>(v.size())));
  }
  return b;
}

namespace {
// v's elements as doubles, through a host buffer of its own type.
template <typename T>
std::vector<double> download_as_double(Backend& be, const View<T>& v) {
  std::vector<T> host(static_cast<std::size_t>(v.size()));
  if (!host.empty()) {
    BufferPtr h = be.wrap_host(host.data(), sizeof(T) == 4 ? DType::F32 : DType::F64, host.size());
    be.copy(v, View<T>{h.get(), 0, v.rows, v.cols, v.cols});
    be.synchronize();
  }
  if constexpr (std::is_same_v<T, double>) return host;
  else return std::vector<double>(host.begin(), host.end());
}
}  // namespace

std::vector<double> Context::download(const ViewD& v) const { return download_as_double(be, v); }
std::vector<double> Context::download(const ViewF& v) const { return download_as_double(be, v); }

void Context::check_gram_finite(const ViewF& g, const char* name) const {
  const i64 bad = be.first_nonfinite(g);
  if (bad < 0) return;
  throw Error(ErrorCode::NonFinite,
              std::string(pb.what) + ": the Gram matrix " + name + " overflowed float32 at (" + std::to_string(bad / g.cols) + ", " +
                  std::to_string(bad % g.cols) + "): X holds values too large for float32 products (|X| up to " +
                  [&] {
                    char b[32];
                    std::snprintf(b, sizeof b, "%.3g", x_abs_max.load());
                    return std::string(b);
                  }() +
                  "); rescale X (or standardize it)");
}

void Context::reset_resolution() {
  std::fill(unresolved.begin(), unresolved.end(), 0);
  resolution = 0;
}

void Context::resolve_above(double res) {
  resolution = std::max(resolution, res);
  for (std::size_t a = 0; a < pb.alphas.size(); ++a)
    if (pb.alphas[a] < res) unresolved[a] = 1;
}

// One decomposition of the symmetric matrix in a (r×r, any leading dimension), in place, in float32
// or, when the precision rule asks, float64: f32() runs it on a, f64(d) on a float64 copy d that is
// converted back into a; each returns the largest |eigenvalue| it found, or NaN where it declined
// (a untouched; then so does this). A float64 redo calls refill() to write the matrix into a again.
double Context::in_place_by_rule(const ViewF& a, const std::function<void()>& refill, const std::function<double()>& f32,
                                 const std::function<double(const ViewD&)>& f64) {
  const i64 r = a.rows;
  // The decomposition's blocks report from here to decompose()'s end mark (long_ops.h).
  const double from = reported, to = decompose_to_ < 0 ? from : progress_from + (progress_to - progress_from) * decompose_to_;
  const std::string stage = reported_stage.empty() ? "decompose" : reported_stage;
  const StepProgress steps(to > from ? std::function<void(double)>([this, from, to, stage](double f) { report(from + (to - from) * f, stage); })
                                     : std::function<void(double)>());
  const double amin = *std::min_element(pb.alphas.begin(), pb.alphas.end());
  auto in_float64 = [&] {
    BufferPtr d = be.alloc(DType::F64, Z(r * r));
    const ViewD dv = view<double>(*d, r, r);
    be.convert(a, dv);
    checkpoint();  // (a pass of ~0.5 s at NSD's 8,859 samples, faulting in the float64 copy)
    const double lmax = f64(dv);
    if (std::isnan(lmax)) return lmax;
    be.convert(dv, a);
    ++n_float64_;
    return lmax;
  };
  if (pb.eig_precision == EigPrecision::Float64 || use_f64_ || (pb.eig_precision == EigPrecision::Auto && be.prefers_float64_eigh()))
    return in_float64();
  // Float32 eigenvalues carry an error of about ε·λ_max: past a tenth of the smallest alpha the
  // shrinkage of the weakest directions is not resolved (ridge.md §5.4). Where the trace (≥ λ_max)
  // allows that, a few power iterations bound λ_max from below first: past the threshold a float32
  // decomposition would only be thrown away (NSD-shaped encoding fit, n = 8859: 36 s of 495 s).
  // (A looser bound for regular Grams — ε·λ_max within 1 % of λ_min + α_min — was tried and dropped:
  // float32 eigenvectors then put coefficients 1–2 % off at the bound and 2.9e-3 off on NSD's c shape.)
  // The tridiagonal basis's T carries the float32 reduction's error, the same ε·‖K‖: the same rule.
  constexpr double kEps32 = 1.19e-7;
  // (BRAINLATENT_EIG_PRECHECK=0 leaves the bound out: the tests' way to the float64 redo below)
  const char* precheck = std::getenv("BRAINLATENT_EIG_PRECHECK");
  const double lmax_limit = 0.1 * amin / kEps32;
  if (pb.eig_precision == EigPrecision::Auto && !(precheck && std::strcmp(precheck, "0") == 0) && x_trace > lmax_limit &&
      lambda_max_lower_bound(a, 12, lmax_limit) > lmax_limit) {
    use_f64_ = true;
    return in_float64();
  }
  const double lmax = f32();
  if (std::isnan(lmax)) return lmax;
  if (pb.eig_precision == EigPrecision::Auto && lmax > lmax_limit) {
    use_f64_ = true;
    ++float32_redone;
    checkpoint();
    refill();
    return in_float64();
  }
  ++n_float32_;
  return lmax;
}

// Eigenpairs of the symmetric matrix in a, in place (in_place_by_rule): a's rows become the
// eigenvectors; returns the eigenvalues as computed (ascending).
std::vector<double> Context::eigh_in_place(const ViewF& a, const std::function<void()>& refill) {
  const i64 r = a.rows;
  std::vector<double> raw;
  auto extreme = [&] { return r > 0 ? std::max(std::fabs(raw.front()), std::fabs(raw.back())) : 0.0; };
  in_place_by_rule(
      a, refill,
      [&] {
        BufferPtr w = be.alloc(DType::F32, Z(r));
        if (decompose_scratch_.buf) be.eigh_in_scratch(a, vec<float>(*w, r), decompose_scratch_);
        else be.eigh(a, vec<float>(*w, r));
        std::vector<float> wf(Z(r));
        if (r > 0) {
          BufferPtr h = be.wrap_host(wf.data(), DType::F32, wf.size());
          be.copy(vec<float>(*w, r), vec<float>(*h, r));
          be.synchronize();
        }
        raw.assign(wf.begin(), wf.end());
        return extreme();
      },
      [&](const ViewD& dv) {
        BufferPtr w = be.alloc(DType::F64, Z(r));
        be.eigh(dv, vec<double>(*w, r));
        raw = download(vec<double>(*w, r));
        return extreme();
      });
  return raw;
}

namespace {
// The extreme eigenvalues of the symmetric tridiagonal T (diagonal d, off-diagonal e, e[k] = T(k, k+1))
// by bisection on Sturm counts, in float64, to ~1e-14 of ‖T‖ (Gershgorin bounds the search).
std::pair<double, double> tridiagonal_extremes(const std::vector<double>& d, const std::vector<double>& e) {
  const std::size_t n = d.size();
  if (n == 0) return {0.0, 0.0};
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (std::size_t k = 0; k < n; ++k) {
    const double rad = (k > 0 ? std::fabs(e[k - 1]) : 0.0) + (k + 1 < n ? std::fabs(e[k]) : 0.0);
    lo = std::min(lo, d[k] - rad), hi = std::max(hi, d[k] + rad);
  }
  const double pivmin = std::numeric_limits<double>::min() / std::numeric_limits<double>::epsilon();
  auto below = [&](double x) {  // eigenvalues < x
    std::size_t count = 0;
    double q = 1;
    for (std::size_t k = 0; k < n; ++k) {
      q = d[k] - x - (k > 0 ? e[k - 1] * e[k - 1] / q : 0.0);
      if (std::fabs(q) < pivmin) q = -pivmin;
      count += q < 0;
    }
    return count;
  };
  auto bisect = [&](std::size_t want) {  // the smallest x with below(x) ≥ want
    double a = lo, b = hi;
    const double tol = 1e-14 * std::max(std::fabs(lo), std::fabs(hi));
    for (int it = 0; it < 200 && b - a > tol; ++it) {
      const double m = 0.5 * (a + b);
      (below(m) >= want ? b : a) = m;
    }
    return 0.5 * (a + b);
  };
  return {bisect(1), bisect(n)};
}
}  // namespace

std::vector<double> Context::tridiagonal_in_place(const ViewF& a, const std::function<void()>& refill, std::vector<double>& off,
                                                  std::pair<double, double>& ext) {
  const i64 r = a.rows;
  std::vector<double> d;
  auto extreme = [&] {
    ext = tridiagonal_extremes(d, off);
    return std::max(std::fabs(ext.first), std::fabs(ext.second));
  };
  const double lmax = in_place_by_rule(
      a, refill,
      [&] {
        BufferPtr de = be.alloc(DType::F32, Z(2 * r));
        const ViewF dv = vec<float>(*de, r), ev = vec<float>(*de, r, r);
        if (!be.tridiagonalize(a, dv, ev, decompose_scratch_.buf ? decompose_scratch_ : ViewF{})) return std::nan("");
        std::vector<float> h(Z(2 * r));
        if (r > 0) {
          BufferPtr hb = be.wrap_host(h.data(), DType::F32, h.size());
          be.copy(vec<float>(*de, 2 * r), vec<float>(*hb, 2 * r));
          be.synchronize();
        }
        d.assign(h.begin(), h.begin() + r);
        off.assign(h.begin() + r, h.end());
        return extreme();
      },
      [&](const ViewD& av) {
        BufferPtr de = be.alloc(DType::F64, Z(2 * r));
        if (!be.tridiagonalize(av, vec<double>(*de, r), vec<double>(*de, r, r))) return std::nan("");
        const std::vector<double> h = download(vec<double>(*de, 2 * r));
        d.assign(h.begin(), h.begin() + r);
        off.assign(h.begin() + r, h.end());
        return extreme();
      });
  if (std::isnan(lmax)) return {};
  return d;
}

// A lower bound on the largest eigenvalue of the symmetric positive semidefinite a: the Rayleigh
// quotient after up to `iterations` power iterations (each one product with a, a left intact),
// fewer once it passes `enough` or grows by less than 1% in one. The start vector is a fixed
// pseudo-random ±1 pattern: a centred kernel's leading eigenvectors are orthogonal to the constant
// vector.
double Context::lambda_max_lower_bound(const ViewF& a, int iterations, double enough) {
  profile::Scope ps("op power iteration");
  const i64 r = a.rows;
  if (r == 0) return 0;
  std::vector<double> v(Z(r));
  std::uint32_t h = 2463534242u;
  for (double& x : v) {
    h ^= h << 13, h ^= h >> 17, h ^= h << 5;  // xorshift32
    x = (h & 1u) ? 1.0 : -1.0;
  }
  const BufferPtr v32 = be.alloc(DType::F32, Z(r)), y32 = be.alloc(DType::F32, Z(r)), d = be.alloc(DType::F64, Z(r));
  const ViewF vcol = view<float>(*v32, r, 1), ycol = view<float>(*y32, r, 1);
  double bound = 0;
  for (int it = 0; it < iterations; ++it) {
    double nv = 0;
    for (double x : v) nv += x * x;
    nv = std::sqrt(nv);
    if (!(nv > 0)) break;
    for (double& x : v) x /= nv;
    const BufferPtr vd = upload(v);
    be.convert(vec<double>(*vd, r), vcol.reshape(1, r));
    be.gemm(false, false, 1.0f, a, vcol, 0.0f, ycol);
    be.convert(ycol.reshape(1, r), view<double>(*d, 1, r));
    const std::vector<double> y = download(vec<double>(*d, r));
    double rq = 0;
    for (i64 i = 0; i < r; ++i) rq += v[Z(i)] * y[Z(i)];
    const double previous = bound;
    bound = std::max(bound, rq);
    if (bound > enough || (it > 0 && bound < 1.01 * previous)) break;
    v = y;
  }
  return bound;
}

// A symmetric matrix's eigenpairs (sym left intact): q and raw, not yet lam. With `tridiagonal`, its
// tridiagonal basis where the backend reduces it (e.tridiagonal; raw and off hold T, lmin/lmax its extremes).
Context::Eig Context::eigh_of(const ViewF& sym, bool tridiagonal) {
  const i64 r = sym.rows;
  Eig e;
  e.q_buf = be.alloc(DType::F32, Z(r * r));
  e.q = view<float>(*e.q_buf, r, r);
  be.copy(sym, e.q);
  const auto refill = [&] { be.copy(sym, e.q); };
  if (tridiagonal) {
    std::vector<double> off;
    std::pair<double, double> ext;
    e.raw = tridiagonal_in_place(e.q, refill, off, ext);
    if (!e.raw.empty()) {
      e.tridiagonal = true;
      e.off_buf = upload(off);
      e.lmin = ext.first, e.lmax = ext.second;
      return e;
    }
  }
  e.raw = eigh_in_place(e.q, refill);
  return e;
}

// A centred kernel's constant vector u = 1/√n is a null vector exactly. An eigensolver returns it
// with an eigenvalue of order ε·λ_max instead of 0 (0.16 on the large bench shape, λ_max 2.7e6) and
// mixed with its neighbours, and the exact kernel route, which cancelled its term of (I − H_c)
// against 11ᵀ/n, found (I − H)_vv indefinite (α/(λ+α) = 0.984 at α = 10). So the constant direction
// is split off exactly: with the Householder reflector P = I − τvvᵀ, v = u − e₁ (Pu = e₁),
// PKP = [0 0; 0 B] up to the Gram's rounding; B is decomposed, and K's eigenvectors are u (row 0,
// eigenvalue 0) and P[0; w_k], orthogonal to u to rounding.
Context::Eig Context::eigh_deflated(const ViewF& k, bool tridiagonal) {
  const i64 r = k.rows, m = r - 1;
  const double s = 1.0 / std::sqrt(static_cast<double>(r)), tau = 1.0 / (1.0 - s);  // τ = 2/vᵀv
  std::vector<double> v(Z(r), s);
  v[0] = s - 1.0;
  const BufferPtr v_d = upload(v), v32 = be.alloc(DType::F32, Z(r)), y32 = be.alloc(DType::F32, Z(r));
  const ViewF vcol = view<float>(*v32, r, 1), ycol = view<float>(*y32, r, 1);
  be.convert(vec<double>(*v_d, r), vcol.reshape(1, r));
  auto times_v = [&](const ViewF& a) {  // a·v, to the host in float64
    be.gemm(false, false, 1.0f, a, vcol, 0.0f, ycol);
    BufferPtr d = be.alloc(DType::F64, Z(r));
    be.convert(ycol.reshape(1, r), view<double>(*d, 1, r));
    return download(vec<double>(*d, r));
  };
  // PKP = K − v wᵀ − w vᵀ with w = τKv − (τ²/2)(vᵀKv) v; only its trailing block B is needed.
  const std::vector<double> y = times_v(k);
  double vy = 0;
  for (i64 i = 0; i < r; ++i) vy += v[Z(i)] * y[Z(i)];
  std::vector<double> w(Z(m)), vt(v.begin() + 1, v.end());
  for (i64 i = 0; i < m; ++i) w[Z(i)] = tau * y[Z(i + 1)] - 0.5 * tau * tau * vy * v[Z(i + 1)];
  // B is formed and decomposed in place in the trailing block of Q's buffer: the rows of
  // M = [e₁ᵀ; 0 W] (W's rows B's eigenvectors), then Q = MP = M − τ(Mv)vᵀ, row 0 uᵀ.
  Eig e;
  e.q_buf = be.alloc(DType::F32, Z(r * r));
  e.q = view<float>(*e.q_buf, r, r);
  const ViewF b = e.q.block(1, 1, m, m);
  const BufferPtr vt_d = upload(vt), w_d = upload(w);
  auto form_b = [&] {
    be.copy(k.block(1, 1, m, m), b);
    be.add_outer(b, -1.0, vec<double>(*vt_d, m), vec<double>(*w_d, m));
    be.add_outer(b, -1.0, vec<double>(*w_d, m), vec<double>(*vt_d, m));
  };
  form_b();
  // (the tridiagonal basis of B where asked and the backend reduces it: row 0 of the result, u, is
  // then a decoupled row of T, its diagonal and off-diagonal entries 0)
  std::vector<double> inner, off;
  if (tridiagonal) {
    std::pair<double, double> ext;
    inner = tridiagonal_in_place(b, form_b, off, ext);
    if (!inner.empty()) {
      e.tridiagonal = true;
      e.lmin = ext.first, e.lmax = ext.second;
      off.insert(off.begin(), 0.0);
      e.off_buf = upload(off);
    }
  }
  if (!e.tridiagonal) inner = eigh_in_place(b, form_b);
  be.fill(e.q.block(0, 0, 1, r), 0.0f);
  be.fill(e.q.block(1, 0, m, 1), 0.0f);
  be.fill(e.q.block(0, 0, 1, 1), 1.0f);
  const std::vector<double> mv = times_v(e.q);
  const BufferPtr mv_d = upload(mv);
  be.add_outer(e.q, -tau, vec<double>(*mv_d, r), vec<double>(*v_d, r));
  e.raw.reserve(Z(r));
  e.raw.push_back(0.0);
  e.raw.insert(e.raw.end(), inner.begin(), inner.end());
  return e;
}

Context::Eig Context::decompose(const ViewF& sym, bool centred_kernel, bool split_constant, double to, bool singular_folds,
                               const ViewF& scratch, bool tridiagonal) {
  checkpoint();
  const i64 r = sym.rows;
  ++decompositions;
  decompose_to_ = to;
  decompose_scratch_ = scratch;
  Eig e;
  try {
    tridiagonal = tridiagonal && be.supports(Op::Tridiagonalize, DType::F32) && be.supports(Op::TriShrink, DType::F32);
    e = centred_kernel && split_constant && r > 1 ? eigh_deflated(sym, tridiagonal) : eigh_of(sym, tridiagonal);
  } catch (...) {
    decompose_to_ = -1;
    decompose_scratch_ = ViewF{};
    throw;
  }
  decompose_to_ = -1;
  decompose_scratch_ = ViewF{};
  std::vector<double> lam(Z(r));
  for (i64 k = 0; k < r; ++k) lam[Z(k)] = e.tridiagonal ? e.raw[Z(k)] : std::max(0.0, e.raw[Z(k)]);
  e.lam_buf = upload(lam);
  e.lam = vec<double>(*e.lam_buf, r);
  if (e.tridiagonal) e.off = vec<double>(*e.off_buf, r);
  // Alpha resolution (ridge.md §5.4): a (near) singular decomposition resolves no alpha below
  // 1e-5·λ_max; a centred kernel's constant null vector carries no signal and does not count (the
  // tridiagonal basis's extremes are of T without it).
  if (r > 0) {
    const double lmax = e.tridiagonal ? std::max(std::fabs(e.lmin), std::fabs(e.lmax)) : std::max(std::fabs(e.raw.front()), std::fabs(e.raw.back()));
    const double lmin = e.tridiagonal ? e.lmin : centred_kernel && r > 1 ? e.raw[1] : e.raw[0];
    const double res = 1e-5 * lmax;
    if (lmin < res || singular_folds) resolve_above(res);
  }
  return e;
}

// ------------------------------------------------------------------ preparation
namespace {

// Writes host data (rows × cols, row-major) into a device buffer: straight into its memory when the
// backend's buffers are host memory (zero copy), else in row chunks through two pinned staging
// buffers, so that filling one chunk on the host overlaps the transfer of the previous one.
// fill(r0, r1, out) writes rows r0..r1 to out (row r0 first).
template <typename Fill>
void fill_device(Backend& be, Buffer& dst, i64 rows, i64 cols, Fill&& fill) {
  if (be.host_visible()) {
    fill(i64{0}, rows, static_cast<float*>(dst.data()));
    return;
  }
  if (rows * cols == 0) return;
  const i64 chunk = std::max<i64>(1, std::min<i64>(rows, (i64{32} << 20) / 4 / std::max<i64>(1, cols)));  // ~32 MiB
  BufferPtr stage[2] = {be.alloc_host(DType::F32, Z(chunk * cols)), rows > chunk ? be.alloc_host(DType::F32, Z(chunk * cols)) : nullptr};
  const ViewF whole = view<float>(dst, rows, cols);
  int k = 0;
  for (i64 r0 = 0; r0 < rows; r0 += chunk, k ^= 1) {
    const i64 r1 = std::min(rows, r0 + chunk);
    // The previous chunk's copy runs while this one is filled; waiting for it afterwards also means
    // the stage filled next (sent two chunks ago) is free again.
    fill(r0, r1, static_cast<float*>(stage[k]->data()));
    be.synchronize();
    be.copy(view<float>(*stage[k], r1 - r0, cols), whole.row_range(r0, r1 - r0));
  }
  be.synchronize();
}

// Statistics of X and Y (host, float64): X's means and scales, the trace of the prepared X's Gram
// (a bound on λ_max for the precision rule's memory estimate), Y's column means.
void prepare_stats(Context& ctx) {
  const Problem& pb = ctx.pb;
  const ConstMatF x = pb.x;
  const i64 n = x.rows, p = x.cols;
  ctx.x_mean.assign(Z(p), 0.0f);
  ctx.x_scale.assign(Z(p), 1.0f);
  std::vector<double> mean(Z(p), 0.0), m2(Z(p), 0.0);
  parallel_for(0, p, 64, [&](i64 b, i64 e) {
    for (i64 i = 0; i < n; ++i) {
      const float* r = x.row(i);
      for (i64 j = b; j < e; ++j) mean[Z(j)] += r[j];
    }
    for (i64 j = b; j < e; ++j) mean[Z(j)] /= static_cast<double>(n);
    for (i64 i = 0; i < n; ++i) {
      const float* r = x.row(i);
      for (i64 j = b; j < e; ++j) {
        const double d = r[j] - mean[Z(j)];
        m2[Z(j)] += d * d;
      }
    }
  });
  ctx.x_inv_scale.assign(Z(p), 1.0);
  ctx.x_null_cols.clear();
  double trace = 0;
  for (i64 j = 0; j < p; ++j) {
    // Standardising without an intercept uses the centred spread, but the model keeps the raw
    // origin: the mean is subtracted only when an intercept is fitted.
    if (pb.fit_intercept) ctx.x_mean[Z(j)] = static_cast<float>(mean[Z(j)]);
    if (pb.standardize) {
      const double sd = std::sqrt(m2[Z(j)] / static_cast<double>(n));
      const float s = sd > 0 ? static_cast<float>(sd) : 1.0f;  // constant column: leave unscaled (zero after centring)
      ctx.x_scale[Z(j)] = s;
      ctx.x_inv_scale[Z(j)] = 1.0 / s;
    }
    const double raw = m2[Z(j)] + (pb.fit_intercept ? 0.0 : static_cast<double>(n) * mean[Z(j)] * mean[Z(j)]);
    if (raw == 0) ctx.x_null_cols.push_back(j);
    trace += raw * ctx.x_inv_scale[Z(j)] * ctx.x_inv_scale[Z(j)];
  }
  ctx.x_trace = trace;
  ctx.y_mean.assign(Z(pb.t()), 0.0);
  if (pb.fit_intercept) {
    const ConstMatF y = pb.y;
    parallel_for(0, y.cols, 256, [&](i64 b, i64 e) {
      for (i64 i = 0; i < y.rows; ++i) {
        const float* r = y.row(i);
        for (i64 j = b; j < e; ++j) ctx.y_mean[Z(j)] += r[j];
      }
      for (i64 j = b; j < e; ++j) ctx.y_mean[Z(j)] /= static_cast<double>(y.rows);
    });
  }
}

// X centred (intercept) and scaled (standardize), rows in fold order, on the backend.
// One prepared value of X (prepare_x, Context::fill_x_cols).
inline float prepared_x(const Context& ctx, const float* row, i64 j) {
  return static_cast<float>((row[j] - static_cast<double>(ctx.x_mean[Z(j)])) * ctx.x_inv_scale[Z(j)]);
}

void prepare_x(Context& ctx) {
  const Problem& pb = ctx.pb;
  const ConstMatF x = pb.x;
  const i64 n = x.rows, p = x.cols;
  ctx.x_buf = ctx.be.alloc(DType::F32, Z(n * p));
  ctx.x = view<float>(*ctx.x_buf, n, p);
  fill_device(ctx.be, *ctx.x_buf, n, p, [&](i64 r0, i64 r1, float* out) {
    parallel_for(r0, r1, std::max<i64>(1, 8192 / std::max<i64>(1, p)), [&](i64 b, i64 e) {
      double m = 0;
      for (i64 r = b; r < e; ++r) {
        const float* src = x.row(pb.folds.order[Z(r)]);
        float* dst = out + (r - r0) * p;
        for (i64 j = 0; j < p; ++j) {
          dst[j] = prepared_x(ctx, src, j);
          m = std::max(m, static_cast<double>(std::fabs(src[j])));
        }
      }
      // The largest |X|, for the messages of an overflowing fit.
      double cur = ctx.x_abs_max.load();
      while (m > cur && !ctx.x_abs_max.compare_exchange_weak(cur, m)) {
      }
    });
  });
}

}  // namespace

void Context::fill_x_cols(i64 c0, i64 pc, float* out) const {
  const ConstMatF xs = pb.x;
  parallel_for(0, xs.rows, std::max<i64>(1, 8192 / std::max<i64>(1, pc)), [&](i64 b, i64 e) {
    for (i64 r = b; r < e; ++r) {
      const float* src = xs.row(pb.folds.order[Z(r)]);
      float* dst = out + r * pc;
      for (i64 j = 0; j < pc; ++j) dst[j] = prepared_x(*this, src, c0 + j);
    }
  });
}

namespace {

// Loads columns of Y (a range, or batch.cols) centred, rows in fold order, with per-fold statistics.
void load_batch(Context& ctx, Batch& batch) {
  const Problem& pb = ctx.pb;
  ++batch.loads;
  const i64 n = pb.n(), tb = batch.tb;
  const int k = pb.folds.k;
  if (!batch.y_buf || batch.y_buf->count() < Z(n * tb)) batch.y_buf = ctx.be.alloc(DType::F32, Z(n * tb));
  batch.y = view<float>(*batch.y_buf, n, tb);
  const ConstMatF y = pb.y;
  const std::vector<i64>* cols = batch.cols;
  const i64 j0 = batch.j0;
  fill_device(ctx.be, *batch.y_buf, n, tb, [&](i64 r0, i64 r1, float* out) {
    // (a 32 MiB chunk of 59,136-target rows is 141 rows: a grain in rows would leave most cores idle)
    parallel_for(r0, r1, std::max<i64>(1, 8192 / std::max<i64>(1, tb)), [&](i64 b, i64 e) {
      for (i64 r = b; r < e; ++r) {
        const float* src = y.row(pb.folds.order[Z(r)]);
        float* dst = out + (r - r0) * tb;
        if (cols) {
          for (i64 j = 0; j < tb; ++j) dst[j] = static_cast<float>(src[(*cols)[Z(j)]] - ctx.y_mean[Z((*cols)[Z(j)])]);
        } else {
          for (i64 j = 0; j < tb; ++j) dst[j] = static_cast<float>(src[j0 + j] - ctx.y_mean[Z(j0 + j)]);
        }
      }
    });
  });
  // level (1) + sum, sst, train_mean (k each) rows of tb doubles.
  const std::size_t need = Z((1 + 3 * k) * tb);
  if (!batch.stats_buf || batch.stats_buf->count() < need) batch.stats_buf = ctx.be.alloc(DType::F64, need);
  batch.level = view<double>(*batch.stats_buf, 1, tb, 0);
  batch.sum = view<double>(*batch.stats_buf, k, tb, tb);
  batch.sst = view<double>(*batch.stats_buf, k, tb, tb * (1 + k));
  batch.train_mean = view<double>(*batch.stats_buf, k, tb, tb * (1 + 2 * k));
  std::vector<double> level(Z(tb));
  for (i64 j = 0; j < tb; ++j) level[Z(j)] = ctx.y_mean[Z(cols ? (*cols)[Z(j)] : j0 + j)];
  BufferPtr lv = ctx.upload(level);
  ctx.be.copy(vec<double>(*lv, tb), batch.level);
  ctx.be.fold_stats(batch.y, pb.folds.start, batch.level, batch.sum, batch.sst);
  // Mean of each fold's training rows: (Σ_all − Σ_v) / n_t (zero without an intercept).
  std::vector<double> sum = ctx.download(batch.sum), tm(Z(k * tb), 0.0);
  if (pb.fit_intercept) {
    std::vector<double> all(Z(tb), 0.0);
    for (int v = 0; v < k; ++v)
      for (i64 j = 0; j < tb; ++j) all[Z(j)] += sum[Z(v * tb + j)];
    for (int v = 0; v < k; ++v) {
      const double nt = static_cast<double>(n - pb.folds.size(v));
      for (i64 j = 0; j < tb; ++j) tm[Z(v * tb + j)] = (all[Z(j)] - sum[Z(v * tb + j)]) / nt;
    }
  }
  BufferPtr tmb = ctx.upload(tm);
  ctx.be.copy(view<double>(*tmb, k, tb), batch.train_mean);
}

}  // namespace

// ------------------------------------------------------------------ the driver
namespace {

struct Selected {
  BufferPtr buf_i, buf_d;
  ViewI index;
  ViewD score, alpha;
  void alloc(Backend& be, i64 t) {
    buf_i = be.alloc(DType::I32, Z(t));
    buf_d = be.alloc(DType::F64, Z(2 * t));
    index = vec<std::int32_t>(*buf_i, t);
    score = vec<double>(*buf_d, t);
    alpha = vec<double>(*buf_d, t, t);
  }
};


}  // namespace

MemoryPlan plan_memory(const Context& ctx, const Footprint& fp) {
  const Problem& pb = ctx.pb;
  const double n = static_cast<double>(pb.n()), p = static_cast<double>(pb.p()), t = static_cast<double>(pb.t());
  const bool banded = pb.n_candidates() > 1;
  MemoryPlan m;
  // Per target of a batch, besides the route's: Y's column (n), its fold statistics and the
  // selection (doubles), the alpha scores, and load_batch's uploads of the level and the training
  // means (k + 1 doubles, live beside the statistics while a batch loads).
  m.per_target = fp.per_target + 4.0 * n + 8.0 * (3.0 * pb.folds.k + 2.0 * pb.n_alphas() + 6.0) + 4.0 + 8.0 * (pb.folds.k + 1.0);
  // The refit's coefficients (p a target) go to a work buffer, not the result's own memory, on a
  // device backend and in banded ridge's grouped refit, whose targets are scattered afterwards.
  if (banded || !ctx.be.host_visible()) m.per_target += 4.0 * p;
  // Fixed: the route's, X's prepared copy, each target's best score, alpha and index (a Selected:
  // 20 bytes a target; banded ridge also its best candidate, 4 more) and a reserve of 1 MiB for
  // small allocations (alphas, eigenvalues, staging).
  m.route_fixed = fp.fixed;
  m.x_copy = 4.0 * n * p;
  m.target_vectors = 8.0 * (2.0 * t) + 4.0 * t + (banded ? 4.0 * t : 0.0);
  m.reserve = 1 << 20;
  m.fixed = m.route_fixed + m.x_copy + m.target_vectors + m.reserve;
  // The caller's budget is a hard bound; without one, the default sizes batches and grows to fit
  // the fixed footprint and a batch of kDefaultMinBatch targets: the batches' GEMMs are as wide as
  // the batch, and narrow ones run at half speed (the NSD-shaped encoding fit, whose fixed footprint
  // is above 2 GiB, ran 246 batches of 64 targets at 100 GFLOP/s on a 190 GFLOP/s machine). A
  // device's default is already most of its free memory: past it, only 64 targets.
  const double min_batch = ctx.be.host_visible() ? kDefaultMinBatch : 64.0;
  m.budget = pb.memory_budget ? ctx.budget : std::max(ctx.budget, m.fixed + m.per_target * std::min<double>(t, min_batch));
  i64 tb = pb.target_batch > 0 ? pb.target_batch : static_cast<i64>(std::max(0.0, m.budget - m.fixed) / m.per_target);
  // (The cap is for a CPU's caches; a device backend streams whole batches: fewer batches, fewer
  // repeated per-fold projections and host gathers.)
  if (pb.target_batch <= 0 && fp.max_batch > 0 && ctx.be.host_visible()) tb = std::min(tb, std::max<i64>(fp.max_batch, 1));
  m.target_batch = std::max<i64>(1, std::min(tb, pb.t()));
  m.n_batches = (pb.t() + m.target_batch - 1) / m.target_batch;
  return m;
}

MemoryPlan estimate_memory(const Problem& pb, Backend& be, const RouteSpec& spec) {
  Context ctx(pb, be);
  ctx.x_trace = pb.standardize && pb.fit_intercept ? static_cast<double>(pb.n()) * static_cast<double>(pb.p())
                                                   : std::numeric_limits<double>::infinity();
  return plan_memory(ctx, spec.make(ctx)->footprint());
}

RidgeCostEstimate cost_estimate(const Problem& pb, Backend& be, const RouteSpec& spec) {
  const MemoryPlan m = estimate_memory(pb, be, spec);
  RidgeCostEstimate e;
  e.route = spec.name;
  e.flops = spec.cost(pb).total;
  // (as the fit's info counts them: EngineResult's fixed, batch and budget bytes)
  e.fixed_bytes = static_cast<std::size_t>(m.fixed);
  e.x_copy_bytes = static_cast<std::size_t>(m.x_copy);
  e.route_bytes = static_cast<std::size_t>(m.route_fixed);
  e.bytes_per_target = m.per_target;
  e.budget_bytes = static_cast<std::size_t>(m.budget);
  e.target_batch = m.target_batch;
  e.n_batches = m.n_batches;
  e.batch_bytes = static_cast<std::size_t>(m.per_target * static_cast<double>(m.target_batch));
  e.fits = m.least() <= m.budget;
  return e;
}

namespace {

EngineResult attempt(const Problem& pb, Backend& be, const RouteSpec& spec) {
  auto t_start = Clock::now();
  const i64 p = pb.p(), t = pb.t();
  const int A = pb.n_alphas(), nc = pb.n_candidates();
  const bool single = nc == 1;
  be.set_memory_limit(0);
  be.reset_peak();
  const std::size_t base = be.memory_stats().live;
  Context ctx(pb, be);
  // (here, not in Context: a plan of the same shape (estimate_memory) must not allocate p of them)
  ctx.feature_weight.assign(Z(p), 1.0);
  {
    profile::Scope ps("phase prepare stats");
    prepare_stats(ctx);
  }
  std::unique_ptr<Route> route = spec.make(ctx);

  // ---- memory: the route's fixed footprint, X's copy, and the rest for target batches.
  const MemoryPlan mem = plan_memory(ctx, route->footprint());
  const double fixed = mem.fixed, per_target = mem.per_target, budget = mem.budget;
  if (mem.least() > budget)
    throw Error::budget_exceeded(std::string(pb.what) + ": the memory budget of " + gib(budget) + " is below this fit's fixed footprint of " +
                    gib(fixed) + " (X's prepared copy " + gib(mem.x_copy) + "; the " + spec.name +
                    " route's Grams, decompositions and work buffers " + gib(mem.route_fixed) + "; each target's best score, alpha and index " +
                    gib(mem.target_vectors) + "; a 1 MiB reserve for small allocations " + gib(mem.reserve) + ") plus one target (" + gib(per_target) +
                    "): raise memoryBudget to at least " + gib(fixed + per_target * std::min<double>(64.0, t)));
  const i64 tb = mem.target_batch;
  be.set_memory_limit(base + static_cast<std::size_t>(budget));

  ctx.report(0, "prepare");
  auto t0 = Clock::now();
  {
    profile::Scope ps("phase prepare X");
    prepare_x(ctx);
  }
  ctx.checkpoint();
  // Progress shares from the route's flop model: the setup's decomposition is a tenth of the medium
  // bench fit and a quarter of the NSD-shaped one, the per-fold decompositions from nothing to most
  // of a candidate.
  const RouteCost cost = spec.cost(pb);
  const double setup_share = cost.total > 0 ? std::clamp(cost.setup / cost.total, 0.02, 0.6) : 0.05;
  // Only the first of equal candidates is searched (Problem::first_equal_candidates): progress by those.
  const std::vector<int> first_equal = pb.first_equal_candidates();
  std::vector<int> distinct_rank(Z(nc), 0);
  int nd = 0;
  for (int c = 0; c < nc; ++c) distinct_rank[Z(c)] = first_equal[Z(c)] == c ? nd++ : distinct_rank[Z(first_equal[Z(c)])];
  const double per_candidate = (cost.total - cost.setup) / nd;
  const i64 n_batches = (t + tb - 1) / tb;
  ctx.single_batch = n_batches == 1;
  const double decompose = cost.decompose + (ctx.single_batch ? 0.0 : cost.leverage);
  const double decompose_share = per_candidate > 0 ? std::clamp(decompose / per_candidate, 0.0, 0.8) : 0.3;
  ctx.progress_from = 0.0;
  ctx.progress_to = setup_share;
  {
    profile::Scope ps("phase setup");
    route->setup();
  }
  const double t_setup = since(t0);
  ctx.report(setup_share, "decompose");

  EngineResult res;
  res.x_mean = ctx.x_mean;
  res.x_scale = ctx.x_scale;
  res.coef.resize(Z(p * t));  // (not zero-filled: every column is written by its batch's refit)
  res.best_alpha.assign(Z(t), static_cast<float>(pb.alphas[0]));
  res.best_score.assign(Z(t), 0.0f);
  res.best_candidate.assign(Z(t), 0);
  if (single) res.cv_scores.assign(Z(A * t), 0.0f);
  res.candidate_scores.assign(Z(nc * t), 0.0f);

  BufferPtr acc_buf = be.alloc(DType::F64, Z(A * tb));
  Selected sel;
  sel.alloc(be, tb);
  // Banded ridge: the best (candidate, alpha) so far per target.
  Selected best;
  BufferPtr best_tag_buf;
  ViewI best_tag;
  if (!single) {
    best.alloc(be, t);
    be.fill(best.score, -std::numeric_limits<double>::infinity());
    best_tag_buf = be.alloc(DType::I32, Z(t));
    best_tag = vec<std::int32_t>(*best_tag_buf, t);
  }
  // Refit output: the result's own memory when the backend reads host memory, else a device buffer.
  BufferPtr coef_host = be.wrap_host(res.coef.data(), DType::F32, res.coef.size());
  BufferPtr coef_dev;
  if (!be.host_visible()) coef_dev = be.alloc(DType::F32, Z(p * tb));
  const ViewF coef_all = view<float>(*coef_host, p, t);

  Batch batch;
  const bool keep_batch = n_batches == 1;  // one batch: load Y once for every candidate
  bool loaded = false;
  std::vector<char> no_skip(Z(A), 0);
  std::vector<char> skipped(Z(nc), 0);
  double t_search = 0, t_refit = 0;
  const double span = (single ? 1.0 : 0.85) - setup_share;  // (banded ridge: its grouped refit after 0.85)
  for (int c = 0; c < nc; ++c) {
    if (first_equal[Z(c)] != c) {
      // A repeat: its scores are its first's, and it cannot improve on them strictly.
      const int f = first_equal[Z(c)];
      skipped[Z(c)] = skipped[Z(f)];
      res.skipped_candidates += skipped[Z(c)];
      std::copy(res.candidate_scores.begin() + static_cast<std::ptrdiff_t>(f) * t, res.candidate_scores.begin() + static_cast<std::ptrdiff_t>(f + 1) * t,
                res.candidate_scores.begin() + static_cast<std::ptrdiff_t>(c) * t);
      continue;
    }
    auto tc = Clock::now();
    // Band weights of this candidate, per feature.
    {
      i64 f = 0;
      for (int b = 0; b < pb.n_bands(); ++b)
        for (i64 q = 0; q < pb.band_sizes[Z(b)]; ++q) ctx.feature_weight[Z(f++)] = pb.candidates[Z(c) * Z(pb.n_bands()) + Z(b)];
    }
    // Resolution is per candidate (the single candidate's includes the setup's decomposition).
    if (!single) ctx.reset_resolution();
    const int u = distinct_rank[Z(c)];
    const double c0 = setup_share + span * u / nd, c1 = setup_share + span * (u + 1) / nd;
    ctx.progress_from = c0;
    ctx.progress_to = c0 + (c1 - c0) * decompose_share;
    const double scored_from = ctx.progress_to;  // the batches share the rest of the candidate's range
    {
      profile::Scope ps("phase decompose");
      route->begin_candidate(c, single);
    }
    const bool none = std::all_of(ctx.unresolved.begin(), ctx.unresolved.end(), [](char u) { return u != 0; });
    if (none) {
      if (single) {
        std::ostringstream msg;
        msg << "alphas: every alpha is below " << ctx.resolution
            << ", the float32 resolution of this problem's Gram (1e-5·λ_max; it is singular or nearly so): use larger alphas";
        throw Error(ErrorCode::InvalidArgument, msg.str());
      }
      ++res.skipped_candidates;
      skipped[Z(c)] = 1;
      std::fill(res.candidate_scores.begin() + static_cast<std::ptrdiff_t>(c) * t,
                res.candidate_scores.begin() + static_cast<std::ptrdiff_t>(c + 1) * t, std::numeric_limits<float>::quiet_NaN());
      route->end_candidate();
      continue;
    }
    for (i64 bi = 0; bi < n_batches; ++bi) {
      ctx.checkpoint();
      const i64 j0 = bi * tb, w = std::min(tb, t - j0);
      if (!(keep_batch && loaded)) {
        batch.j0 = j0;
        batch.tb = w;
        batch.cols = nullptr;
        profile::Scope ps("phase load batch");
        load_batch(ctx, batch);
        loaded = true;
      }
      const ViewD acc = view<double>(*acc_buf, A, w);
      be.fill(acc, 0.0);
      auto ts = Clock::now();
      {
        profile::Scope ps("phase score");
        // this batch's share of the range, its scoring reported per fold (ctx.folds_done); a single
        // candidate's refit takes the batch's last fifth
        const double b0 = scored_from + (c1 - scored_from) * static_cast<double>(j0) / static_cast<double>(t);
        const double b1 = scored_from + (c1 - scored_from) * static_cast<double>(j0 + w) / static_cast<double>(t);
        ctx.progress_from = b0;
        ctx.progress_to = single ? b0 + 0.8 * (b1 - b0) : b1;
        ctx.batch_stage = single ? "cv" : "search";
        route->score(batch, acc);
      }
      const ViewI si = sel.index.col_range(0, w);
      const ViewD ss = sel.score.col_range(0, w), sa = sel.alpha.col_range(0, w);
      be.select_best(acc, pb.alphas, ctx.unresolved, si, ss, sa);
      if (single) {
        // CV scores, the choice, and the refit of this batch now, so that Y is read once.
        const std::vector<double> accv = ctx.download(acc), bs = ctx.download(ss), ba = ctx.download(sa);
        for (int a = 0; a < A; ++a)
          for (i64 j = 0; j < w; ++j)
            res.cv_scores[Z(a) * Z(t) + Z(j0 + j)] =
                ctx.unresolved[Z(a)] ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(accv[Z(a * w + j)]);
        for (i64 j = 0; j < w; ++j) {
          res.best_score[Z(j0 + j)] = static_cast<float>(bs[Z(j)]);
          res.best_alpha[Z(j0 + j)] = static_cast<float>(ba[Z(j)]);
          res.candidate_scores[Z(j0 + j)] = static_cast<float>(bs[Z(j)]);
        }
        t_search += since(ts);
        auto tr = Clock::now();
        ctx.checkpoint();
        const ViewF out = be.host_visible() ? coef_all.col_range(j0, w) : view<float>(*coef_dev, p, w);
        if (n_batches == 1 && !route->refit_reads_y()) {
          // (its last use: the coefficients, written next, take its pages)
          batch.y_buf.reset();
          batch.y = ViewF{};
        }
        {
          profile::Scope ps("phase refit");
          route->refit(batch, sa, out);
        }
        if (!be.host_visible()) be.copy(out, coef_all.col_range(j0, w));
        t_refit += since(tr);
      } else {
        const std::vector<double> bs = ctx.download(ss);
        for (i64 j = 0; j < w; ++j) res.candidate_scores[Z(c) * Z(t) + Z(j0 + j)] = static_cast<float>(bs[Z(j)]);
        be.improve(ss, si, c, best.score.col_range(j0, w), best.index.col_range(j0, w), best_tag.col_range(j0, w));
        t_search += since(ts);
      }
      ctx.report(scored_from + (c1 - scored_from) * static_cast<double>(j0 + w) / static_cast<double>(t), single ? "cv+refit" : "search");
    }
    route->end_candidate();
    if (!single) t_search += 0 * since(tc);
  }

  if (!single) {
    // ---- refit: targets grouped by their candidate, one all-sample decomposition per group.
    const std::vector<double> bscore = ctx.download(best.score);
    std::vector<std::int32_t> bidx(Z(t)), btag(Z(t));
    {
      BufferPtr hi = be.wrap_host(bidx.data(), DType::I32, bidx.size()), ht = be.wrap_host(btag.data(), DType::I32, btag.size());
      be.copy(best.index, vec<std::int32_t>(*hi, t));
      be.copy(best_tag, vec<std::int32_t>(*ht, t));
      be.synchronize();
    }
    if (std::any_of(bscore.begin(), bscore.end(), [](double d) { return d == -std::numeric_limits<double>::infinity(); }))
      throw Error(ErrorCode::InvalidArgument,
                  "alphas: for every band weighting, every alpha is below the float32 resolution of the weighted Gram "
                  "(1e-5·λ_max; it is singular or nearly so): use larger alphas");
    for (i64 j = 0; j < t; ++j) {
      res.best_score[Z(j)] = static_cast<float>(bscore[Z(j)]);
      res.best_candidate[Z(j)] = btag[Z(j)];
      res.best_alpha[Z(j)] = static_cast<float>(pb.alphas[Z(bidx[Z(j)])]);
    }
    auto tr = Clock::now();
    std::vector<std::vector<i64>> groups(Z(nc));
    for (i64 j = 0; j < t; ++j) groups[Z(btag[Z(j)])].push_back(j);
    if (!coef_dev) coef_dev = be.alloc(DType::F32, Z(p * tb));
    i64 done = 0;
    for (int c = 0; c < nc; ++c) {
      if (groups[Z(c)].empty()) continue;
      ++res.refit_groups;
      i64 f = 0;
      for (int b = 0; b < pb.n_bands(); ++b)
        for (i64 q = 0; q < pb.band_sizes[Z(b)]; ++q) ctx.feature_weight[Z(f++)] = pb.candidates[Z(c) * Z(pb.n_bands()) + Z(b)];
      ctx.progress_from = ctx.progress_to = 0.85 + 0.15 * static_cast<double>(done) / static_cast<double>(t);
      {
        profile::Scope ps("phase refit decompose");
        route->begin_refit(c);
      }
      const auto& g = groups[Z(c)];
      for (std::size_t c0 = 0; c0 < g.size(); c0 += Z(tb)) {
        ctx.checkpoint();
        profile::Scope ps("phase refit solve");
        std::vector<i64> chunk(g.begin() + static_cast<std::ptrdiff_t>(c0), g.begin() + static_cast<std::ptrdiff_t>(std::min(g.size(), c0 + Z(tb))));
        const i64 w = static_cast<i64>(chunk.size());
        batch.cols = &chunk;
        batch.tb = w;
        batch.j0 = 0;
        load_batch(ctx, batch);
        loaded = false;
        std::vector<double> alphas(Z(w));
        for (i64 j = 0; j < w; ++j) alphas[Z(j)] = pb.alphas[Z(bidx[Z(chunk[Z(j)])])];
        BufferPtr ab = ctx.upload(alphas);
        const ViewF out = view<float>(*coef_dev, p, w);
        route->refit(batch, vec<double>(*ab, w), out);
        // Scatter the columns into the result (host).
        std::vector<float> host(Z(p * w));
        BufferPtr hb = be.wrap_host(host.data(), DType::F32, host.size());
        be.copy(out, view<float>(*hb, p, w));
        be.synchronize();
        parallel_for(0, p, 64, [&](i64 b, i64 e) {
          for (i64 q = b; q < e; ++q)
            for (i64 j = 0; j < w; ++j) res.coef[Z(q * t + chunk[Z(j)])] = host[Z(q * w + j)];
        });
        done += w;
        ctx.report(0.85 + 0.15 * static_cast<double>(done) / static_cast<double>(t), "refit");
      }
      route->end_candidate();
    }
    batch.cols = nullptr;
    t_refit = since(tr);
  }

  // ---- outputs: intercepts, and a check that the float32 arithmetic did not overflow.
  res.intercept.resize(Z(t));
  for (i64 j = 0; j < t; ++j) res.intercept[Z(j)] = static_cast<float>(ctx.y_mean[Z(j)]);
  {
    const i64 bad = be.first_nonfinite(coef_all);
    const auto bs = std::find_if(res.best_score.begin(), res.best_score.end(), [](float s) { return !std::isfinite(s); });
    if (bad >= 0 || bs != res.best_score.end()) {
      double ymax = 0;
      for (i64 i = 0; i < pb.y.rows; ++i)
        for (i64 j = 0; j < pb.y.cols; ++j) ymax = std::max(ymax, static_cast<double>(std::fabs(pb.y.data[i * pb.y.cols + j])));
      char b[160];
      std::snprintf(b, sizeof b, "|X| up to %.3g, |Y| up to %.3g", ctx.x_abs_max.load(), ymax);
      const std::string where = bad >= 0 ? "coefficients are not finite (at feature " + std::to_string(bad / t) + ", target " +
                                               std::to_string(bad % t) + ")"
                                         : "CV scores are not finite (target " + std::to_string(bs - res.best_score.begin()) + ")";
      throw Error(ErrorCode::NonFinite, std::string(pb.what) + ": the fitted " + where +
                                            ": the float32 arithmetic overflowed (" + b + "); rescale X and Y (e.g. standardize)");
    }
  }
  // A column that is zero once prepared (constant, with an intercept) has the coefficient 0 exactly: its only
  // term in the penalised loss is α·w². The float32 eigenvectors mix it with the Gram's other weak directions
  // (review s44: 120 × 15 with duplicated rows, an all-zero and a constant column weighted up to 5e-3).
  for (const i64 q : ctx.x_null_cols) std::fill_n(res.coef.begin() + static_cast<std::ptrdiff_t>(q * t), t, 0.0f);
  res.route = spec.name;
  res.cv_method = spec.cv_method;
  res.eig_precision = ctx.precision();
  res.target_batch = tb;
  res.n_batches = n_batches;
  res.decompositions = ctx.decompositions;
  res.float32_redone = ctx.float32_redone;
  res.gemm_flops = ctx.flops;
  res.unresolved_alphas = single ? static_cast<int>(std::count(ctx.unresolved.begin(), ctx.unresolved.end(), 1)) : 0;
  res.alpha_resolution = single ? ctx.resolution : 0;
  res.seconds_setup = t_setup;
  res.seconds_search = t_search;
  res.seconds_refit = t_refit;
  res.fixed_bytes = static_cast<std::size_t>(fixed);
  res.batch_bytes = static_cast<std::size_t>(per_target * static_cast<double>(tb));
  res.budget_bytes = static_cast<std::size_t>(budget);
  res.peak_bytes = be.memory_stats().peak - base;
  res.seconds_total = since(t_start);
  if (profile::enabled()) std::fprintf(stderr, "%s profile (%s, %lld batch(es) of %lld targets):\n%s", pb.what, spec.name,
                                       static_cast<long long>(n_batches), static_cast<long long>(tb), profile::report_and_reset().c_str());
  return res;
}

}  // namespace

const std::vector<RouteSpec>& routes() {
  static const std::vector<RouteSpec> all = {
      {"per-fold-primal", "primal", "per-fold", true, make_per_fold_primal, cost_per_fold_primal},
      {"per-fold-kernel", "kernel", "per-fold", true, make_per_fold_kernel, cost_per_fold_kernel},
      {"exact-primal", "primal", "exact", false, make_exact_primal, cost_exact_primal},
      {"exact-kernel", "kernel", "exact", false, make_exact_kernel, cost_exact_kernel},
  };
  return all;
}

const RouteSpec& route_by_name(const std::string& name) {
  for (const RouteSpec& r : routes())
    if (name == r.name) return r;
  std::string names;
  for (const RouteSpec& r : routes()) names += std::string(names.empty() ? "" : ", ") + r.name;
  throw Error(ErrorCode::InvalidArgument, "route: unknown route '" + name + "' (the routes are " + names + ")");
}

const RouteSpec& choose_route(const Problem& pb, Backend& be, const std::string& route_name, const std::string& space,
                              const std::string& cv_method) {
  const bool banded = !pb.unit_weights();
  const bool automatic = route_name.empty() || route_name == "auto";
  const RouteSpec* chosen = nullptr;
  if (!automatic) {
    chosen = &route_by_name(route_name);
    if (banded && !chosen->band_weights)
      throw Error(ErrorCode::InvalidArgument, std::string("route: '") + chosen->name + "' cannot run band weights (banded ridge)");
    return *chosen;
  }
  // The cheapest allowed route by the flop model; exact routes only when their factors fit half the budget.
  const double budget = budget_of(pb, be);
  double factor_bytes = 0;
  for (int v = 0; v < pb.folds.k; ++v) factor_bytes += 4.0 * pb.n_alphas() * static_cast<double>(pb.folds.size(v)) * pb.folds.size(v);
  // A training fold of fewer samples than features (less one with the intercept's centring) makes
  // every fold's primal problem singular: its smallest alphas are then resolved only through the
  // float32 Gram's null space, and the exact primal route, whose Gram of all samples is regular,
  // does not even see it (n 60, p 55, 5 folds: CV scores 1.4e-2 off the float64 ones and 8 of 20
  // targets choosing another alpha). The kernel routes stay regular there, so the choice is theirs.
  const bool primal_singular = pb.n() - pb.folds.max_size() - (pb.fit_intercept ? 1 : 0) < pb.p();
  // Under Pearson scoring the exact routes' held-out predictions are y − e, e the float32 residual: where shrinkage
  // leaves a prediction small beside y (α ≫ λ, weak targets) only its first digits survive and the score turns to
  // noise (0.1–1 off the float64 one at α ≈ 1e4·λ_max, and that noise chose the alpha). R² reads e itself. So the
  // exact routes score Pearson only when asked for (cvMethod 'exact' or by name).
  const bool exact_allowed = !(pb.score == ScoreKind::Pearson && cv_method == "auto");
  std::vector<std::pair<double, const RouteSpec*>> allowed;
  for (const RouteSpec& r : routes()) {
    if (banded && !r.band_weights) continue;
    if (space != "auto" && space != r.space) continue;
    if (space == "auto" && primal_singular && std::string(r.space) == "primal") continue;
    if (cv_method != "auto" && cv_method != r.cv_method) continue;
    if (std::string(r.cv_method) == "exact" && !exact_allowed) continue;
    if (std::string(r.cv_method) == "exact" && cv_method != "exact" && factor_bytes > budget / 2) continue;
    allowed.emplace_back(r.cost(pb).total, &r);
  }
  if (allowed.empty()) return route_by_name(space == "kernel" ? "per-fold-kernel" : "per-fold-primal");
  std::stable_sort(allowed.begin(), allowed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  // The cheapest whose least footprint (its fixed part and one target) fits the budget: the cheapest of all may not
  // where another does (X 200×50 at 1.3 MB: exact-primal refused, per-fold-primal fits, review s43). None fits: the
  // cheapest, whose refusal names what it needs.
  for (const auto& [cost, r] : allowed) {
    (void)cost;
    const MemoryPlan m = estimate_memory(pb, be, *r);
    if (m.least() <= m.budget) return *r;
  }
  return *allowed.front().second;
}

EngineResult run(const Problem& pb, Backend& be, const std::string& route_name, const std::string& space, const std::string& cv_method) {
  check_problem(pb);
  const DeviceFit counted(be);
  // (the fit's flag for Context::checkpoint and for linalg's long operations, which poll it between their blocks)
  const CancelScope cancel_scope(pb.cancel, pb.what);
  const bool automatic = route_name.empty() || route_name == "auto";
  const RouteSpec* chosen = &choose_route(pb, be, route_name, space, cv_method);
  try {
    try {
      return attempt(pb, be, *chosen);
    } catch (const Error& e) {
      // (I − H_vv) can be numerically singular when alphas are tiny; when the choice was ours, the
      // per-fold route of the same space needs no such factorisation.
      if (e.code() != ErrorCode::NumericalFailure || cv_method != "auto" || !automatic || std::string(chosen->cv_method) != "exact") throw;
      return attempt(pb, be, route_by_name(std::string("per-fold-") + chosen->space));
    }
  } catch (const std::bad_alloc&) {
    throw Error::allocation_failed(std::string(pb.what) + ": out of memory for X " + std::to_string(pb.n()) + "×" +
                                   std::to_string(pb.p()) + ", Y " + std::to_string(pb.n()) + "×" + std::to_string(pb.t()) +
                                   "; lower memoryBudget or the number of targets per fit");
  }
}

}  // namespace brainlatent::ridge
