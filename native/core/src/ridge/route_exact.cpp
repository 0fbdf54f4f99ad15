// The exact routes (ridge.md §2): one decomposition of all samples; every fold's held-out
// residuals in closed form, e_v = (I − H_vv)⁻¹ (y_v − ŷ_v), with H = H_c + 11ᵀ/n when an
// intercept is fitted, which equals per-fold centring exactly.
//
//   exact-primal  XᵀX = QΛQᵀ, N = X̃Q; per alpha: residual Y − N D Z (Z = NᵀY),
//                 (I − H)_vv = I − S_v S_vᵀ − 11ᵀ/n with S_v = N_v diag(√(1/(λ+α)))
//   exact-kernel  XXᵀ = QΛQᵀ; per alpha: residual Q diag(α/(λ+α)) QᵀY,
//                 (I − H)_vv = S_vᵀ S_v − 11ᵀ/n with S_v = diag(√(α/(λ+α))) Q_vᵀ
//
// The (I − H)_vv blocks are formed and factored in float64 for every (alpha, fold) and kept for
// every batch: well-conditioned ones as a float32 factor (primal) or, in the kernel form, folded
// with the residual's projection into one matrix P = (I − H)_vv⁻¹ Q_v diag(α/(λ+α)), so that a
// fold's held-out residuals at one alpha are one GEMM, e_v = P · QᵀY; the others as the float64
// factor.
#include <algorithm>
#include <cmath>
#include <limits>

#include "brainlatent/error.h"
#include "engine.h"
#include "route_util.h"

namespace brainlatent::ridge {

namespace {

std::size_t Z(i64 v) { return static_cast<std::size_t>(v); }
double eig_flops(double m) { return 20.0 * m * m * m; }

struct Factor {
  BufferPtr buf;
  enum Kind { F32Factor, Projection, F64Factor } kind = F32Factor;
};

class Exact final : public Route {
 public:
  Exact(Context& ctx, bool primal) : ctx_(ctx), be_(ctx.be), pb_(ctx.pb), primal_(primal) {}

  Footprint footprint() const override {
    const double n = static_cast<double>(pb_.n()), p = static_cast<double>(pb_.p()), A = pb_.n_alphas();
    const double r = primal_ ? p : n, nv = static_cast<double>(pb_.folds.max_size());
    // Per (alpha, fold): a float32 factor (nv²) in the primal form, the projection P (nv × n) in the kernel form.
    double factors = 0;
    for (int v = 0; v < pb_.folds.k; ++v) factors += 4.0 * A * static_cast<double>(pb_.folds.size(v)) * (primal_ ? pb_.folds.size(v) : n);
    Footprint f;
    // The Gram (during setup), Q, N (primal), the factors; transients: the eigensolver, one block
    // S_v and its float64 factor, the kernel's (A⁻¹Q_vᵀ).
    f.fixed = 4 * r * r + (primal_ ? 4 * n * p : 0) + factors +
              std::max(4 * r * r + eig_transient_bytes(ctx_, primal_ ? pb_.p() : pb_.n()), 4 * nv * r + 12 * nv * nv + 4 * nv * n);
    // Per target: Z, its shrunk copy, the full residual (primal) or one fold's (kernel), and a
    // float64 copy of one fold's residuals.
    f.per_target = 4 * (2 * r + (primal_ ? n : nv)) + 8 * nv;
    return f;
  }

  void setup() override {
    const i64 n = pb_.n(), p = pb_.p(), r = primal_ ? p : n;
    BufferPtr g = be_.alloc(DType::F32, Z(r * r));
    const ViewF gv = view<float>(*g, r, r);
    be_.syrk(primal_, 1.0f, ctx_.x, 0.0f, gv);
    ctx_.count_flops(primal_ ? static_cast<double>(n) * p * p : static_cast<double>(n) * n * p);
    ctx_.check_gram_finite(gv, primal_ ? "XᵀX" : "XXᵀ");
    ctx_.sub_progress(0.1, "decompose");
    eig_ = ctx_.decompose(gv, !primal_ && pb_.fit_intercept);
    g.reset();
    if (primal_) {
      // N = X̃Q: the row space of the leverages.
      n_buf_ = be_.alloc(DType::F32, Z(n * p));
      nmat_ = view<float>(*n_buf_, n, p);
      be_.gemm(false, true, 1.0f, ctx_.x, eig_.q, 0.0f, nmat_);
      ctx_.count_flops(2.0 * n * p * p);
    }
  }

  // The (I − H)_vv factors of every alpha and fold.
  void begin_candidate(int, bool) override {
    const i64 n = pb_.n(), r = eig_.q.rows;
    const int A = pb_.n_alphas(), k = pb_.folds.k;
    const double inv_n = pb_.fit_intercept ? 1.0 / static_cast<double>(n) : 0.0;
    factors_.clear();
    factors_.resize(Z(A * k));
    Scratch<float> sv_s, av_s;
    for (int a = 0; a < A; ++a) {
      BufferPtr alpha = ctx_.upload({pb_.alphas[Z(a)]});
      // The kernel form's residual weights α/(λ+α), one per eigenvector, for the projections.
      BufferPtr wres;
      if (!primal_) {
        std::vector<double> lam = ctx_.download(eig_.lam), w(lam.size());
        for (std::size_t q = 0; q < lam.size(); ++q) w[q] = pb_.alphas[Z(a)] / (lam[q] + pb_.alphas[Z(a)]);
        wres = ctx_.upload(w);
      }
      for (int v = 0; v < k; ++v) {
        ctx_.checkpoint();
        const i64 s = pb_.folds.start[Z(v)], nv = pb_.folds.size(v);
        const ViewF av = av_s.get(be_, nv, nv);
        if (primal_) {
          const ViewF sv = sv_s.get(be_, nv, r);
          be_.shrink(nmat_.row_range(s, nv), eig_.lam, vec<double>(*alpha, 1), Shrink::SqrtInverse, Axis::Cols, sv);
          be_.syrk(false, 1.0f, sv, 0.0f, av);
        } else {
          const ViewF sv = sv_s.get(be_, r, nv);
          be_.shrink(eig_.q.col_range(s, nv), eig_.lam, vec<double>(*alpha, 1), Shrink::SqrtComplement, Axis::Rows, sv);
          be_.syrk(true, 1.0f, sv, 0.0f, av);
        }
        ctx_.count_flops(static_cast<double>(nv) * nv * r);
        BufferPtr ad = be_.alloc(DType::F64, Z(nv * nv));
        const ViewD adv = view<double>(*ad, nv, nv);
        if (primal_) be_.convert(av, adv, -1.0, -inv_n, 1.0);  // I − SSᵀ − 11ᵀ/n
        else be_.convert(av, adv, 1.0, -inv_n, 0.0);          // SᵀS − 11ᵀ/n
        if (!be_.cholesky(adv))
          throw Error(ErrorCode::NumericalFailure,
                      "exact CV: (I − H) for fold " + std::to_string(v) + " at alpha " + std::to_string(pb_.alphas[Z(a)]) +
                          " is not positive definite (the alpha is too small for this data); use cvMethod 'per-fold' or larger alphas");
        // cond(A) ≈ (max/min of the factor's diagonal)²; float32 solves keep ~1e-3 relative
        // accuracy up to 1e4.
        const std::vector<double> d = ctx_.download(ViewD{adv.buf, adv.offset, nv, 1, nv + 1});
        const auto mm = std::minmax_element(d.begin(), d.end());
        const double ratio = *mm.second / *mm.first;
        Factor& f = factors_[Z(a * k + v)];
        if (ratio * ratio > 1e4) {
          f.kind = Factor::F64Factor;
          f.buf = std::move(ad);
        } else if (primal_) {
          f.kind = Factor::F32Factor;
          f.buf = be_.alloc(DType::F32, Z(nv * nv));
          be_.convert(adv, view<float>(*f.buf, nv, nv));
        } else {
          // P = A⁻¹ Q_v diag(α/(λ+α)): Q_v is rows s.. of Q, i.e. columns s.. of q.
          be_.cholesky_inverse(adv);
          BufferPtr inv = be_.alloc(DType::F32, Z(nv * nv));
          be_.convert(adv, view<float>(*inv, nv, nv));
          ad.reset();
          f.kind = Factor::Projection;
          f.buf = be_.alloc(DType::F32, Z(nv * n));
          const ViewF pv = view<float>(*f.buf, nv, n);
          be_.gemm(false, true, 1.0f, view<float>(*inv, nv, nv), eig_.q.col_range(s, nv), 0.0f, pv);
          be_.scale_rows_cols(pv, ViewD{}, vec<double>(*wres, n));
          ctx_.count_flops(2.0 * nv * nv * n);
        }
      }
      ctx_.sub_progress(0.1 + 0.9 * (a + 1.0) / A, "leverage");
    }
  }

  void begin_refit(int) override {}

  void score(const Batch& batch, const ViewD& acc) override {
    const i64 n = pb_.n(), r = eig_.q.rows, tb = batch.tb;
    const int A = pb_.n_alphas(), k = pb_.folds.k;
    // Z = NᵀY (= QᵀX̃ᵀY) for primal, QᵀY for kernel: r × tb, kept for the refit.
    z_view_ = z_.get(be_, r, tb);
    if (primal_) be_.gemm(true, false, 1.0f, nmat_, batch.y, 0.0f, z_view_);
    else be_.gemm(false, false, 1.0f, eig_.q, batch.y, 0.0f, z_view_);
    ctx_.count_flops(2.0 * n * r * tb);
    const ViewF zs = zs_.get(be_, r, tb);
    const ViewF res = primal_ ? res_.get(be_, n, tb) : ViewF{};
    for (int a = 0; a < A; ++a) {
      ctx_.checkpoint();
      BufferPtr alpha = ctx_.upload({pb_.alphas[Z(a)]});
      // Residual of the full fit: primal Y − N D Z with D = 1/(λ+α); kernel Q diag(α/(λ+α)) QᵀY (the
      // projections P already carry it: only blocks kept as a float64 factor need it here).
      bool need_zs = primal_;
      for (int v = 0; v < k; ++v) need_zs = need_zs || factors_[Z(a * k + v)].kind != Factor::Projection;
      if (need_zs)
        be_.shrink(z_view_, eig_.lam, vec<double>(*alpha, 1), primal_ ? Shrink::Inverse : Shrink::Complement, Axis::Rows, zs);
      if (primal_) {
        be_.copy(batch.y, res);
        be_.gemm(false, false, -1.0f, nmat_, zs, 1.0f, res);
        ctx_.count_flops(2.0 * n * r * tb);
      }
      for (int v = 0; v < k; ++v) {
        const i64 s = pb_.folds.start[Z(v)], nv = pb_.folds.size(v);
        const Factor& f = factors_[Z(a * k + v)];
        const ViewF rv = primal_ ? res.row_range(s, nv) : rv_.get(be_, nv, tb);
        if (f.kind == Factor::Projection) {
          // e_v = P · QᵀY
          be_.gemm(false, false, 1.0f, view<float>(*f.buf, nv, n), z_view_, 0.0f, rv);
          ctx_.count_flops(2.0 * nv * n * tb);
        } else {
          if (!primal_) {
            be_.gemm(true, false, 1.0f, eig_.q.col_range(s, nv), zs, 0.0f, rv);
            ctx_.count_flops(2.0 * nv * r * tb);
          }
          // Each target column of rv is one right-hand side: e_j = A⁻¹ r_j.
          if (f.kind == Factor::F64Factor) {
            const ViewD rd = rd_.get(be_, nv, tb);
            be_.convert(rv, rd);
            be_.cholesky_solve(view<double>(*f.buf, nv, nv), rd);
            be_.convert(rd, rv);
          } else {
            be_.cholesky_solve(view<float>(*f.buf, nv, nv), rv);
          }
          ctx_.count_flops(2.0 * nv * nv * tb);
        }
        be_.score(rv, 1, batch.y.row_range(s, nv), ViewD{}, true, pb_.score, batch.sum.row_range(v, 1), batch.sst.row_range(v, 1),
                  1.0 / k, acc.row_range(a, 1));
      }
    }
    z_key_ = batch.y_buf.get();
  }

  void refit(const Batch& batch, const ViewD& alphas, const ViewF& out) override {
    const i64 n = pb_.n(), p = pb_.p(), r = eig_.q.rows, tb = batch.tb;
    if (z_key_ != batch.y_buf.get() || z_view_.cols != tb) {
      z_view_ = z_.get(be_, r, tb);
      if (primal_) be_.gemm(true, false, 1.0f, nmat_, batch.y, 0.0f, z_view_);
      else be_.gemm(false, false, 1.0f, eig_.q, batch.y, 0.0f, z_view_);
    }
    const ViewF ez = zs_.get(be_, r, tb);
    be_.shrink_targets(z_view_, eig_.lam, alphas, Shrink::Inverse, ez);
    if (primal_) {
      be_.gemm(true, false, 1.0f, eig_.q, ez, 0.0f, out);
      ctx_.count_flops(2.0 * p * r * tb);
    } else {
      const ViewF dual = res_.get(be_, n, tb);
      be_.gemm(true, false, 1.0f, eig_.q, ez, 0.0f, dual);
      be_.gemm(true, false, 1.0f, ctx_.x, dual, 0.0f, out);
      ctx_.count_flops(2.0 * n * n * tb + 2.0 * n * p * tb);
    }
    z_key_ = nullptr;
  }

  void end_candidate() override { factors_.clear(); }

 private:
  Context& ctx_;
  Backend& be_;
  const Problem& pb_;
  bool primal_;
  Context::Eig eig_;
  BufferPtr n_buf_;
  ViewF nmat_;
  std::vector<Factor> factors_;
  Scratch<float> z_, zs_, res_, rv_;
  Scratch<double> rd_;
  ViewF z_view_;
  const Buffer* z_key_ = nullptr;
};

}  // namespace

std::unique_ptr<Route> make_exact_primal(Context& ctx) { return std::make_unique<Exact>(ctx, true); }
std::unique_ptr<Route> make_exact_kernel(Context& ctx) { return std::make_unique<Exact>(ctx, false); }

double cost_exact_primal(const Problem& pb) {
  const double n = static_cast<double>(pb.n()), p = static_cast<double>(pb.p()), t = static_cast<double>(pb.t()),
               A = pb.n_alphas(), nv = n / pb.folds.k;
  return n * p * p + eig_flops(p) + 2 * n * p * p + 2 * n * p * t + A * (2 * n * p * t + n * nv * p + n * nv * nv / 3 + 2 * n * nv * t) +
         2 * p * p * t;
}

double cost_exact_kernel(const Problem& pb) {
  const double n = static_cast<double>(pb.n()), p = static_cast<double>(pb.p()), t = static_cast<double>(pb.t()),
               A = pb.n_alphas(), nv = n / pb.folds.k;
  return n * n * p + eig_flops(n) + 2 * n * n * t + A * (2 * n * n * t + n * nv * n + n * nv * nv / 3 + 2 * n * nv * t) + 2 * n * n * t +
         2 * n * p * t;
}

}  // namespace brainlatent::ridge
