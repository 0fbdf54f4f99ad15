// ggml's test-backend-ops for brainlatent: every operation of one backend (argv[1]: cpu, cuda)
// against a plain float64 reference on the host, at awkward sizes (empty, 1, primes, sizes that
// are not multiples of a block, strided views inside larger buffers), compared by normalised mean
// squared error with a tolerance per operation, and every route of the ridge engine by name (RidgeCV
// and banded ridge) on the backend against brute-force CV. ctest runs one column per backend; a backend that
// is not compiled or has no device here exits 77, which ctest reports as skipped.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "brainlatent/backend.h"
#include "brainlatent/banded_ridge.h"
#include "brainlatent/linalg.h"
#include "brainlatent/ridge.h"
#include "brainlatent/scheduler.h"
#include "test_util.h"

using namespace brainlatent;
using i64 = std::int64_t;
using Vec = std::vector<double>;

namespace {

Backend* g_be = nullptr;
test::Rng g_rng(42);

// A host matrix in float64 with the shape it stands for.
struct HMat {
  i64 rows = 0, cols = 0;
  Vec v;
  double& at(i64 i, i64 j) { return v[static_cast<std::size_t>(i * cols + j)]; }
  double at(i64 i, i64 j) const { return v[static_cast<std::size_t>(i * cols + j)]; }
};

HMat random(i64 r, i64 c, double scale = 1.0) {
  HMat m{r, c, Vec(static_cast<std::size_t>(r * c))};
  for (auto& x : m.v) x = scale * g_rng.normal();
  return m;
}

// A device matrix placed inside a larger buffer (pad columns, an offset) so that every operation
// sees a strided view, as the solvers' fold blocks are.
template <typename T>
struct DMat {
  BufferPtr buf;
  View<T> v;
};

template <typename T>
DMat<T> upload(const HMat& h, i64 pad = 3, i64 offset = 5) {
  const i64 ld = h.cols + pad;
  const std::size_t n = static_cast<std::size_t>(offset + h.rows * ld + 1);
  std::vector<T> host(n, static_cast<T>(-777));
  for (i64 i = 0; i < h.rows; ++i)
    for (i64 j = 0; j < h.cols; ++j) host[static_cast<std::size_t>(offset + i * ld + j)] = static_cast<T>(h.at(i, j));
  DMat<T> d;
  d.buf = g_be->alloc(dtype_of<T>::value, n);
  BufferPtr src = g_be->wrap_host(host.data(), dtype_of<T>::value, n);
  g_be->copy(View<T>{src.get(), 0, 1, static_cast<i64>(n), static_cast<i64>(n)}, View<T>{d.buf.get(), 0, 1, static_cast<i64>(n), static_cast<i64>(n)});
  d.v = View<T>{d.buf.get(), offset, h.rows, h.cols, ld};
  return d;
}

template <typename T>
HMat download(const View<T>& v) {
  std::vector<T> host(static_cast<std::size_t>(v.rows * v.cols));
  BufferPtr dst = g_be->wrap_host(host.data(), dtype_of<T>::value, host.size());
  g_be->copy(v, View<T>{dst.get(), 0, v.rows, v.cols, v.cols});
  g_be->synchronize();
  HMat h{v.rows, v.cols, Vec(host.begin(), host.end())};
  return h;
}

// A vector of doubles as a contiguous device vector.
DMat<double> upload_vec(const Vec& x) { return upload<double>(HMat{1, static_cast<i64>(x.size()), x}, 0, 2); }

double nmse(const HMat& got, const HMat& want) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < want.v.size(); ++i) {
    num += (got.v[i] - want.v[i]) * (got.v[i] - want.v[i]);
    den += want.v[i] * want.v[i];
  }
  return den > 0 ? num / den : num;
}

int g_cases = 0;
void expect_close(const HMat& got, const HMat& want, double tol, const std::string& what) {
  ++g_cases;
  if (got.rows != want.rows || got.cols != want.cols) {
    std::fprintf(stderr, "%s: shape %lldx%lld, expected %lldx%lld\n", what.c_str(), (long long)got.rows, (long long)got.cols,
                 (long long)want.rows, (long long)want.cols);
    ++test::failures();
    return;
  }
  const double e = nmse(got, want);
  if (!(e <= tol)) {
    std::fprintf(stderr, "%s: NMSE %.3g > %.3g\n", what.c_str(), e, tol);
    ++test::failures();
  }
}

std::string tag(const char* op, std::initializer_list<i64> sizes) {
  std::string s = std::string(g_be->name()) + " " + op + "(";
  bool first = true;
  for (i64 v : sizes) {
    s += (first ? "" : ",") + std::to_string(v);
    first = false;
  }
  return s + ")";
}

HMat transpose(const HMat& a) {
  HMat t{a.cols, a.rows, Vec(a.v.size())};
  for (i64 i = 0; i < a.rows; ++i)
    for (i64 j = 0; j < a.cols; ++j) t.at(j, i) = a.at(i, j);
  return t;
}

HMat matmul(const HMat& a, const HMat& b) {
  HMat c{a.rows, b.cols, Vec(static_cast<std::size_t>(a.rows * b.cols), 0.0)};
  for (i64 i = 0; i < a.rows; ++i)
    for (i64 k = 0; k < a.cols; ++k)
      for (i64 j = 0; j < b.cols; ++j) c.at(i, j) += a.at(i, k) * b.at(k, j);
  return c;
}

HMat symmetric(i64 n) {
  HMat a = random(n, n);
  for (i64 i = 0; i < n; ++i)
    for (i64 j = 0; j < i; ++j) a.at(i, j) = a.at(j, i);
  return a;
}

HMat identity(i64 n) {
  HMat eye{n, n, Vec(static_cast<std::size_t>(n * n), 0.0)};
  for (i64 i = 0; i < n; ++i) eye.at(i, i) = 1;
  return eye;
}

HMat spd(i64 n) {
  HMat b = random(n, n + 2);
  HMat a = matmul(b, transpose(b));
  for (i64 i = 0; i < n; ++i) a.at(i, i) += static_cast<double>(n);
  return a;
}

// Symmetric eigenvalues by cyclic Jacobi rotations (float64 reference), ascending.
Vec jacobi_eigenvalues(HMat a) {
  const i64 n = a.rows;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (i64 p = 0; p < n; ++p)
      for (i64 q = p + 1; q < n; ++q) off += a.at(p, q) * a.at(p, q);
    if (off < 1e-22) break;
    for (i64 p = 0; p < n; ++p)
      for (i64 q = p + 1; q < n; ++q) {
        if (std::fabs(a.at(p, q)) < 1e-300) continue;
        const double th = 0.5 * std::atan2(2 * a.at(p, q), a.at(q, q) - a.at(p, p));
        const double c = std::cos(th), s = std::sin(th);
        for (i64 k = 0; k < n; ++k) {
          const double akp = a.at(k, p), akq = a.at(k, q);
          a.at(k, p) = c * akp - s * akq;
          a.at(k, q) = s * akp + c * akq;
        }
        for (i64 k = 0; k < n; ++k) {
          const double apk = a.at(p, k), aqk = a.at(q, k);
          a.at(p, k) = c * apk - s * aqk;
          a.at(q, k) = s * apk + c * aqk;
        }
      }
  }
  Vec w(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i) w[static_cast<std::size_t>(i)] = a.at(i, i);
  std::sort(w.begin(), w.end());
  return w;
}

HMat row(const Vec& x) { return HMat{1, static_cast<i64>(x.size()), x}; }

// ------------------------------------------------------------------ BLAS / LAPACK
template <typename T>
void test_gemm(double tol) {
  // (the last two: CUDA's 3xTF32 product, in one block from 512³ and, under a small split scratch,
  // in panels of both operands)
  const i64 shapes[][3] = {{0, 3, 5}, {3, 0, 5},    {3, 5, 0},     {1, 1, 1},      {7, 13, 31},
                           {65, 3, 130}, {13, 67, 7}, {17, 19, 23}, {300, 260, 520}, {600, 530, 700}};
  for (auto& s : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const i64 m = s[0], n = s[1], k = s[2];
        HMat a = ta ? random(k, m) : random(m, k), b = tb ? random(n, k) : random(k, n), c = random(m, n);
        auto da = upload<T>(a), db = upload<T>(b), dc = upload<T>(c);
        g_be->gemm(ta, tb, T(1.5), da.v, db.v, T(0.5), dc.v);
        HMat want = matmul(ta ? transpose(a) : a, tb ? transpose(b) : b);
        for (std::size_t i = 0; i < want.v.size(); ++i) want.v[i] = 1.5 * want.v[i] + 0.5 * c.v[i];
        expect_close(download(dc.v), want, tol, tag(sizeof(T) == 4 ? "gemm.f32" : "gemm.f64", {m, n, k, ta, tb}));
      }
}

void test_syrk() {
  const i64 shapes[][2] = {{0, 5}, {5, 0}, {1, 1}, {7, 13}, {65, 31}, {31, 65}};
  for (auto& s : shapes)
    for (int tr = 0; tr < 2; ++tr) {
      const i64 rows = s[0], k = s[1];
      HMat a = random(rows, k);
      const i64 n = tr ? k : rows;
      HMat c0 = random(n, n);
      for (i64 i = 0; i < n; ++i)
        for (i64 j = 0; j < i; ++j) c0.at(i, j) = c0.at(j, i);  // symmetric start for β ≠ 0
      auto da = upload<float>(a), dc = upload<float>(c0);
      g_be->syrk(tr, 2.0f, da.v, 0.25f, dc.v);
      HMat want = tr ? matmul(transpose(a), a) : matmul(a, transpose(a));
      for (std::size_t i = 0; i < want.v.size(); ++i) want.v[i] = 2 * want.v[i] + 0.25 * c0.v[i];
      expect_close(download(dc.v), want, 1e-11, tag("syrk", {rows, k, tr}));
    }
}

template <typename T>
void test_eigh(double tol) {
  // (512 and 641: the blocked reflector path, one block short of a multiple of 128 and a multiple;
  // there the Jacobi reference is too slow, and orthonormality with the reconstruction decide.)
  for (i64 n : {0, 1, 2, 7, 33, 65, 512, 641}) {
    const HMat a = symmetric(n);
    auto da = upload<T>(a);
    auto dw = upload<T>(HMat{1, n, Vec(static_cast<std::size_t>(n), 0.0)}, 0, 1);
    g_be->eigh(da.v, dw.v);
    HMat q = download(da.v), w = download(dw.v);
    const char* name = sizeof(T) == 4 ? "eigh.f32" : "eigh.f64";
    if (n < 100) expect_close(w, row(jacobi_eigenvalues(a)), tol, tag(name, {n}) + " eigenvalues");
    // Rows of q are orthonormal eigenvectors: Q Qᵀ = I and Qᵀ diag(w) Q = A.
    expect_close(matmul(q, transpose(q)), identity(n), tol, tag(name, {n}) + " orthonormal");
    HMat lq = q;
    for (i64 k = 0; k < n; ++k)
      for (i64 j = 0; j < n; ++j) lq.at(k, j) *= w.v[static_cast<std::size_t>(k)];
    expect_close(matmul(transpose(q), lq), a, tol, tag(name, {n}) + " reconstruction");
    for (i64 k = 1; k < n; ++k) CHECK(w.v[static_cast<std::size_t>(k)] >= w.v[static_cast<std::size_t>(k - 1)]);
    if constexpr (sizeof(T) == 4) {
      // In a caller's scratch (NaN-filled: the workspace must not read what it held), the same
      // result bit for bit, with no workspace of its own counted; too small a scratch is ignored.
      const std::size_t need = g_be->eigh_scratch_count(n);
      for (const std::size_t room : {std::max<std::size_t>(need, 1), need / 2}) {
        auto ds = upload<float>(HMat{1, static_cast<i64>(room), Vec(room, std::nan(""))});
        auto da2 = upload<float>(a);
        auto dw2 = upload<float>(HMat{1, n, Vec(static_cast<std::size_t>(n), 0.0)}, 0, 1);
        g_be->reset_peak();
        const MemoryStats before = g_be->memory_stats();
        g_be->eigh_in_scratch(da2.v, dw2.v, ds.v);
        const std::size_t extra = g_be->memory_stats().peak - before.live;
        const std::string t = tag("eigh_in_scratch.f32", {n, static_cast<i64>(room)});
        HMat q2 = download(da2.v), w2 = download(dw2.v);
        auto expect = [&](bool ok, const char* what) {
          if (!ok) std::fprintf(stderr, "%s: %s\n", t.c_str(), what), ++test::failures();
        };
        expect(q2.v == q.v && w2.v == w.v, "not bit for bit eigh()'s result");
        if (need > 0 && room >= need && n >= 33) {  // (below, the workspace is mostly its small vectors)
          expect(extra < linalg::eigh_workspace_bytes(n, 4) / 4, "the workspace was allocated beside the scratch");
          const HMat sv = download(ds.v);
          expect(std::any_of(sv.v.begin(), sv.v.end(), [](double x) { return !std::isnan(x); }), "the scratch was not used");
        }
      }
    }
  }
}

// A = Q T Qᵀ: rows of a become Q's columns, T tridiagonal (d, e).
template <typename T>
void test_tridiagonalize(double tol) {
  // (33 and 65: ?sytrd's blocked panels; 512 and 641: Q formed in blocks of 128 reflectors, one short of a multiple and a multiple)
  for (i64 n : {0, 1, 2, 7, 33, 65, 512, 641}) {
    const HMat a = symmetric(n);
    auto da = upload<T>(a);
    auto dd = upload<T>(HMat{1, n, Vec(static_cast<std::size_t>(n), 0.0)}, 0, 1);
    auto de = upload<T>(HMat{1, n, Vec(static_cast<std::size_t>(n), 7.0)}, 0, 1);
    bool done = false;
    if constexpr (sizeof(T) == 4) done = g_be->tridiagonalize(da.v, dd.v, de.v, ViewF{});
    else done = g_be->tridiagonalize(da.v, dd.v, de.v);
    const char* name = sizeof(T) == 4 ? "tridiagonalize.f32" : "tridiagonalize.f64";
    CHECK(done);
    HMat q = download(da.v), d = download(dd.v), e = download(de.v);
    if (n > 0) CHECK(e.v.back() == 0.0);
    HMat t{n, n, Vec(static_cast<std::size_t>(n * n), 0.0)};
    for (i64 i = 0; i < n; ++i) {
      t.at(i, i) = d.v[static_cast<std::size_t>(i)];
      if (i + 1 < n) t.at(i, i + 1) = t.at(i + 1, i) = e.v[static_cast<std::size_t>(i)];
    }
    expect_close(matmul(q, transpose(q)), identity(n), tol, tag(name, {n}) + " orthonormal");
    expect_close(matmul(transpose(q), matmul(t, q)), a, tol, tag(name, {n}) + " reconstruction");
    if (n < 100) expect_close(row(jacobi_eigenvalues(t)), row(jacobi_eigenvalues(a)), tol, tag(name, {n}) + " eigenvalues of T");
    if constexpr (sizeof(T) == 4) {
      // In a caller's scratch (NaN-filled), the same result bit for bit; too small a scratch is ignored.
      const std::size_t need = g_be->eigh_scratch_count(n);
      for (const std::size_t room : {std::max<std::size_t>(need, 1), need / 2}) {
        auto ds = upload<float>(HMat{1, static_cast<i64>(room), Vec(room, std::nan(""))});
        auto da2 = upload<float>(a);
        auto dd2 = upload<float>(HMat{1, n, Vec(static_cast<std::size_t>(n), 0.0)}, 0, 1);
        auto de2 = upload<float>(HMat{1, n, Vec(static_cast<std::size_t>(n), 0.0)}, 0, 1);
        CHECK(g_be->tridiagonalize(da2.v, dd2.v, de2.v, ds.v));
        const bool same = download(da2.v).v == q.v && download(dd2.v).v == d.v && download(de2.v).v == e.v;
        if (!same) std::fprintf(stderr, "%s: not bit for bit the result without scratch\n", tag("tridiagonalize in scratch", {n, (i64)room}).c_str()), ++test::failures();
      }
    }
  }
}

template <typename T>
void test_cholesky(double tol) {
  const char* name = sizeof(T) == 4 ? "cholesky.f32" : "cholesky.f64";
  for (i64 n : {0, 1, 7, 31}) {
    for (i64 cols : {0, 1, 5}) {
      HMat a = spd(n), b = random(n, cols);
      auto df = upload<T>(a), db = upload<T>(b);
      CHECK(g_be->cholesky(df.v));
      g_be->cholesky_solve(df.v, db.v);
      // A·X must give back B.
      expect_close(matmul(a, download(db.v)), b, tol, tag(name, {n, cols}) + " solve");
    }
    {
      HMat a = spd(n);
      auto df = upload<T>(a);
      CHECK(g_be->cholesky(df.v));
      g_be->cholesky_inverse(df.v);
      HMat eye{n, n, Vec(static_cast<std::size_t>(n * n), 0.0)};
      for (i64 i = 0; i < n; ++i) eye.at(i, i) = 1;
      expect_close(matmul(a, download(df.v)), eye, sizeof(T) == 4 ? tol : 1e-20,
                   tag(sizeof(T) == 4 ? "cholesky_inverse.f32" : "cholesky_inverse.f64", {n}));
    }
  }
  // Not positive definite: false, not an exception.
  HMat bad{2, 2, {1, 2, 2, 1}};
  auto d = upload<T>(bad);
  CHECK(!g_be->cholesky(d.v));
}

// ------------------------------------------------------------------ element-wise
void test_elementwise() {
  for (i64 r : {0, 1, 7, 65})
    for (i64 c : {0, 1, 13, 130}) {
      HMat a = random(r, c), b = random(r, c);
      {  // copy (strided → strided with another stride)
        auto da = upload<float>(a), db = upload<float>(b, 7, 1);
        g_be->copy(da.v, db.v);
        expect_close(download(db.v), a, 1e-14, tag("copy", {r, c}));
      }
      {
        auto da = upload<float>(a);
        g_be->fill(da.v, 2.5f);
        expect_close(download(da.v), HMat{r, c, Vec(a.v.size(), 2.5)}, 0, tag("fill", {r, c}));
      }
      {  // convert with scale, shift and a diagonal, both directions
        auto da = upload<float>(a);
        auto dd = upload<double>(HMat{r, c, Vec(a.v.size(), 0.0)});
        g_be->convert(da.v, dd.v, -2.0, 0.5, 3.0);
        HMat want = a;
        for (i64 i = 0; i < r; ++i)
          for (i64 j = 0; j < c; ++j) want.at(i, j) = -2.0 * static_cast<float>(a.at(i, j)) + 0.5 + (i == j ? 3.0 : 0.0);
        expect_close(download(dd.v), want, 1e-28, tag("convert.f32>f64", {r, c}));
        auto back = upload<float>(HMat{r, c, Vec(a.v.size(), 0.0)});
        g_be->convert(dd.v, back.v);
        expect_close(download(back.v), want, 1e-13, tag("convert.f64>f32", {r, c}));
      }
      {
        auto da = upload<float>(a), db = upload<float>(b);
        g_be->axpby(-1.5f, da.v, 0.5f, db.v);
        HMat want = b;
        for (std::size_t i = 0; i < want.v.size(); ++i) want.v[i] = -1.5 * a.v[i] + 0.5 * b.v[i];
        expect_close(download(db.v), want, 1e-13, tag("axpby", {r, c}));
      }
      Vec rv(static_cast<std::size_t>(r)), cv(static_cast<std::size_t>(c));
      for (auto& x : rv) x = g_rng.normal();
      for (auto& x : cv) x = g_rng.normal();
      auto dr = upload_vec(rv), dc = upload_vec(cv);
      for (int use_r = 0; use_r < 2; ++use_r)
        for (int use_c = 0; use_c < 2; ++use_c) {
          const ViewD vr = use_r ? dr.v : ViewD{}, vc = use_c ? dc.v : ViewD{};
          auto da = upload<float>(a);
          g_be->scale_rows_cols(da.v, vr, vc);
          HMat want = a;
          for (i64 i = 0; i < r; ++i)
            for (i64 j = 0; j < c; ++j) want.at(i, j) *= (use_r ? rv[i] : 1.0) * (use_c ? cv[j] : 1.0);
          expect_close(download(da.v), want, 1e-13, tag("scale_rows_cols", {r, c, use_r, use_c}));
          auto db = upload<float>(a);
          g_be->add_outer(db.v, -0.75, vr, vc);
          want = a;
          for (i64 i = 0; i < r; ++i)
            for (i64 j = 0; j < c; ++j) want.at(i, j) += -0.75 * (use_r ? rv[i] : 1.0) * (use_c ? cv[j] : 1.0);
          expect_close(download(db.v), want, 1e-13, tag("add_outer", {r, c, use_r, use_c}));
          auto de = upload<float>(a);
          g_be->add_broadcast(de.v, vr, vc, 0.125);
          want = a;
          for (i64 i = 0; i < r; ++i)
            for (i64 j = 0; j < c; ++j) want.at(i, j) += (use_r ? rv[i] : 0.0) + (use_c ? cv[j] : 0.0) + 0.125;
          expect_close(download(de.v), want, 1e-13, tag("add_broadcast", {r, c, use_r, use_c}));
        }
      {
        auto da = upload<float>(a);
        auto rs = upload_vec(Vec(static_cast<std::size_t>(r), 9.0)), cs = upload_vec(Vec(static_cast<std::size_t>(c), 9.0));
        g_be->row_sums(da.v, rs.v, 0.5);
        g_be->col_sums(da.v, cs.v, -1.0);
        Vec wr(static_cast<std::size_t>(r), 0.0), wc(static_cast<std::size_t>(c), 0.0);
        for (i64 i = 0; i < r; ++i)
          for (i64 j = 0; j < c; ++j) {
            wr[i] += 0.5 * static_cast<float>(a.at(i, j));
            wc[j] -= static_cast<float>(a.at(i, j));
          }
        expect_close(download(rs.v), row(wr), 1e-24, tag("row_sums", {r, c}));
        expect_close(download(cs.v), row(wc), 1e-24, tag("col_sums", {r, c}));
      }
      {
        auto da = upload<float>(a);
        CHECK(g_be->first_nonfinite(da.v) == -1);
        if (r * c > 0) {
          HMat bad = a;
          const i64 i = r / 2, j = c - 1;
          bad.at(i, j) = NAN;
          if (r * c > 2) bad.at(r - 1, c - 1) = INFINITY;
          auto db = upload<float>(bad);
          ++g_cases;
          CHECK(g_be->first_nonfinite(db.v) == i * c + j);
        }
      }
    }
}

// ------------------------------------------------------------------ ridge kernels
double weight(Shrink kind, double lam, double alpha) {
  switch (kind) {
    case Shrink::Inverse: return 1 / (lam + alpha);
    case Shrink::Complement: return alpha / (lam + alpha);
    case Shrink::SqrtInverse: return std::sqrt(1 / (lam + alpha));
    case Shrink::SqrtComplement: return std::sqrt(alpha / (lam + alpha));
  }
  return 0;
}

// Lower Cholesky factor of the SPD a (float64 reference), and solves with it.
HMat chol_lower(const HMat& a) {
  const i64 n = a.rows;
  HMat c{n, n, Vec(static_cast<std::size_t>(n * n), 0.0)};
  for (i64 j = 0; j < n; ++j) {
    double s = a.at(j, j);
    for (i64 k = 0; k < j; ++k) s -= c.at(j, k) * c.at(j, k);
    c.at(j, j) = std::sqrt(s);
    for (i64 i = j + 1; i < n; ++i) {
      double v = a.at(i, j);
      for (i64 k = 0; k < j; ++k) v -= c.at(i, k) * c.at(j, k);
      c.at(i, j) = v / c.at(j, j);
    }
  }
  return c;
}
HMat lower_solve(const HMat& c, HMat b) {  // C⁻¹ b
  for (i64 j = 0; j < b.cols; ++j)
    for (i64 i = 0; i < c.rows; ++i) {
      double v = b.at(i, j);
      for (i64 k = 0; k < i; ++k) v -= c.at(i, k) * b.at(k, j);
      b.at(i, j) = v / c.at(i, i);
    }
  return b;
}
HMat upper_solve(const HMat& c, HMat b) {  // C⁻ᵀ b
  for (i64 j = 0; j < b.cols; ++j)
    for (i64 i = c.rows - 1; i >= 0; --i) {
      double v = b.at(i, j);
      for (i64 k = i + 1; k < c.rows; ++k) v -= c.at(k, i) * b.at(k, j);
      b.at(i, j) = v / c.at(i, i);
    }
  return b;
}
// A positive semidefinite tridiagonal T (diagonally dominant: d_k ≥ |e_{k−1}| + |e_k|), one of its
// zero-coupled rows in the middle, as the centred kernel's constant direction has.
void tridiagonal(i64 r, Vec& d, Vec& e) {
  d.assign(static_cast<std::size_t>(r), 0.0);
  e.assign(static_cast<std::size_t>(r), 0.0);
  for (i64 k = 0; k + 1 < r; ++k) e[static_cast<std::size_t>(k)] = k == r / 2 ? 0.0 : 3 * g_rng.normal();
  for (i64 k = 0; k < r; ++k)
    d[static_cast<std::size_t>(k)] = std::fabs(e[static_cast<std::size_t>(k)]) + (k > 0 ? std::fabs(e[static_cast<std::size_t>(k - 1)]) : 0.0) +
                                     std::fabs(g_rng.normal());
}
// (T + αI) as a dense float64 matrix, and F·b for tri_shrink's kinds by its dense Cholesky factor C = L D^½.
HMat tri_reference(const Vec& d, const Vec& e, double alpha, Shrink kind, const HMat& b) {
  const i64 r = b.rows;
  HMat t{r, r, Vec(static_cast<std::size_t>(r * r), 0.0)};
  for (i64 k = 0; k < r; ++k) {
    t.at(k, k) = d[static_cast<std::size_t>(k)] + alpha;
    if (k + 1 < r) t.at(k, k + 1) = t.at(k + 1, k) = e[static_cast<std::size_t>(k)];
  }
  const HMat c = chol_lower(t);
  const bool complement = kind == Shrink::Complement || kind == Shrink::SqrtComplement;
  HMat x = kind == Shrink::Inverse || kind == Shrink::Complement ? upper_solve(c, lower_solve(c, b)) : lower_solve(c, b);
  const double s = kind == Shrink::Inverse || kind == Shrink::Complement ? (complement ? alpha : 1.0) : std::sqrt(complement ? alpha : 1.0);
  for (auto& v : x.v) v *= s;
  return x;
}

void test_tri_shrink() {
  const Shrink kinds[] = {Shrink::Inverse, Shrink::Complement, Shrink::SqrtInverse, Shrink::SqrtComplement};
  for (i64 r : {0, 1, 2, 31, 300})
    for (i64 c : {0, 1, 13, 130})
      for (i64 na : {1, 3})
        for (Shrink kind : kinds) {
          HMat a = random(r, c);
          for (auto& x : a.v) x = static_cast<float>(x);
          Vec d, e, alphas(static_cast<std::size_t>(na));
          tridiagonal(r, d, e);
          for (auto& al : alphas) al = std::exp(2 * g_rng.normal());
          auto da = upload<float>(a);
          auto dd = upload_vec(d), dev = upload_vec(e), dal = upload_vec(alphas);
          auto out = upload<float>(HMat{na * r, c, Vec(static_cast<std::size_t>(na * r * c), 0.0)});
          g_be->tri_shrink(da.v, dd.v, dev.v, dal.v, kind, out.v);
          HMat want{na * r, c, Vec(static_cast<std::size_t>(na * r * c))};
          for (i64 q = 0; q < na; ++q) {
            const HMat x = tri_reference(d, e, alphas[static_cast<std::size_t>(q)], kind, a);
            std::copy(x.v.begin(), x.v.end(), want.v.begin() + q * r * c);
          }
          expect_close(download(out.v), want, 1e-12, tag("tri_shrink", {r, c, na, (i64)kind}));
          if (na == 1) {
            g_be->tri_shrink(da.v, dd.v, dev.v, dal.v, kind, da.v);  // in place
            expect_close(download(da.v), want, 1e-12, tag("tri_shrink in place", {r, c, (i64)kind}));
          }
        }
  // (every column its own alpha, and a few alphas in blocks of columns: the two paths, per column and by table)
  for (i64 r : {0, 1, 31, 300})
    for (i64 c : {0, 1, 130, 301})
      for (int few = 0; few < 2; ++few)
      for (Shrink kind : {Shrink::Inverse, Shrink::Complement}) {
        HMat a = random(r, c);
        for (auto& x : a.v) x = static_cast<float>(x);
        Vec d, e, alpha(static_cast<std::size_t>(c));
        tridiagonal(r, d, e);
        for (auto& al : alpha) al = std::exp(2 * g_rng.normal());
        if (few)
          for (i64 j = 0; j < c; ++j) alpha[static_cast<std::size_t>(j)] = std::pow(10.0, static_cast<double>(j * 5 / std::max<i64>(1, c)) - 1);
        auto da = upload<float>(a), out = upload<float>(a);
        auto dd = upload_vec(d), dev = upload_vec(e), dal = upload_vec(alpha);
        g_be->tri_shrink_targets(da.v, dd.v, dev.v, dal.v, kind, out.v);
        HMat want = a;
        for (i64 j = 0; j < c; ++j) {
          HMat col{r, 1, Vec(static_cast<std::size_t>(r))};
          for (i64 k = 0; k < r; ++k) col.at(k, 0) = a.at(k, j);
          const HMat x = tri_reference(d, e, alpha[static_cast<std::size_t>(j)], kind, col);
          for (i64 k = 0; k < r; ++k) want.at(k, j) = x.at(k, 0);
        }
        expect_close(download(out.v), want, 1e-12, tag("tri_shrink_targets", {r, c, few, (i64)kind}));
        g_be->tri_shrink_targets(da.v, dd.v, dev.v, dal.v, kind, da.v);  // in place
        expect_close(download(da.v), want, 1e-12, tag("tri_shrink_targets in place", {r, c, few, (i64)kind}));
      }
}

void test_shrink() {
  const Shrink kinds[] = {Shrink::Inverse, Shrink::Complement, Shrink::SqrtInverse, Shrink::SqrtComplement};
  for (i64 r : {0, 1, 7, 65})
    for (i64 c : {0, 1, 13})
      for (i64 na : {1, 3})
        for (Shrink kind : kinds)
          for (Axis axis : {Axis::Cols, Axis::Rows}) {
            HMat a = random(r, c);
            const i64 nl = axis == Axis::Cols ? c : r;
            Vec lam(static_cast<std::size_t>(nl)), alphas(static_cast<std::size_t>(na));
            for (auto& l : lam) l = std::fabs(g_rng.normal()) * 10;
            for (auto& al : alphas) al = std::exp(3 * g_rng.normal());
            auto da = upload<float>(a);
            auto dl = upload_vec(lam), dal = upload_vec(alphas);
            auto dd = upload<float>(HMat{na * r, c, Vec(static_cast<std::size_t>(na * r * c), 0.0)});
            g_be->shrink(da.v, dl.v, dal.v, kind, axis, dd.v);
            HMat want{na * r, c, Vec(static_cast<std::size_t>(na * r * c))};
            for (i64 q = 0; q < na; ++q)
              for (i64 i = 0; i < r; ++i)
                for (i64 j = 0; j < c; ++j)
                  want.at(q * r + i, j) = static_cast<float>(a.at(i, j)) * weight(kind, lam[axis == Axis::Cols ? j : i], alphas[q]);
            expect_close(download(dd.v), want, 1e-13, tag("shrink", {r, c, na, (i64)kind, (i64)axis}));
          }
  for (i64 r : {0, 1, 31})
    for (i64 c : {0, 1, 130})
      for (Shrink kind : kinds) {
        HMat a = random(r, c);
        Vec lam(static_cast<std::size_t>(r)), alpha(static_cast<std::size_t>(c));
        for (auto& l : lam) l = std::fabs(g_rng.normal()) * 10;
        for (auto& al : alpha) al = std::exp(3 * g_rng.normal());
        auto da = upload<float>(a), dd = upload<float>(a);
        auto dl = upload_vec(lam), dal = upload_vec(alpha);
        g_be->shrink_targets(da.v, dl.v, dal.v, kind, dd.v);
        HMat want = a;
        for (i64 k = 0; k < r; ++k)
          for (i64 j = 0; j < c; ++j) want.at(k, j) = static_cast<float>(a.at(k, j)) * weight(kind, lam[k], alpha[j]);
        expect_close(download(dd.v), want, 1e-13, tag("shrink_targets", {r, c, (i64)kind}));
        g_be->shrink_targets(da.v, dl.v, dal.v, kind, da.v);  // in place
        expect_close(download(da.v), want, 1e-13, tag("shrink_targets in place", {r, c, (i64)kind}));
      }
}

void test_scoring() {
  for (i64 t : {1, 13, 130})
    for (std::vector<i64> start : {std::vector<i64>{0, 1, 5}, std::vector<i64>{0, 7, 14, 23}, std::vector<i64>{0, 31, 62}}) {
      const i64 n = start.back(), k = static_cast<i64>(start.size()) - 1;
      HMat y = random(n, t, 2.0);
      Vec level(static_cast<std::size_t>(t));
      for (auto& l : level) l = g_rng.normal();
      // Column 0: constant up to float32 rounding of a level of 1e3 in every fold → SST 0.
      level[0] = 1e3;
      for (i64 i = 0; i < n; ++i) y.at(i, 0) = (i % 3 == 0) ? 1e-5 : 0.0;
      // Column 1 (when there is one): the same level with a resolved spread, ±3e-3 (relative SD 3e-6,
      // ~50 float32 ulps of the level) → scored: SST > 0 in every fold of two rows or more.
      if (t > 1) {
        level[1] = 1e3;
        for (i64 i = 0; i < n; ++i) y.at(i, 1) = (i % 2 == 0) ? 3e-3 : -3e-3;
      }
      auto dy = upload<float>(y);
      auto dl = upload_vec(level);
      auto sum = upload<double>(HMat{k, t, Vec(static_cast<std::size_t>(k * t), 0.0)});
      auto sst = upload<double>(HMat{k, t, Vec(static_cast<std::size_t>(k * t), 0.0)});
      g_be->fold_stats(dy.v, start, dl.v, sum.v, sst.v);
      HMat wsum{k, t, Vec(static_cast<std::size_t>(k * t))}, wsst = wsum;
      for (i64 v = 0; v < k; ++v)
        for (i64 j = 0; j < t; ++j) {
          double s = 0, s2 = 0;
          for (i64 i = start[v]; i < start[v + 1]; ++i) {
            const double yy = static_cast<float>(y.at(i, j));
            s += yy;
            s2 += yy * yy;
          }
          const double m = static_cast<double>(start[v + 1] - start[v]);
          const double ss = std::max(0.0, s2 - s * s / m);
          wsum.at(v, j) = s;
          wsst.at(v, j) = ss > kConstantTargetRelVar * (level[j] * level[j] * m + s2) ? ss : 0.0;
        }
      HMat gsst = download(sst.v);
      expect_close(download(sum.v), wsum, 1e-24, tag("fold_stats.sum", {n, t, k}));
      expect_close(gsst, wsst, 1e-24, tag("fold_stats.sst", {n, t, k}));
      for (i64 v = 0; v < k; ++v) CHECK(gsst.at(v, 0) == 0.0);
      if (t > 1)
        for (i64 v = 0; v < k; ++v) CHECK((gsst.at(v, 1) > 0.0) == (start[v + 1] - start[v] >= 2));

      // score: 3 stacked prediction blocks for fold 1 (or 0), every mode.
      const i64 v = k > 1 ? 1 : 0, m = start[v + 1] - start[v], blocks = 3;
      for (int kind = 0; kind < 2; ++kind)
        for (int residual = 0; residual < 2; ++residual) {
          HMat pred = random(blocks * m, t);
          Vec off(static_cast<std::size_t>(t));
          for (auto& o : off) o = g_rng.normal();
          HMat acc0 = random(blocks, t);
          auto dp = upload<float>(pred);
          auto doff = upload_vec(off), dacc = upload<double>(acc0);
          const ViewF yv = dy.v.row_range(start[v], m);
          g_be->score(dp.v, blocks, yv, residual ? ViewD{} : doff.v, residual, kind ? ScoreKind::Pearson : ScoreKind::R2,
                      sum.v.row_range(v, 1), sst.v.row_range(v, 1), 0.25, dacc.v);
          HMat want = acc0;
          for (i64 b = 0; b < blocks; ++b)
            for (i64 j = 0; j < t; ++j) {
              double sse = 0, sp = 0, spp = 0, spy = 0, sy = 0;
              for (i64 i = 0; i < m; ++i) {
                const double yy = static_cast<float>(y.at(start[v] + i, j)), pp = static_cast<float>(pred.at(b * m + i, j));
                const double q = residual ? yy - pp : pp + off[j];
                sse += (q - yy) * (q - yy);
                sp += q;
                spp += q * q;
                spy += q * yy;
                sy += yy;
              }
              const double st = wsst.at(v, j);
              double s;
              if (kind == 0) {
                s = st > 0 ? 1 - sse / st : 0.0;
              } else {
                const double cpp = spp - sp * sp / m, cpy = spy - sp * sy / m;
                s = (cpp > 0 && st > 0) ? cpy / std::sqrt(cpp * st) : 0.0;
              }
              want.at(b, j) += 0.25 * s;
            }
          expect_close(download(dacc.v), want, 1e-20, tag("score", {m, t, kind, residual}));
        }
    }
  // select_best: ties go to the larger alpha, skipped rows are never chosen; improve is strict.
  for (i64 t : {1, 7, 300}) {
    const std::vector<double> alphas = {10, 1, 100, 1000};
    HMat s = random(4, t);
    for (i64 j = 0; j < t; ++j) {
      if (j % 3 == 0) s.at(0, j) = s.at(2, j) = 5.0;  // tie between alpha 10 and 100 → 100
      if (j % 3 == 1) s.at(3, j) = 9.0;               // best is a skipped row → not chosen
    }
    std::vector<char> skip = {0, 0, 0, 1};
    auto ds = upload<double>(s);
    auto bi = upload<std::int32_t>(HMat{1, t, Vec(static_cast<std::size_t>(t), -1)}, 0, 0);
    auto bsc = upload_vec(Vec(static_cast<std::size_t>(t))), bal = upload_vec(Vec(static_cast<std::size_t>(t)));
    g_be->select_best(ds.v, alphas, skip, bi.v, bsc.v, bal.v);
    HMat gi = download(bi.v), gs = download(bsc.v), ga = download(bal.v);
    HMat wi{1, t, Vec(static_cast<std::size_t>(t))}, ws = wi, wa = wi;
    for (i64 j = 0; j < t; ++j) {
      i64 best = 0;
      for (i64 a = 1; a < 3; ++a)
        if (s.at(a, j) > s.at(best, j) || (s.at(a, j) == s.at(best, j) && alphas[a] > alphas[best])) best = a;
      wi.v[j] = static_cast<double>(best);
      ws.v[j] = s.at(best, j);
      wa.v[j] = alphas[best];
    }
    expect_close(gi, wi, 0, tag("select_best.index", {t}));
    expect_close(gs, ws, 0, tag("select_best.score", {t}));
    expect_close(ga, wa, 0, tag("select_best.alpha", {t}));
    // improve: candidate scores beat the current best only where strictly greater.
    HMat cur = random(1, t), cand = cur;
    for (i64 j = 0; j < t; ++j) cand.v[j] += (j % 2 ? 0.5 : 0.0);
    auto dcur = upload<double>(cur), dcand = upload<double>(cand);
    auto cur_i = upload<std::int32_t>(HMat{1, t, Vec(static_cast<std::size_t>(t), 7)}, 0, 0);
    auto cur_t = upload<std::int32_t>(HMat{1, t, Vec(static_cast<std::size_t>(t), 0)}, 0, 0);
    g_be->improve(dcand.v, bi.v, 3, dcur.v, cur_i.v, cur_t.v);
    HMat gt = download(cur_t.v), gidx = download(cur_i.v);
    HMat wt{1, t, Vec(static_cast<std::size_t>(t))}, widx = wt;
    for (i64 j = 0; j < t; ++j) {
      wt.v[j] = j % 2 ? 3 : 0;
      widx.v[j] = j % 2 ? wi.v[j] : 7;
    }
    expect_close(gt, wt, 0, tag("improve.tag", {t}));
    expect_close(gidx, widx, 0, tag("improve.index", {t}));
  }
}

// ------------------------------------------------------------------ memory accounting
void test_memory() {
  const MemoryStats before = g_be->memory_stats();
  {
    BufferPtr a = g_be->alloc(DType::F32, 1000);
    CHECK(g_be->memory_stats().live == before.live + 4000);
    CHECK(g_be->memory_stats().peak >= before.live + 4000);
  }
  CHECK(g_be->memory_stats().live == before.live);
  g_be->set_memory_limit(before.live + 10000);
  std::string msg;
  BufferPtr ok = g_be->alloc(DType::F64, 1000);
  CHECK(test::throws([&] { g_be->alloc(DType::F32, 1000); }, &msg));
  CHECK(msg.find("memory budget") != std::string::npos);
  // Past the limit is a budget refusal (retrying cannot help); an allocation the machine cannot
  // give (1 PiB) is an allocation failure (transient), and neither leaves anything counted.
  auto oom_reason = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.code() == ErrorCode::OutOfMemory ? e.oom_reason() : OomReason::None;
    }
    return OomReason::None;
  };
  CHECK(oom_reason([&] { g_be->alloc(DType::F32, 1000); }) == OomReason::Budget);
  ok.reset();
  g_be->set_memory_limit(0);
  CHECK(oom_reason([&] { g_be->alloc(DType::F32, std::size_t(1) << 48); }) == OomReason::Allocation);
  CHECK(g_be->memory_stats().live == before.live);
  // Host memory wrapped in place: on a host-visible backend its data is the caller's pointer.
  std::vector<float> host(10, 1.0f);
  BufferPtr w = g_be->wrap_host(host.data(), DType::F32, host.size());
  CHECK(w->residence() == Residence::Host && w->count() == 10);
  if (g_be->host_visible()) CHECK(w->data() == host.data());
  CHECK(g_be->memory_stats().live == before.live);  // wrapping allocates nothing
}

// ------------------------------------------------------------------ ridge routes, by name
// Mean R² over contiguous folds for each alpha (A × t), brute force in float64: a closed-form ridge
// on each fold's training rows with per-fold centring, scored on its validation rows.
Vec brute_force_cv(const HMat& x, const HMat& y, const Vec& alphas, int k) {
  const i64 n = x.rows, p = x.cols, t = y.cols;
  Vec cv(alphas.size() * static_cast<std::size_t>(t), 0.0);
  for (int v = 0; v < k; ++v) {
    // scikit-learn KFold's contiguous folds: the first n % k take one extra sample.
    const i64 s = v * (n / k) + std::min<i64>(v, n % k), e = s + n / k + (v < n % k ? 1 : 0), nt = n - (e - s);
    Vec xm(static_cast<std::size_t>(p), 0.0), ym(static_cast<std::size_t>(t), 0.0);
    for (i64 i = 0; i < n; ++i) {
      if (i >= s && i < e) continue;
      for (i64 j = 0; j < p; ++j) xm[j] += x.at(i, j) / nt;
      for (i64 j = 0; j < t; ++j) ym[j] += y.at(i, j) / nt;
    }
    for (std::size_t a = 0; a < alphas.size(); ++a) {
      // (XᵀX + αI) W = XᵀY on centred training rows, by Gauss-Jordan in float64.
      HMat g{p, p + t, Vec(static_cast<std::size_t>(p * (p + t)), 0.0)};
      for (i64 i = 0; i < n; ++i) {
        if (i >= s && i < e) continue;
        for (i64 q = 0; q < p; ++q) {
          const double xq = x.at(i, q) - xm[q];
          for (i64 r = 0; r < p; ++r) g.at(q, r) += xq * (x.at(i, r) - xm[r]);
          for (i64 j = 0; j < t; ++j) g.at(q, p + j) += xq * (y.at(i, j) - ym[j]);
        }
      }
      for (i64 q = 0; q < p; ++q) g.at(q, q) += alphas[a];
      for (i64 c = 0; c < p; ++c) {
        const double piv = g.at(c, c);
        for (i64 j = 0; j < p + t; ++j) g.at(c, j) /= piv;
        for (i64 r = 0; r < p; ++r)
          if (r != c) {
            const double f = g.at(r, c);
            for (i64 j = 0; j < p + t; ++j) g.at(r, j) -= f * g.at(c, j);
          }
      }
      for (i64 j = 0; j < t; ++j) {
        double sse = 0, sst = 0, mv = 0;
        for (i64 i = s; i < e; ++i) mv += y.at(i, j) / (e - s);
        for (i64 i = s; i < e; ++i) {
          double pred = ym[j];
          for (i64 q = 0; q < p; ++q) pred += (x.at(i, q) - xm[q]) * g.at(q, p + j);
          sse += (pred - y.at(i, j)) * (pred - y.at(i, j));
          sst += (y.at(i, j) - mv) * (y.at(i, j) - mv);
        }
        cv[a * static_cast<std::size_t>(t) + static_cast<std::size_t>(j)] += (1 - sse / sst) / k;
      }
    }
  }
  return cv;
}

void test_ridge_routes() {
  const std::string name = g_be->name();
  const Vec alphas = {0.5, 5, 50};
  for (auto [n, p] : {std::pair<i64, i64>{41, 7}, std::pair<i64, i64>{23, 31}}) {  // n > p and n < p, primes
    const i64 t = 5;
    HMat x = random(n, p), w = random(p, t), y = matmul(x, w);
    for (auto& v : y.v) v += 0.7 * g_rng.normal();
    for (auto& v : x.v) v = static_cast<float>(v);
    for (auto& v : y.v) v = static_cast<float>(v);
    std::vector<float> xf(x.v.begin(), x.v.end()), yf(y.v.begin(), y.v.end());
    const Vec ref = brute_force_cv(x, y, alphas, 4);
    for (const std::string& route : ridge_route_names()) {
      RidgeOptions o;
      o.alphas = alphas;
      const auto folds = contiguous_folds(n, 4);
      o.folds.assign(folds.begin(), folds.end());
      o.n_folds = 4;
      o.backend = name;
      o.solver = route;
      o.eig_precision = EigPrecision::Float64;
      const RidgeResult r = ridge_cv_fit({xf.data(), n, p}, {yf.data(), n, t}, o);
      ++g_cases;
      CHECK(r.info.solver == route && r.info.backend == name);
      expect_close(row(Vec(r.cv_scores.begin(), r.cv_scores.end())), row(ref), 1e-8, name + " RidgeCV route " + route + " n=" + std::to_string(n));
    }
    // Banded ridge's routes: one candidate γ equals RidgeCV on X with band b scaled by √γ_b.
    const i64 b0 = p / 3;
    const double g0 = 0.3, g1 = 0.7;
    HMat xs = x;
    for (i64 i = 0; i < n; ++i)
      for (i64 j = 0; j < p; ++j) xs.at(i, j) *= std::sqrt(j < b0 ? g0 : g1);
    const Vec ref_b = brute_force_cv(xs, y, alphas, 4);
    for (const char* route : {"per-fold-primal", "per-fold-kernel"}) {
      BandedRidgeOptions o;
      o.band_sizes = {b0, p - b0};
      o.alphas = alphas;
      o.gammas = {g0, g1, 1.0, 0.0};  // a second candidate that zeroes band 1
      const auto folds = contiguous_folds(n, 4);
      o.folds.assign(folds.begin(), folds.end());
      o.n_folds = 4;
      o.backend = name;
      o.solver = route;
      o.eig_precision = EigPrecision::Float64;
      const BandedRidgeResult r = banded_ridge_fit({xf.data(), n, p}, {yf.data(), n, t}, o);
      Vec best(static_cast<std::size_t>(t));
      for (i64 j = 0; j < t; ++j) {
        best[j] = ref_b[j];
        for (std::size_t a = 1; a < alphas.size(); ++a) best[j] = std::max(best[j], ref_b[a * t + j]);
      }
      expect_close(row(Vec(r.gamma_scores.begin(), r.gamma_scores.begin() + t)), row(best), 1e-8,
                   name + " banded route " + route + " n=" + std::to_string(n));
    }
  }
}

// ------------------------------------------------------------------ sampler
// A step program evaluated on one element in float64, as sd_fused_step.h defines it: the reference
// of sampler_step (the backend composes the program and computes in float32).
void reference_program(const StepProgram& p, double g, bool cfg, double eu, double ec, double noise, double* x, double* hist) {
  double r[kRegCount] = {};
  r[kRegX] = *x;
  r[kRegE] = cfg ? eu + g * (ec - eu) : ec;
  r[kRegN] = noise;
  for (int h = 0; h < kHistorySlots; ++h) r[kRegH0 + h] = hist[h];
  for (int i = 0; i < p.ops; ++i) {
    double acc = 0;
    for (int k = 0; k < p.op[i].terms; ++k) acc += p.op[i].term[k].coeff * r[p.op[i].term[k].reg];
    if (p.op[i].clamp) acc = std::min(p.op[i].clamp_range, std::max(-p.op[i].clamp_range, acc));
    r[p.op[i].dst] = acc;
  }
  *x = r[kRegX];
  for (int h = 0; h < kHistorySlots; ++h) hist[h] = r[kRegH0 + h];
}

// sampler_init and sampler_step on real step programs of every shape (one and two stored registers,
// the history shifts of LMS/PNDM/UniPC, Philox and given noise, clip_sample's clamps), with and
// without guidance, at awkward element counts, each image against the float64 reference.
void test_sampler() {
  struct Case {
    SchedulerKind kind;
    bool clip;
    double eta;
  };
  const Case cases[] = {{SchedulerKind::Ddim, false, 0.0},        {SchedulerKind::Ddim, true, 0.5},
                        {SchedulerKind::DpmSolverPP2M, false, 0}, {SchedulerKind::DpmSolverPP2MSde, false, 0},
                        {SchedulerKind::Lms, false, 0},           {SchedulerKind::Pndm, false, 0},
                        {SchedulerKind::UniPC, false, 0},         {SchedulerKind::EulerAncestral, false, 0},
                        {SchedulerKind::Heun, true, 0}};
  for (const Case& cs : cases) {
    ScheduleConfig cfg_s = sd15_schedule();
    cfg_s.clip_sample = cs.clip;
    const SamplerPlan plan = make_sampler_plan(cfg_s, cs.kind, 12, 1.0, cs.eta);
    for (int groups : {1, 2})
      for (i64 n : {i64{1}, i64{7}, i64{257}, i64{1031}})
        for (bool given_noise : {false, true}) {
          const i64 B = n == 257 ? 3 : 1;
          const double g = groups == 2 ? 4.5 : 1.0;
          // host state in float64 (what the reference carries) and its float32 image on the backend
          HMat x = random(B, n), z = random(B, n);
          std::vector<HMat> hist;
          for (int h = 0; h < kHistorySlots; ++h) hist.push_back(random(B, n, 0.5));
          std::vector<NoiseKey> keys;
          for (i64 b = 0; b < B; ++b) keys.push_back({77, static_cast<std::uint64_t>(b + 3)});
          SamplerBatch sb;
          sb.images = B;
          sb.per_image = n;
          sb.groups = groups;
          sb.keys = keys;
          auto whole = [&](const HMat& h) { return upload<float>(h, 0, 0); };
          auto dx = whole(x);
          sb.x = dx.v;
          std::vector<DMat<float>> dh;
          for (int h = 0; h < plan.history; ++h) {
            dh.push_back(whole(hist[static_cast<std::size_t>(h)]));
            sb.history[h] = dh.back().v;
          }
          auto din = whole(HMat{groups * B, n, Vec(static_cast<std::size_t>(groups * B * n), 0.0)});
          sb.unet_in = din.v;
          // sampler_init: x = a·z + s·noise and the first U-Net input
          {
            HMat nz = random(B, n);
            auto dz = whole(z);
            auto dn = whole(nz);
            g_be->sampler_init(sb, dz.v, given_noise ? dn.v : ViewF{}, plan.init_x_scale, plan.init_noise_scale,
                               plan.steps.front().model_in_scale);
            HMat want_x{B, n, Vec(static_cast<std::size_t>(B * n))}, want_in{groups * B, n, Vec(static_cast<std::size_t>(groups * B * n))};
            for (i64 b = 0; b < B; ++b)
              for (i64 j = 0; j < n; ++j) {
                const double nv = given_noise ? static_cast<double>(static_cast<float>(nz.at(b, j))) : philox_normal(keys[static_cast<std::size_t>(b)], 0, static_cast<std::uint64_t>(j));
                const double v = plan.init_x_scale * static_cast<double>(static_cast<float>(z.at(b, j))) + plan.init_noise_scale * nv;
                want_x.at(b, j) = v;
                for (int q = 0; q < groups; ++q) want_in.at(q * B + b, j) = plan.steps.front().model_in_scale * v;
              }
            expect_close(download(sb.x), want_x, 1e-12, tag("sampler_init x", {B, n, groups}));
            expect_close(download(sb.unet_in), want_in, 1e-12, tag("sampler_init unet_in", {B, n, groups}));
            x = download(sb.x);
          }
          // three consecutive steps from the middle of the plan, the state carried over
          for (std::size_t s = plan.steps.size() / 2; s < plan.steps.size() / 2 + 3 && s < plan.steps.size(); ++s) {
            const StepProgram& prog = plan.steps[s].program;
            HMat eps = random(groups * B, n), sn = random(B, n);
            auto de = whole(eps);
            auto dsn = whole(sn);
            sb.eps = de.v;
            sb.step_noise = given_noise ? dsn.v : ViewF{};
            g_be->sampler_step(compile_step(prog, groups, g), sb);
            for (i64 b = 0; b < B; ++b)
              for (i64 j = 0; j < n; ++j) {
                double hv[kHistorySlots];
                for (int h = 0; h < kHistorySlots; ++h) hv[h] = hist[static_cast<std::size_t>(h)].at(b, j);
                const double eu = static_cast<float>(eps.at(b, j)), ec = static_cast<float>(eps.at((groups - 1) * B + b, j));
                const double nv = given_noise ? static_cast<double>(static_cast<float>(sn.at(b, j)))
                                              : philox_normal(keys[static_cast<std::size_t>(b)], prog.noise_stream, static_cast<std::uint64_t>(j));
                reference_program(prog, g, groups == 2, eu, ec, nv, &x.at(b, j), hv);
                for (int h = 0; h < kHistorySlots; ++h) hist[static_cast<std::size_t>(h)].at(b, j) = hv[h];
              }
            const std::string what = std::string(scheduler_kind_name(cs.kind)) + (cs.clip ? " clip" : "") + " step " + std::to_string(s) +
                                     (given_noise ? " given noise" : " philox");
            // float32 arithmetic on composed coefficients: a few ulps of the largest term, which a
            // single element whose terms nearly cancel turns into ~1e-5 relative (NMSE 1e-10); a
            // wrong or missing term gives 1e-3 and more.
            const HMat got_x = download(sb.x);
            expect_close(got_x, x, 1e-9, tag(("sampler_step x " + what).c_str(), {B, n, groups}));
            for (int h = 0; h < plan.history; ++h)
              expect_close(download(sb.history[h]), hist[static_cast<std::size_t>(h)], 1e-9,
                           tag(("sampler_step history " + what).c_str(), {B, n, groups, h}));
            HMat want_in{groups * B, n, Vec(static_cast<std::size_t>(groups * B * n))};
            for (i64 b = 0; b < B; ++b)
              for (i64 j = 0; j < n; ++j)
                for (int q = 0; q < groups; ++q) want_in.at(q * B + b, j) = prog.next_in_scale * got_x.at(b, j);
            expect_close(download(sb.unet_in), want_in, 1e-12, tag(("sampler_step unet_in " + what).c_str(), {B, n, groups}));
            // continue from what the backend holds (float32), as the sampler does
            x = got_x;
            for (int h = 0; h < plan.history; ++h) hist[static_cast<std::size_t>(h)] = download(sb.history[h]);
          }
        }
  }
  // a batch without a buffer for a history slot its program writes is refused, not written through null
  {
    const SamplerPlan plan = make_sampler_plan(sd15_schedule(), SchedulerKind::DpmSolverPP2M, 10, 1.0);
    SamplerBatch sb;
    sb.images = 1;
    sb.per_image = 4;
    sb.keys = {{1, 0}};
    auto dx = upload<float>(random(1, 4), 0, 0), de = upload<float>(random(1, 4), 0, 0), di = upload<float>(random(1, 4), 0, 0);
    sb.x = dx.v;
    sb.eps = de.v;
    sb.unet_in = di.v;
    ++g_cases;
    bool refused = false;
    try {
      g_be->sampler_step(compile_step(plan.steps[1].program, 1, 1.0), sb);
    } catch (const Error& e) {
      refused = e.code() == ErrorCode::InvalidArgument;
    }
    if (!refused) {
      std::fprintf(stderr, "sampler_step without a history buffer was not refused\n");
      ++test::failures();
    }
  }
}

// ------------------------------------------------------------------ many problems at once
// ridge_cv_fit_many: three independent problems (different shapes, one in several target batches)
// two at a time on this backend give what each gives alone.
void test_fit_many() {
  const std::string name = g_be->name();
  struct Data {
    i64 n, p, t;
    std::vector<float> x, y;
  };
  std::vector<Data> data;
  for (auto [n, p, t] : {std::tuple<i64, i64, i64>{83, 29, 40}, {120, 150, 67}, {61, 13, 200}}) {
    HMat x = random(n, p), w = random(p, t), y = matmul(x, w);
    for (auto& v : y.v) v += 2.0 * g_rng.normal();
    data.push_back({n, p, t, std::vector<float>(x.v.begin(), x.v.end()), std::vector<float>(y.v.begin(), y.v.end())});
  }
  std::vector<RidgeProblem> problems;
  for (const Data& d : data) {
    RidgeOptions o;
    o.alphas = {0.1, 1, 10, 100, 1000};
    const auto folds = contiguous_folds(d.n, 4);
    o.folds.assign(folds.begin(), folds.end());
    o.n_folds = 4;
    o.backend = name;
    o.target_batch = d.t == 200 ? 64 : 0;
    problems.push_back({{d.x.data(), d.n, d.p}, {d.y.data(), d.n, d.t}, o});
  }
  const std::vector<RidgeResult> many = ridge_cv_fit_many(problems, 2);
  ++g_cases;
  CHECK(many.size() == problems.size());
  for (std::size_t i = 0; i < problems.size(); ++i) {
    const RidgeResult one = ridge_cv_fit(problems[i].x, problems[i].y, problems[i].options);
    HMat a{1, static_cast<i64>(one.coef.size()), Vec(one.coef.begin(), one.coef.end())};
    HMat b{1, static_cast<i64>(many[i].coef.size()), Vec(many[i].coef.begin(), many[i].coef.end())};
    expect_close(b, a, 1e-10, name + " ridge_cv_fit_many coef, problem " + std::to_string(i));
    CHECK(one.best_alphas == many[i].best_alphas);
  }
  CHECK(test::throws([&] { ridge_cv_fit_many(problems, 0); }));
}

// ------------------------------------------------------------------ a device backend against the CPU
// Every ridge route and banded ridge on this backend against the CPU backend on the same problem,
// with the targets split into several batches (target_batch): coefficients, chosen alphas and CV
// scores agree to float32 tolerance. Plus the device's failure modes: an allocation past the
// device's memory and an unknown device index are reported as errors, and the backend still works.
void test_against_cpu() {
  const std::string name = g_be->name();
  // Two problems: more samples than features (the primal routes' case) and fewer (the kernel
  // routes'). A kernel route on n ≫ p works on a rank-p kernel whose null space is float32 noise,
  // which two backends' different summation orders resolve differently (NMSE ~4e-7 seen on an
  // H200): each route is compared where the automatic choice would run it.
  const Vec alphas = {1e-2, 1e-1, 1, 10, 100, 1e3, 1e4, 1e5, 1e6};
  const i64 t = 301;
  struct Shape {
    i64 n, p;
    std::vector<float> x, y;
  };
  std::vector<Shape> shapes;
  for (auto [n, p] : {std::pair<i64, i64>{257, 61}, std::pair<i64, i64>{131, 263}}) {
    HMat x = random(n, p), w = random(p, t), y = matmul(x, w);
    for (i64 i = 0; i < n; ++i)
      for (i64 j = 0; j < t; ++j) y.at(i, j) += (0.2 + 3.0 * static_cast<double>(j) / t) * g_rng.normal();  // alphas spread
    shapes.push_back({n, p, std::vector<float>(x.v.begin(), x.v.end()), std::vector<float>(y.v.begin(), y.v.end())});
  }
  auto compare = [&](const std::vector<float>& a, const std::vector<float>& b, double tol, const std::string& what) {
    HMat ha{1, static_cast<i64>(a.size()), Vec(a.begin(), a.end())}, hb{1, static_cast<i64>(b.size()), Vec(b.begin(), b.end())};
    expect_close(ha, hb, tol, what);
  };
  for (const std::string& route : ridge_route_names()) {
    const Shape& sh = shapes[route.find("kernel") != std::string::npos ? 1 : 0];
    const i64 n = sh.n, p = sh.p;
    const std::vector<float>&xf = sh.x, &yf = sh.y;
    RidgeOptions o;
    // (n < p: the smallest alphas leave the exact kernel route's (I − H) blocks singular in float32)
    o.alphas = n < p ? Vec(alphas.begin() + 3, alphas.end()) : alphas;
    const auto folds = contiguous_folds(n, 5);
    o.folds.assign(folds.begin(), folds.end());
    o.n_folds = 5;
    o.solver = route;
    o.target_batch = 97;  // four batches
    // A forced exact route refuses an alpha whose (I − H) blocks are not positive definite in
    // float32 (NumericalFailure; the automatic route then falls back to per-fold): both backends
    // must refuse the same problem the same way.
    auto fit = [&](const std::string& backend, std::string* refused) {
      o.backend = backend;
      try {
        return ridge_cv_fit({xf.data(), n, p}, {yf.data(), n, t}, o);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::NumericalFailure) throw;
        *refused = e.what();
        return RidgeResult{};
      }
    };
    std::string ref_refused, got_refused;
    const RidgeResult ref = fit("cpu", &ref_refused);
    const RidgeResult got = fit(name, &got_refused);
    if (!ref_refused.empty() || !got_refused.empty()) {
      ++g_cases;
      std::printf("  route %s on %lld×%lld: cpu %s, %s %s\n", route.c_str(), (long long)n, (long long)p,
                  ref_refused.empty() ? "fits" : "refuses", name.c_str(), got_refused.empty() ? "fits" : "refuses");
      if (ref_refused.empty() != got_refused.empty()) {
        std::fprintf(stderr, "route %s: cpu and %s disagree on refusing the fit (%s | %s)\n", route.c_str(), name.c_str(),
                     ref_refused.c_str(), got_refused.c_str());
        ++test::failures();
      }
      continue;
    }
    ++g_cases;
    CHECK(got.info.backend == name && got.info.n_batches == 4);
    int same = 0;
    for (i64 j = 0; j < t; ++j) same += got.best_alphas[static_cast<std::size_t>(j)] == ref.best_alphas[static_cast<std::size_t>(j)];
    // A target whose two best alphas score within rounding may pick either: allow 1 %.
    if (same < t - t / 100) {
      std::fprintf(stderr, "%s route %s: %d of %lld chosen alphas equal the CPU's\n", name.c_str(), route.c_str(), same, (long long)t);
      ++test::failures();
    }
    std::vector<float> gc(got.coef.begin(), got.coef.end()), rc(ref.coef.begin(), ref.coef.end());
    compare(gc, rc, 1e-8, name + " vs cpu coef, route " + route);
    // Exact CV divides by (I − H) blocks whose conditioning grows as α/(λ + α) shrinks: two
    // backends' float32 products then differ in the fourth digit of a score (NMSE ~5e-8 seen at
    // α = 1 on the n < p problem); a wrong fold or alpha shows as NMSE ≥ 1e-4.
    const double score_tol = route.rfind("exact", 0) == 0 ? 1e-6 : 1e-10;
    compare(got.cv_scores, ref.cv_scores, score_tol, name + " vs cpu cv scores, route " + route);
    compare(got.best_scores, ref.best_scores, score_tol, name + " vs cpu best scores, route " + route);
  }
  for (const Shape& sh : shapes) {
    const i64 n = sh.n, p = sh.p;
    const std::vector<float>&xf = sh.x, &yf = sh.y;
    BandedRidgeOptions o;
    o.band_sizes = {20, p - 20};
    o.alphas = alphas;
    o.gammas = {0.3, 0.7, 1.0, 0.0, 0.5, 0.5};
    const auto folds = contiguous_folds(n, 5);
    o.folds.assign(folds.begin(), folds.end());
    o.n_folds = 5;
    o.target_batch = 97;
    o.backend = "cpu";
    const BandedRidgeResult ref = banded_ridge_fit({xf.data(), n, p}, {yf.data(), n, t}, o);
    o.backend = name;
    const BandedRidgeResult got = banded_ridge_fit({xf.data(), n, p}, {yf.data(), n, t}, o);
    std::vector<float> gc(got.coef.begin(), got.coef.end()), rc(ref.coef.begin(), ref.coef.end());
    compare(gc, rc, 1e-8, name + " vs cpu banded coef, n=" + std::to_string(n));
    compare(std::vector<float>(got.gamma_scores.begin(), got.gamma_scores.end()),
            std::vector<float>(ref.gamma_scores.begin(), ref.gamma_scores.end()), 1e-10, name + " vs cpu banded scores, n=" + std::to_string(n));
  }
  // Out of device memory: a clean OutOfMemory, nothing counted, the backend still usable.
  {
    ++g_cases;
    const MemoryStats before = g_be->memory_stats();
    std::string msg;
    bool oom = false;
    try {
      g_be->alloc(DType::F32, std::size_t(1) << 48);  // 1 PiB
    } catch (const Error& e) {
      oom = e.code() == ErrorCode::OutOfMemory && e.oom_reason() == OomReason::Allocation;
      msg = e.what();
    }
    if (!oom) {
      std::fprintf(stderr, "a 1 PiB device allocation did not fail with an OutOfMemory of reason allocation (%s)\n", msg.c_str());
      ++test::failures();
    }
    CHECK(g_be->memory_stats().live == before.live);
    HMat a = random(5, 3);
    expect_close(download(upload<float>(a).v), a, 1e-12, name + " usable after an out-of-memory");
  }
  // A device index past the machine's devices, and a malformed one.
  {
    ++g_cases;
    std::string msg;
    bool unavailable = false;
    try {
      make_backend(name + ":97");
    } catch (const Error& e) {
      unavailable = e.code() == ErrorCode::BackendUnavailable;
      msg = e.what();
    }
    if (!unavailable || msg.find("97") == std::string::npos) {
      std::fprintf(stderr, "device 97: expected BackendUnavailable naming it, got '%s'\n", msg.c_str());
      ++test::failures();
    }
    CHECK(test::throws([&] { make_backend(name + ":x"); }));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "cpu";
  std::unique_ptr<Backend> be;
  for (const BackendInfo& info : list_backends()) {
    if (info.name != name) continue;
    if (!info.available) {
      std::printf("test_backend_ops %s: SKIPPED, %s\n", name.c_str(), info.detail.c_str());
      return 77;
    }
    be = make_backend(name);
  }
  if (!be) {
    std::printf("test_backend_ops: unknown backend '%s'\n", name.c_str());
    return 1;
  }
  g_be = be.get();
  std::printf("backend %s: %s\n", be->name().c_str(), be->description().c_str());
  test::run("gemm float32", [] { test_gemm<float>(1e-11); });
  test::run("gemm float64", [] { test_gemm<double>(1e-26); });
  test::run("syrk", test_syrk);
  test::run("eigh float32", [] { test_eigh<float>(1e-11); });
  test::run("eigh float64", [] { test_eigh<double>(1e-24); });
  if (g_be->supports(Op::Tridiagonalize, DType::F32)) {
    test::run("tridiagonalize float32", [] { test_tridiagonalize<float>(1e-11); });
    test::run("tridiagonalize float64", [] { test_tridiagonalize<double>(1e-24); });
    test::run("ridge shrinkage along a tridiagonal basis", test_tri_shrink);
  }
  test::run("cholesky / solve / inverse float32", [] { test_cholesky<float>(1e-10); });
  test::run("cholesky / solve / inverse float64", [] { test_cholesky<double>(1e-24); });
  test::run("element-wise kernels", test_elementwise);
  test::run("ridge shrinkage kernels", test_shrink);
  test::run("fold statistics, scores, best-alpha selection", test_scoring);
  test::run("memory accounting and limit", test_memory);
  test::run("every ridge engine route by name on this backend (RidgeCV and banded)", test_ridge_routes);
  test::run("sampler init and step (every step shape, noise, guidance)", test_sampler);
  test::run("many independent ridge problems at once (ridge_cv_fit_many)", test_fit_many);
  if (name != "cpu") test::run("ridge routes and banded ridge against the CPU backend; device failures", test_against_cpu);
  std::printf("%d cases compared\n", g_cases);
  return test::finish();
}
