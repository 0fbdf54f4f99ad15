// The CPU backend: BLAS/LAPACK (any vendor, through linalg.h) for the dense algebra and
// parallel_for loops for the element-wise and reduction kernels. Device buffers are host memory,
// so wrapped host memory (JS typed arrays) is used in place and copy() onto itself is free.
#include "cpu_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <limits>
#include <new>
#include <string>

#include "brainlatent/blas_core.h"
#include "brainlatent/host_memory.h"
#include "brainlatent/linalg.h"
#include "brainlatent/parallel.h"
#include "brainlatent/profile.h"
#include "../backend_checks.h"

namespace brainlatent {
namespace {

using i64 = std::int64_t;

using checks::dims;
using checks::need_shape;
using checks::need_vec;
using checks::vstep;

template <typename T>
const T* vptr(const View<T>& v) {
  return v.empty() ? nullptr : v.ptr();
}

double shrink_weight(Shrink kind, double lam, double alpha) {
  switch (kind) {
    case Shrink::Inverse: return 1.0 / (lam + alpha);
    case Shrink::Complement: return alpha / (lam + alpha);
    case Shrink::SqrtInverse: return std::sqrt(1.0 / (lam + alpha));
    case Shrink::SqrtComplement: return std::sqrt(alpha / (lam + alpha));
  }
  return 0;
}

// Column-block width of the reductions: enough columns per thread to stream rows contiguously.
constexpr i64 kColChunk = 256;

// The batch's views (checked by the caller: checks::sampler_init / sampler_step) as sd_fused_step.h's FusedBatch.
FusedBatch fused_batch(const SamplerBatch& b) {
  FusedBatch fb;
  fb.images = b.images;
  fb.per_image = b.per_image;
  fb.groups = b.groups;
  fb.x = b.x.ptr();
  fb.eps = b.eps.empty() ? nullptr : b.eps.ptr();  // (sampler_init has none yet)
  fb.unet_in = b.unet_in.ptr();
  for (int h = 0; h < kHistorySlots; ++h)
    if (!b.history[h].empty()) fb.history[h] = b.history[h].ptr();
  fb.step_noise = b.step_noise.empty() ? nullptr : b.step_noise.ptr();
  fb.keys = b.keys.empty() ? nullptr : b.keys.data();
  return fb;
}

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  std::string description() const override { return cpu_backend_description(); }
  bool supports(Op op, DType dtype) const override {
    switch (op) {
      case Op::Gemm:
      case Op::Eigh:
      case Op::Tridiagonalize:
      case Op::Cholesky:
      case Op::CholeskySolve:
      case Op::Copy:
      case Op::Fill: return dtype == DType::F32 || dtype == DType::F64 || (op == Op::Copy && dtype == DType::I32);
      case Op::CholeskyInverse: return dtype == DType::F32 || dtype == DType::F64;
      case Op::Convert: return dtype == DType::F32 || dtype == DType::F64;
      case Op::SelectBest:
      case Op::Improve: return dtype == DType::F64;
      case Op::Count_: return false;
      default: return dtype == DType::F32;  // (SamplerInit, SamplerStep included)
    }
  }

  // ---- memory
  // A counted, 64-byte aligned block (whole cache lines for BLAS panels and vector loops; huge
  // pages from 2 MiB, host_memory.h) as a
  // buffer of the given residence; the buffer frees it and uncounts it.
  BufferPtr counted(DType dtype, std::size_t count, Residence residence) {
    const std::size_t bytes = count * dtype_size(dtype);
    count_alloc(bytes, "allocating a work buffer");
    void* p = nullptr;
    if (bytes > 0) {
      p = alloc_pages(bytes);
      if (!p) {
        count_free(bytes);
        throw Error::allocation_failed("allocating a work buffer of " + std::to_string(bytes) + " bytes failed");
      }
    }
    return std::make_unique<Buffer>(this, dtype, count, p, residence, [this, bytes](void* q) {
      free_pages(q);
      count_free(bytes);
    });
  }
  BufferPtr alloc(DType dtype, std::size_t count) override { return counted(dtype, count, Residence::Device); }
  BufferPtr alloc_host(DType dtype, std::size_t count) override { return counted(dtype, count, Residence::Host); }
  BufferPtr wrap_host(void* data, DType dtype, std::size_t count) override {
    return std::make_unique<Buffer>(this, dtype, count, data, Residence::Host, nullptr);
  }

  bool host_visible() const override { return true; }

  std::size_t memory_available() const override {
    const long pages = sysconf(_SC_AVPHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0) return std::numeric_limits<std::size_t>::max();
    return static_cast<std::size_t>(pages) * static_cast<std::size_t>(size);
  }

  template <typename T>
  void copy_impl(const View<T>& src, const View<T>& dst) {
    profile::Scope ps("op copy");
    need_shape(dst, src.rows, src.cols, "copy", "destination");
    if (src.size() == 0 || (src.ptr() == dst.ptr() && src.ld == dst.ld)) return;
    const std::size_t row_bytes = static_cast<std::size_t>(src.cols) * sizeof(T);
    if (src.contiguous() && dst.contiguous()) {
      std::memmove(dst.ptr(), src.ptr(), row_bytes * static_cast<std::size_t>(src.rows));
      return;
    }
    parallel_for(0, src.rows, 256, [&](i64 b, i64 e) {
      for (i64 i = b; i < e; ++i) std::memmove(dst.ptr() + i * dst.ld, src.ptr() + i * src.ld, row_bytes);
    });
  }
  void copy(const ViewF& src, const ViewF& dst) override { copy_impl(src, dst); }
  void copy(const ViewD& src, const ViewD& dst) override { copy_impl(src, dst); }
  void copy(const ViewI& src, const ViewI& dst) override { copy_impl(src, dst); }
  void synchronize() override {}

  // ---- BLAS / LAPACK
  template <typename T>
  void gemm_impl(bool ta, bool tb, T alpha, const View<T>& a, const View<T>& b, T beta, const View<T>& c) {
    const auto [m, n, k] = checks::gemm(ta, tb, a, b, c);
    profile::Scope ps(sizeof(T) == 4 ? "op gemm f32" : "op gemm f64", 2.0 * double(m) * double(n) * double(k));
    if (m == 0 || n == 0) return;
    if (k == 0) {  // C = β·C (BLAS rejects the zero leading dimensions of empty operands)
      scale_view(c, beta);
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    linalg::gemm(ta, tb, m, n, k, alpha, a.ptr(), a.ld, b.ptr(), b.ld, beta, c.ptr(), c.ld);
    if (profile::each_call()) {
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "gemm %c%c m %lld n %lld k %lld (ld %lld %lld %lld): %.4f s, %.1f GFLOP/s\n", ta ? 'T' : 'N', tb ? 'T' : 'N',
                   static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(a.ld),
                   static_cast<long long>(b.ld), static_cast<long long>(c.ld), sec, 2.0 * m * n * k / sec / 1e9);
    }
  }
  template <typename T>
  void scale_view(const View<T>& c, T beta) {
    for (i64 i = 0; i < c.rows; ++i)
      for (i64 j = 0; j < c.cols; ++j) c.ptr()[i * c.ld + j] = beta == T(0) ? T(0) : c.ptr()[i * c.ld + j] * beta;
  }
  void gemm(bool ta, bool tb, float alpha, const ViewF& a, const ViewF& b, float beta, const ViewF& c) override {
    gemm_impl(ta, tb, alpha, a, b, beta, c);
  }
  void gemm(bool ta, bool tb, double alpha, const ViewD& a, const ViewD& b, double beta, const ViewD& c) override {
    gemm_impl(ta, tb, alpha, a, b, beta, c);
  }

  void syrk(bool trans, float alpha, const ViewF& a, float beta, const ViewF& c) override {
    const i64 n = trans ? a.cols : a.rows, k = trans ? a.rows : a.cols;
    need_shape(c, n, n, "syrk", "C");
    profile::Scope ps("op syrk", double(n) * double(n) * double(k));
    if (n == 0) return;
    if (k == 0) {
      scale_view(c, beta);
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (trans) linalg::gram(k, n, a.ptr(), a.ld, alpha, beta, c.ptr(), c.ld);
    else linalg::outer_gram(n, k, a.ptr(), a.ld, alpha, beta, c.ptr(), c.ld);
    if (profile::each_call()) {
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "syrk%c n %lld k %lld (ld %lld %lld): %.4f s, %.1f GFLOP/s\n", trans ? 'T' : 'N', static_cast<long long>(n),
                   static_cast<long long>(k), static_cast<long long>(a.ld), static_cast<long long>(c.ld), sec, double(n) * n * k / sec / 1e9);
    }
  }

  template <typename T>
  void eigh_impl(const View<T>& a, const View<T>& w, const View<T>* scratch = nullptr) {
    const i64 n = a.rows;
    need_shape(a, n, n, "eigh", "A");
    need_vec(w, n, "eigh", "w");
    if (n == 0) return;
    if (!w.contiguous()) throw Error(ErrorCode::InvalidArgument, "eigh: w must be contiguous");
    if (scratch && !scratch->contiguous()) throw Error(ErrorCode::InvalidArgument, "eigh: scratch must be contiguous");
    profile::Scope ps(sizeof(T) == 4 ? "op eigh f32" : "op eigh f64");
    // (a scratch with room holds the workspace: only its small vectors are new)
    const std::size_t room = scratch ? static_cast<std::size_t>(scratch->rows * scratch->cols) : 0;
    const bool in_scratch = room > 0 && room >= linalg::eigh_scratch_count(n, sizeof(T));
    const std::size_t ws = in_scratch ? (3 + 5 * static_cast<std::size_t>(n)) * (sizeof(int) + sizeof(T)) : linalg::eigh_workspace_bytes(n, sizeof(T));
    count_alloc(ws, "eigendecomposition workspace");
    try {
      if constexpr (sizeof(T) == 4) {
        if (in_scratch) linalg::eigh(n, a.ptr(), a.ld, w.ptr(), scratch->ptr(), room);
        else linalg::eigh(n, a.ptr(), a.ld, w.ptr());
      } else {
        linalg::eigh(n, a.ptr(), a.ld, w.ptr());
      }
    } catch (...) {
      count_free(ws);
      throw;
    }
    count_free(ws);
  }
  void eigh(const ViewF& a, const ViewF& w) override { eigh_impl(a, w); }
  void eigh(const ViewD& a, const ViewD& w) override { eigh_impl(a, w); }
  std::size_t eigh_scratch_count(std::int64_t n) const override { return linalg::eigh_scratch_count(n, sizeof(float)); }
  void eigh_in_scratch(const ViewF& a, const ViewF& w, const ViewF& scratch) override { eigh_impl(a, w, &scratch); }

  template <typename T>
  bool tridiagonalize_impl(const View<T>& a, const View<T>& d, const View<T>& e, const View<T>* scratch) {
    const i64 n = a.rows;
    need_shape(a, n, n, "tridiagonalize", "A");
    need_vec(d, n, "tridiagonalize", "d");
    need_vec(e, n, "tridiagonalize", "e");
    if (n == 0) return true;
    if (!d.contiguous() || !e.contiguous()) throw Error(ErrorCode::InvalidArgument, "tridiagonalize: d and e must be contiguous");
    if (scratch && !scratch->empty() && !scratch->contiguous()) throw Error(ErrorCode::InvalidArgument, "tridiagonalize: scratch must be contiguous");
    profile::Scope ps(sizeof(T) == 4 ? "op tridiagonalize f32" : "op tridiagonalize f64");
    const std::size_t room = scratch ? static_cast<std::size_t>(scratch->rows * scratch->cols) : 0;
    const bool in_scratch = room > 0 && room >= linalg::tridiagonalize_scratch_count(n);
    const std::size_t ws = (in_scratch ? 0 : linalg::tridiagonalize_scratch_count(n) * sizeof(T)) + static_cast<std::size_t>(n) * sizeof(T);
    count_alloc(ws, "tridiagonal reduction workspace");
    try {
      const bool done = linalg::tridiagonalize(n, a.ptr(), a.ld, d.ptr(), e.ptr(), in_scratch ? scratch->ptr() : nullptr, in_scratch ? room : 0);
      count_free(ws);
      return done;
    } catch (...) {
      count_free(ws);
      throw;
    }
  }
  bool tridiagonalize(const ViewF& a, const ViewF& d, const ViewF& e, const ViewF& scratch) override {
    return tridiagonalize_impl(a, d, e, &scratch);
  }
  bool tridiagonalize(const ViewD& a, const ViewD& d, const ViewD& e) override { return tridiagonalize_impl<double>(a, d, e, nullptr); }

  bool cholesky(const ViewF& a) override {
    profile::Scope ps("op cholesky");
    need_shape(a, a.rows, a.rows, "cholesky", "A");
    return linalg::cholesky(a.rows, a.ptr(), std::max<i64>(1, a.ld));
  }
  bool cholesky(const ViewD& a) override {
    profile::Scope ps("op cholesky");
    need_shape(a, a.rows, a.rows, "cholesky", "A");
    return linalg::cholesky(a.rows, a.ptr(), std::max<i64>(1, a.ld));
  }
  void cholesky_solve(const ViewF& f, const ViewF& b) override {
    profile::Scope ps("op cholesky_solve");
    need_shape(f, b.rows, b.rows, "cholesky_solve", "factor");
    if (b.size() == 0) return;
    linalg::cholesky_solve_cols(b.rows, f.ptr(), f.ld, b.cols, b.ptr(), b.ld);
  }
  void cholesky_solve(const ViewD& f, const ViewD& b) override {
    profile::Scope ps("op cholesky_solve");
    need_shape(f, b.rows, b.rows, "cholesky_solve", "factor");
    if (b.size() == 0) return;
    linalg::cholesky_solve_cols(b.rows, f.ptr(), f.ld, b.cols, b.ptr(), b.ld);
  }
  template <typename T>
  void cholesky_inverse_impl(const View<T>& a) {
    profile::Scope ps(sizeof(T) == 4 ? "op cholesky_inverse f32" : "op cholesky_inverse f64");
    need_shape(a, a.rows, a.rows, "cholesky_inverse", "A");
    linalg::cholesky_inverse(a.rows, a.ptr(), std::max<i64>(1, a.ld));
  }
  void cholesky_inverse(const ViewF& a) override { cholesky_inverse_impl(a); }
  void cholesky_inverse(const ViewD& a) override { cholesky_inverse_impl(a); }

  // ---- element-wise kernels
  // Runs fn(i, row_of_a) over the rows of a in parallel, in chunks of at least kRowsOfGrain elements:
  // parallel_for spawns its threads per call, and a chunk of 16,384 (a 313² kernel in two, ~25 µs each)
  // paid more for the spawns than it saved — 1,970 such calls cost 1.7 s of a 44 s banded fit on a loaded
  // machine, 0.4 s on one thread.
  static constexpr i64 kRowsOfGrain = i64{1} << 18;
  template <typename T, typename Fn>
  static void rows_of(const View<T>& a, Fn&& fn) {
    if (a.size() == 0) return;
    const i64 grain = std::max<i64>(1, kRowsOfGrain / std::max<i64>(1, a.cols));
    parallel_for(0, a.rows, grain, [&](i64 b, i64 e) {
      for (i64 i = b; i < e; ++i) fn(i, a.ptr() + i * a.ld);
    });
  }

  void fill(const ViewF& a, float value) override {
    rows_of(a, [&](i64, float* r) { std::fill(r, r + a.cols, value); });
  }
  void fill(const ViewD& a, double value) override {
    rows_of(a, [&](i64, double* r) { std::fill(r, r + a.cols, value); });
  }

  template <typename S, typename D>
  void convert_impl(const View<S>& src, const View<D>& dst, double scale, double shift, double diag) {
    profile::Scope ps("op convert");
    need_shape(dst, src.rows, src.cols, "convert", "destination");
    rows_of(dst, [&](i64 i, D* d) {
      const S* s = src.ptr() + i * src.ld;
      // (the diagonal term outside the loop, so that it vectorises)
      for (i64 j = 0; j < dst.cols; ++j) d[j] = static_cast<D>(scale * static_cast<double>(s[j]) + shift);
      if (diag != 0.0 && i < dst.cols) d[i] = static_cast<D>(scale * static_cast<double>(s[i]) + shift + diag);
    });
  }
  void convert(const ViewF& src, const ViewD& dst, double scale, double shift, double diag) override {
    convert_impl(src, dst, scale, shift, diag);
  }
  void convert(const ViewD& src, const ViewF& dst, double scale, double shift, double diag) override {
    convert_impl(src, dst, scale, shift, diag);
  }

  void axpby(float alpha, const ViewF& x, float beta, const ViewF& y) override {
    profile::Scope ps("op elementwise");
    need_shape(y, x.rows, x.cols, "axpby", "y");
    rows_of(y, [&](i64 i, float* d) {
      const float* s = x.ptr() + i * x.ld;
      if (beta == 1.0f) {
        for (i64 j = 0; j < y.cols; ++j) d[j] += alpha * s[j];
      } else {
        for (i64 j = 0; j < y.cols; ++j) d[j] = alpha * s[j] + beta * d[j];
      }
    });
  }

  void scale_rows_cols(const ViewF& a, const ViewD& r, const ViewD& c) override {
    profile::Scope ps("op elementwise");
    if (!r.empty()) need_vec(r, a.rows, "scale_rows_cols", "row scale");
    if (!c.empty()) need_vec(c, a.cols, "scale_rows_cols", "column scale");
    const double* rp = vptr(r);
    const double* cp = vptr(c);
    const i64 rs = r.empty() ? 0 : vstep(r), cs = c.empty() ? 0 : vstep(c);
    rows_of(a, [&](i64 i, float* d) {
      const double ri = rp ? rp[i * rs] : 1.0;
      if (cp) {
        for (i64 j = 0; j < a.cols; ++j) d[j] = static_cast<float>(d[j] * ri * cp[j * cs]);
      } else {
        for (i64 j = 0; j < a.cols; ++j) d[j] = static_cast<float>(d[j] * ri);
      }
    });
  }

  void add_outer(const ViewF& a, double alpha, const ViewD& u, const ViewD& v) override {
    profile::Scope ps("op elementwise");
    if (!u.empty()) need_vec(u, a.rows, "add_outer", "u");
    if (!v.empty()) need_vec(v, a.cols, "add_outer", "v");
    const double* up = vptr(u);
    const double* vp = vptr(v);
    const i64 us = u.empty() ? 0 : vstep(u), vs = v.empty() ? 0 : vstep(v);
    rows_of(a, [&](i64 i, float* d) {
      const double ui = alpha * (up ? up[i * us] : 1.0);
      for (i64 j = 0; j < a.cols; ++j) d[j] = static_cast<float>(d[j] + ui * (vp ? vp[j * vs] : 1.0));
    });
  }

  void add_broadcast(const ViewF& a, const ViewD& r, const ViewD& c, double shift) override {
    profile::Scope ps("op elementwise");
    if (!r.empty()) need_vec(r, a.rows, "add_broadcast", "r");
    if (!c.empty()) need_vec(c, a.cols, "add_broadcast", "c");
    const double* rp = vptr(r);
    const double* cp = vptr(c);
    const i64 rs = r.empty() ? 0 : vstep(r), cs = c.empty() ? 0 : vstep(c);
    rows_of(a, [&](i64 i, float* d) {
      const double ri = (rp ? rp[i * rs] : 0.0) + shift;
      for (i64 j = 0; j < a.cols; ++j) d[j] = static_cast<float>(d[j] + ri + (cp ? cp[j * cs] : 0.0));
    });
  }

  void row_sums(const ViewF& a, const ViewD& out, double scale) override {
    need_vec(out, a.rows, "row_sums", "out");
    const i64 os = vstep(out);
    if (a.rows == 0) return;
    if (a.cols == 0) {
      for (i64 i = 0; i < a.rows; ++i) out.ptr()[i * os] = 0;
      return;
    }
    rows_of(a, [&](i64 i, float* r) {
      double s = 0;
      for (i64 j = 0; j < a.cols; ++j) s += r[j];
      out.ptr()[i * os] = scale * s;
    });
  }

  void col_sums(const ViewF& a, const ViewD& out, double scale) override {
    need_vec(out, a.cols, "col_sums", "out");
    const i64 os = vstep(out);
    parallel_for(0, a.cols, kColChunk, [&](i64 b, i64 e) {
      std::vector<double> s(static_cast<std::size_t>(e - b), 0.0);
      for (i64 i = 0; i < a.rows; ++i) {
        const float* r = a.ptr() + i * a.ld;
        for (i64 j = b; j < e; ++j) s[static_cast<std::size_t>(j - b)] += r[j];
      }
      for (i64 j = b; j < e; ++j) out.ptr()[j * os] = scale * s[static_cast<std::size_t>(j - b)];
    });
  }

  // ---- ridge kernels
  void shrink(const ViewF& src, const ViewD& lam, const ViewD& alphas, Shrink kind, Axis axis, const ViewF& dst) override {
    profile::Scope ps("op shrink");
    const i64 r = checks::shrink(src, lam, alphas, axis, dst);
    const i64 na = alphas.size();
    const i64 ls = vstep(lam), as = na > 0 ? vstep(alphas) : 1;
    // The weights of every (alpha, eigen-index) pair, computed once.
    std::vector<double> w(static_cast<std::size_t>(na * r));
    for (i64 a = 0; a < na; ++a)
      for (i64 k = 0; k < r; ++k) w[static_cast<std::size_t>(a * r + k)] = shrink_weight(kind, lam.ptr()[k * ls], alphas.ptr()[a * as]);
    rows_of(dst, [&](i64 row, float* d) {
      const i64 a = row / src.rows, i = row % src.rows;
      const float* s = src.ptr() + i * src.ld;
      const double* wa = w.data() + a * r;
      if (axis == Axis::Cols) {
        for (i64 j = 0; j < src.cols; ++j) d[j] = static_cast<float>(s[j] * wa[j]);
      } else {
        const double wi = wa[i];
        for (i64 j = 0; j < src.cols; ++j) d[j] = static_cast<float>(s[j] * wi);
      }
    });
  }

  void shrink_targets(const ViewF& src, const ViewD& lam, const ViewD& alpha, Shrink kind, const ViewF& dst) override {
    profile::Scope ps("op shrink_targets");
    checks::shrink_targets(src, lam, alpha, dst);
    const i64 ls = vstep(lam), as = vstep(alpha);
    // The alphas once, contiguous; the weight's kind chosen outside the loops (they vectorise).
    std::vector<double> al(static_cast<std::size_t>(src.cols));
    for (i64 j = 0; j < src.cols; ++j) al[static_cast<std::size_t>(j)] = alpha.ptr()[j * as];
    const double* ap = al.data();
    const bool in_place = src.buf == dst.buf && src.offset == dst.offset && src.ld == dst.ld;
    rows_of(dst, [&](i64 k, float* d) {
      const float* s = src.ptr() + k * src.ld;
      const double l = lam.ptr()[k * ls];
      const i64 m = src.cols;
      switch (kind) {
        case Shrink::Inverse:
          // (in place its own loop: with s == d the compiler's overlap check picks the scalar one)
          if (in_place)
            for (i64 j = 0; j < m; ++j) d[j] = static_cast<float>(d[j] / (l + ap[j]));
          else
            for (i64 j = 0; j < m; ++j) d[j] = static_cast<float>(s[j] / (l + ap[j]));
          break;
        case Shrink::Complement:
          for (i64 j = 0; j < m; ++j) d[j] = static_cast<float>(s[j] * ap[j] / (l + ap[j]));
          break;
        default:
          for (i64 j = 0; j < m; ++j) d[j] = static_cast<float>(s[j] * shrink_weight(kind, l, ap[j]));
      }
    });
  }

  // T + αI = L D Lᵀ along a tridiagonal basis (tri_shrink): a pivot below α·2⁻²⁰ (T + αI not positive
  // definite: an alpha below the basis's resolution, whose results the ridge engine discards) is taken
  // as that, so that it stays finite. For positive semidefinite T every pivot is at least α.
  static double tri_pivot(double p, double alpha) { return std::max(p, alpha * 0x1p-20); }
  // Columns per sweep of the tridiagonal solves: the sweep's rows × width doubles within ~1 MiB
  // (the backward sweep then reads the forward one's rows from cache), in multiples of 16.
  // The most distinct alphas tri_shrink_targets factors once each (tables of rows × that many).
  static constexpr std::size_t kTriTable = 64;
  static i64 tri_width(i64 rows) { return std::clamp<i64>((i64{1} << 17) / std::max<i64>(1, rows) / 16 * 16, 16, 256); }

  void tri_shrink(const ViewF& src, const ViewD& d, const ViewD& e, const ViewD& alphas, Shrink kind, const ViewF& dst) override {
    profile::Scope ps("op tri_shrink");
    const i64 na = alphas.size();
    checks::tri_shrink("tri_shrink", src, d, e, na, dst);
    const i64 r = src.rows, c = src.cols;
    if (r == 0 || c == 0 || na == 0) return;
    const i64 ds = vstep(d), es = vstep(e), as = vstep(alphas);
    const bool solve = kind == Shrink::Inverse || kind == Shrink::Complement;
    const bool complement = kind == Shrink::Complement || kind == Shrink::SqrtComplement;
    // Per alpha a, row k: l[a·r + k] = e[k]/D[k]; f = 1/D[k] (solves: the scale applied at the end) or √(scale/D[k]) (factors)
    std::vector<double> l(static_cast<std::size_t>(na * r)), f(static_cast<std::size_t>(na * r)), scale(static_cast<std::size_t>(na));
    for (i64 a = 0; a < na; ++a) {
      const double alpha = alphas.ptr()[a * as];
      scale[static_cast<std::size_t>(a)] = complement ? alpha : 1.0;
      double piv = tri_pivot(d.ptr()[0] + alpha, alpha);
      for (i64 k = 0; k < r; ++k) {
        const std::size_t K = static_cast<std::size_t>(a * r + k);
        f[K] = solve ? 1.0 / piv : std::sqrt(scale[static_cast<std::size_t>(a)] / piv);
        if (k + 1 < r) {
          const double ek = e.ptr()[k * es];
          l[K] = ek / piv;
          piv = tri_pivot(d.ptr()[(k + 1) * ds] + alpha - ek * ek / piv, alpha);
        }
      }
    }
    // Each thread sweeps its columns whole, row by row (rows of a view are far apart: a sweep along
    // narrow blocks of them missed the cache on every row, 3–5× slower), every alpha in one pass over src.
    parallel_for(0, c, 16, [&](i64 b, i64 en) {
      const i64 m = en - b;
      std::vector<double> prev(static_cast<std::size_t>(na * m));
      // forward: y_k = s_k − l_{k−1}·y_{k−1}; out_k = y_k·f_k
      for (i64 k = 0; k < r; ++k) {
        const float* sr = src.ptr() + k * src.ld + b;
        for (i64 a = 0; a < na; ++a) {
          float* o = dst.ptr() + (a * r + k) * dst.ld + b;
          double* pa = prev.data() + a * m;
          const double fk = f[static_cast<std::size_t>(a * r + k)], lk = k > 0 ? l[static_cast<std::size_t>(a * r + k - 1)] : 0.0;
          if (k == 0) {
            for (i64 j = 0; j < m; ++j) {
              pa[j] = sr[j];
              o[j] = static_cast<float>(sr[j] * fk);
            }
          } else {
            for (i64 j = 0; j < m; ++j) {
              const double y = sr[j] - lk * pa[j];
              pa[j] = y;
              o[j] = static_cast<float>(y * fk);
            }
          }
        }
      }
      if (!solve) return;
      // backward: x_k = z_k − l_k·x_{k+1}, z = y/D held in out; out_k = scale·x_k
      for (i64 a = 0; a < na; ++a) {
        double* pa = prev.data() + a * m;
        const double sc = scale[static_cast<std::size_t>(a)];
        for (i64 k = r - 1; k >= 0; --k) {
          float* o = dst.ptr() + (a * r + k) * dst.ld + b;
          if (k + 1 == r) {
            for (i64 j = 0; j < m; ++j) {
              pa[j] = o[j];
              o[j] = static_cast<float>(sc * pa[j]);
            }
            continue;
          }
          const double lk = l[static_cast<std::size_t>(a * r + k)];
          for (i64 j = 0; j < m; ++j) {
            const double x = o[j] - lk * pa[j];
            pa[j] = x;
            o[j] = static_cast<float>(sc * x);
          }
        }
      }
    });
  }

  void tri_shrink_targets(const ViewF& src, const ViewD& d, const ViewD& e, const ViewD& alpha, Shrink kind, const ViewF& dst) override {
    profile::Scope ps("op tri_shrink_targets");
    checks::tri_shrink("tri_shrink_targets", src, d, e, 1, dst);
    need_vec(alpha, src.cols, "tri_shrink_targets", "alphas");
    if (kind != Shrink::Inverse && kind != Shrink::Complement)
      throw Error(ErrorCode::InvalidArgument, "tri_shrink_targets: expected the Inverse or Complement shrinkage");
    const i64 r = src.rows, c = src.cols;
    if (r == 0 || c == 0) return;
    const i64 ds = vstep(d), es = vstep(e), as = vstep(alpha);
    const bool complement = kind == Shrink::Complement;
    std::vector<double> dd(static_cast<std::size_t>(r)), ee(static_cast<std::size_t>(r));
    for (i64 k = 0; k < r; ++k) dd[static_cast<std::size_t>(k)] = d.ptr()[k * ds], ee[static_cast<std::size_t>(k)] = e.ptr()[k * es];
    // Few distinct alphas (a refit's chosen ones from the grid, a chunk of projections' one per block of
    // columns): each one's factors once, in tables by row, and every thread sweeps its columns whole,
    // row by row. (Rows of a view are far apart: narrow blocks of them missed the cache on every row.)
    std::vector<double> distinct;
    for (i64 j = 0; j < c && distinct.size() <= kTriTable; ++j) {
      const double a = alpha.ptr()[j * as];
      if (std::find(distinct.begin(), distinct.end(), a) == distinct.end()) distinct.push_back(a);
    }
    if (distinct.size() <= kTriTable) {
      const i64 D = static_cast<i64>(distinct.size());
      // lt[k·D + q] = l_k at alpha q, ft[k·D + q] = 1/D_k at alpha q
      std::vector<double> lt(static_cast<std::size_t>(r * D)), ft(static_cast<std::size_t>(r * D));
      for (i64 q = 0; q < D; ++q) {
        const double al = distinct[static_cast<std::size_t>(q)];
        double piv = tri_pivot(dd[0] + al, al);
        for (i64 k = 0; k < r; ++k) {
          ft[static_cast<std::size_t>(k * D + q)] = 1.0 / piv;
          if (k + 1 < r) {
            lt[static_cast<std::size_t>(k * D + q)] = ee[static_cast<std::size_t>(k)] / piv;
            piv = tri_pivot(dd[static_cast<std::size_t>(k + 1)] + al - ee[static_cast<std::size_t>(k)] * ee[static_cast<std::size_t>(k)] / piv, al);
          }
        }
      }
      parallel_for(0, c, 16, [&](i64 b, i64 en) {
        const i64 m = en - b;
        std::vector<int> idx(static_cast<std::size_t>(m));
        std::vector<double> prev(static_cast<std::size_t>(m)), sc(static_cast<std::size_t>(m));
        for (i64 j = 0; j < m; ++j) {
          const double a = alpha.ptr()[(b + j) * as];
          idx[static_cast<std::size_t>(j)] = static_cast<int>(std::find(distinct.begin(), distinct.end(), a) - distinct.begin());
          sc[static_cast<std::size_t>(j)] = complement ? a : 1.0;
        }
        const int* ix = idx.data();
        double* pv = prev.data();
        for (i64 k = 0; k < r; ++k) {
          const float* sr = src.ptr() + k * src.ld + b;
          float* o = dst.ptr() + k * dst.ld + b;
          const double* fk = ft.data() + k * D;
          if (k == 0) {
            for (i64 j = 0; j < m; ++j) pv[j] = sr[j], o[j] = static_cast<float>(sr[j] * fk[ix[j]]);
            continue;
          }
          const double* lk = lt.data() + (k - 1) * D;
          for (i64 j = 0; j < m; ++j) {
            const double y = sr[j] - lk[ix[j]] * pv[j];
            pv[j] = y;
            o[j] = static_cast<float>(y * fk[ix[j]]);
          }
        }
        for (i64 k = r - 1; k >= 0; --k) {
          float* o = dst.ptr() + k * dst.ld + b;
          if (k + 1 == r) {
            for (i64 j = 0; j < m; ++j) pv[j] = o[j], o[j] = static_cast<float>(sc[static_cast<std::size_t>(j)] * pv[j]);
            continue;
          }
          const double* lk = lt.data() + k * D;
          for (i64 j = 0; j < m; ++j) {
            const double x = o[j] - lk[ix[j]] * pv[j];
            pv[j] = x;
            o[j] = static_cast<float>(sc[static_cast<std::size_t>(j)] * x);
          }
        }
      });
      return;
    }
    // Many distinct alphas: each column's pivots as it goes, in blocks of columns.
    parallel_for(0, c, 16, [&](i64 b, i64 en) {
      const i64 w = tri_width(r);
      // per column of the sweep: its alpha, the running pivot and y (forward) or x (backward); l per row
      std::vector<double> al(static_cast<std::size_t>(w)), piv(static_cast<std::size_t>(w)), prev(static_cast<std::size_t>(w));
      std::vector<double> l(static_cast<std::size_t>(r * w));
      for (i64 j0 = b; j0 < en; j0 += w) {
        const i64 m = std::min(w, en - j0);
        for (i64 j = 0; j < m; ++j) al[static_cast<std::size_t>(j)] = alpha.ptr()[(j0 + j) * as];
        for (i64 k = 0; k < r; ++k) {
          const float* s = src.ptr() + k * src.ld + j0;
          float* o = dst.ptr() + k * dst.ld + j0;
          double* lk = l.data() + k * w;
          const double* lp = k > 0 ? l.data() + (k - 1) * w : nullptr;
          const double dk = dd[static_cast<std::size_t>(k)], ek = ee[static_cast<std::size_t>(k)], ep = k > 0 ? ee[static_cast<std::size_t>(k - 1)] : 0.0;
          for (i64 j = 0; j < m; ++j) {
            const std::size_t J = static_cast<std::size_t>(j);
            const double p = tri_pivot(dk + al[J] - (k > 0 ? lp[j] * ep : 0.0), al[J]);
            const double y = s[j] - (k > 0 ? lp[j] * prev[J] : 0.0);
            prev[J] = y;
            lk[j] = ek / p;
            o[j] = static_cast<float>(y / p);
          }
        }
        for (i64 k = r - 1; k >= 0; --k) {
          float* o = dst.ptr() + k * dst.ld + j0;
          const double* lk = l.data() + k * w;
          for (i64 j = 0; j < m; ++j) {
            const std::size_t J = static_cast<std::size_t>(j);
            const double x = o[j] - (k + 1 < r ? lk[j] * prev[J] : 0.0);
            prev[J] = x;
            o[j] = static_cast<float>(complement ? al[J] * x : x);
          }
        }
      }
    });
  }

  void fold_stats(const ViewF& y, const std::vector<i64>& start, const ViewD& level, const ViewD& sum, const ViewD& sst) override {
    profile::Scope ps("op fold_stats");
    const i64 k = checks::fold_stats(y, start, level, sum, sst), t = y.cols;
    const i64 lvs = vstep(level);
    parallel_for(0, t, kColChunk, [&](i64 b, i64 e) {
      const std::size_t w = static_cast<std::size_t>(e - b);
      std::vector<double> s(w), s2(w);
      for (i64 v = 0; v < k; ++v) {
        std::fill(s.begin(), s.end(), 0.0);
        std::fill(s2.begin(), s2.end(), 0.0);
        for (i64 i = start[static_cast<std::size_t>(v)]; i < start[static_cast<std::size_t>(v) + 1]; ++i) {
          const float* r = y.ptr() + i * y.ld + b;
          for (std::size_t j = 0; j < w; ++j) {
            s[j] += r[j];
            s2[j] += static_cast<double>(r[j]) * r[j];
          }
        }
        const double m = static_cast<double>(start[static_cast<std::size_t>(v) + 1] - start[static_cast<std::size_t>(v)]);
        for (std::size_t j = 0; j < w; ++j) {
          const double lv = level.ptr()[(b + static_cast<i64>(j)) * lvs];
          const double ss = m > 0 ? std::max(0.0, s2[j] - s[j] * s[j] / m) : 0.0;
          sum.ptr()[v * sum.ld + b + static_cast<i64>(j)] = s[j];
          sst.ptr()[v * sst.ld + b + static_cast<i64>(j)] = ss > kConstantTargetRelVar * (lv * lv * m + s2[j]) ? ss : 0.0;
        }
      }
    });
  }

  void score(const ViewF& pred, i64 blocks, const ViewF& y, const ViewD& offset, bool residual, ScoreKind kind,
             const ViewD& sum, const ViewD& sst, double weight, const ViewD& acc) override {
    profile::Scope ps("op score");
    const i64 m = y.rows, t = y.cols;
    checks::score(pred, blocks, y, offset, residual, sum, sst, acc);
    const bool pearson = kind == ScoreKind::Pearson;
    const i64 ss = vstep(sum), sts = vstep(sst), os = residual ? 0 : vstep(offset);
    const double md = static_cast<double>(m);
    // One fork-join for every block (each alpha of a chunk): per block it was 7 thread spawns a call for
    // ~0.1 ms of work each, 3,500 in the demo world's banded fit; a target's sums are formed as before.
    parallel_for(0, t, 512, [&](i64 b, i64 e) {
      const std::size_t w = static_cast<std::size_t>(e - b);
      std::vector<double> sse(w), sp(w), spp(w), spy(w), mean(w), off(w, 0.0);
      if (!residual)
        for (std::size_t j = 0; j < w; ++j) off[j] = offset.ptr()[(b + static_cast<i64>(j)) * os];
      for (i64 blk = 0; blk < blocks; ++blk) {
        const float* pb = pred.ptr() + blk * m * pred.ld;
        for (auto* v : {&sse, &sp, &spp, &spy, &mean}) std::fill(v->begin(), v->end(), 0.0);
        if (!pearson) {
          for (i64 i = 0; i < m; ++i) {
            const float* pr = pb + i * pred.ld + b;
            const float* yr = y.ptr() + i * y.ld + b;
            if (residual) {
              for (std::size_t j = 0; j < w; ++j) sse[j] += static_cast<double>(pr[j]) * pr[j];
            } else {
              for (std::size_t j = 0; j < w; ++j) {
                const double d = pr[j] + off[j] - yr[j];
                sse[j] += d * d;
              }
            }
          }
        } else {
          // Pearson's r is blind to a constant: the prediction without the training mean added back, and
          // centred by a first pass. Moments of pr + off in one pass cancelled to nothing where strong
          // shrinkage leaves the predictions' spread far below their level (r 0.004 for 0.736 at α/λ = 1e10).
          const auto q = [&](const float* pr, const float* yr, std::size_t j) {
            return residual ? static_cast<double>(yr[j]) - pr[j] : static_cast<double>(pr[j]);
          };
          for (i64 i = 0; i < m; ++i)
            for (std::size_t j = 0; j < w; ++j) mean[j] += q(pb + i * pred.ld + b, y.ptr() + i * y.ld + b, j);
          for (std::size_t j = 0; j < w; ++j) mean[j] /= md;
          for (i64 i = 0; i < m; ++i) {
            const float* pr = pb + i * pred.ld + b;
            const float* yr = y.ptr() + i * y.ld + b;
            for (std::size_t j = 0; j < w; ++j) {
              const double d = q(pr, yr, j) - mean[j];
              sp[j] += d;
              spp[j] += d * d;
              spy[j] += d * yr[j];
            }
          }
        }
        double* out = acc.ptr() + blk * acc.ld;
        for (std::size_t j = 0; j < w; ++j) {
          const i64 J = b + static_cast<i64>(j);
          const double st = sst.ptr()[J * sts];
          double s = 0;
          if (!pearson) {
            s = st > 0 ? 1.0 - sse[j] / st : 0.0;
          } else {
            const double cpp = spp[j] - sp[j] * sp[j] / md;
            const double cpy = spy[j] - sp[j] * sum.ptr()[J * ss] / md;
            s = (cpp > 0 && st > 0) ? cpy / std::sqrt(cpp * st) : 0.0;
          }
          out[J] += weight * s;
        }
      }
    });
  }

  void select_best(const ViewD& scores, const std::vector<double>& alphas, const std::vector<char>& skip, const ViewI& best_index,
                   const ViewD& best_score, const ViewD& best_alpha) override {
    const i64 na = scores.rows, t = scores.cols;
    const i64 first = checks::select_best(scores, alphas, skip, best_index, best_score, best_alpha);
    const i64 is = vstep(best_index), bs = vstep(best_score), as = vstep(best_alpha);
    parallel_for(0, t, 4096, [&](i64 b, i64 e) {
      for (i64 j = b; j < e; ++j) {
        i64 best = first;
        double sbest = scores.ptr()[first * scores.ld + j];
        for (i64 a = first + 1; a < na; ++a) {
          if (skip[static_cast<std::size_t>(a)]) continue;
          const double s = scores.ptr()[a * scores.ld + j];
          if (s > sbest || (s == sbest && alphas[static_cast<std::size_t>(a)] > alphas[static_cast<std::size_t>(best)])) {
            sbest = s;
            best = a;
          }
        }
        best_index.ptr()[j * is] = static_cast<std::int32_t>(best);
        best_score.ptr()[j * bs] = sbest;
        best_alpha.ptr()[j * as] = alphas[static_cast<std::size_t>(best)];
      }
    });
  }

  void improve(const ViewD& score, const ViewI& index, std::int32_t tag, const ViewD& best_score, const ViewI& best_index,
               const ViewI& best_tag) override {
    const i64 t = score.size();
    checks::improve(score, index, best_score, best_index, best_tag);
    const i64 s0 = vstep(score), i0 = vstep(index), s1 = vstep(best_score), i1 = vstep(best_index), g1 = vstep(best_tag);
    for (i64 j = 0; j < t; ++j) {
      const double s = score.ptr()[j * s0];
      if (s > best_score.ptr()[j * s1]) {
        best_score.ptr()[j * s1] = s;
        best_index.ptr()[j * i1] = index.ptr()[j * i0];
        best_tag.ptr()[j * g1] = tag;
      }
    }
  }

  // The sampler's kernels run on the caller's thread (the U-Net call owns the cores; the pass is
  // memory-bound): the batch's views as the FusedBatch of sd_fused_step.h, zero-copy.
  void sampler_init(const SamplerBatch& b, const ViewF& z, const ViewF& noise, double a, double s, double first_in_scale) override {
    checks::sampler_init(b, z, noise);
    const FusedBatch fb = fused_batch(b);
    init_latents_cpu(fb, z.ptr(), noise.empty() ? nullptr : noise.ptr(), a, s, first_in_scale);
  }

  void sampler_step(const CompiledStep& step, const SamplerBatch& b) override {
    checks::sampler_step(b);
    fused_step_cpu(step, fused_batch(b));
  }

  i64 first_nonfinite(const ViewF& a) override {
    profile::Scope ps("op first_nonfinite");
    std::atomic<i64> bad{std::numeric_limits<i64>::max()};
    rows_of(a, [&](i64 i, float* r) {
      if (i * a.cols >= bad.load()) return;
      // A branch-free pass first (all-ones exponent bits = Inf or NaN; the compiler vectorizes the
      // OR): the per-element isfinite test with its early exit ran at ~2 GB/s, a tenth of memory speed.
      std::uint32_t any = 0;
      for (i64 j = 0; j < a.cols; ++j) {
        std::uint32_t bits;
        std::memcpy(&bits, r + j, sizeof bits);
        any |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
      }
      if (!any) return;
      for (i64 j = 0; j < a.cols; ++j)
        if (!std::isfinite(r[j])) {
          i64 cur = bad.load(), pos = i * a.cols + j;
          while (pos < cur && !bad.compare_exchange_weak(cur, pos)) {
          }
          return;
        }
    });
    return bad.load() == std::numeric_limits<i64>::max() ? -1 : bad.load();
  }
};

}  // namespace

std::string cpu_backend_description() {
  // (OpenBLAS's configuration string names its core already: say who chose it when OpenBLAS did not)
  const linalg::BlasCore& core = linalg::blas_core();
  const std::string chosen = core.source == "engine" ? " (its kernels chosen by the engine)"
                             : core.source == "OPENBLAS_CORETYPE" ? " (its kernels chosen by OPENBLAS_CORETYPE)"
                                                                   : "";
  return linalg::blas_vendor() + chosen + ", " + std::to_string(engine_threads()) + " thread(s)";
}

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace brainlatent
