// The per-fold routes (ridge.md §1): one eigendecomposition per fold serves every alpha; the
// Grams are formed once and shared by every fold (and, in banded ridge, by every candidate γ).
//
//   per-fold-primal  C = X̃ᵀX̃ once; per fold C_t = S (C − X̃_vᵀX̃_v − n_t x̄_t x̄_tᵀ) S = QΛQᵀ,
//                    M = (X̃_v − 1x̄_tᵀ) S Q, and per batch Z = Qᵀ S (B − B_v − n_t x̄_t ȳ_tᵀ)
//                    with B_v = X̃_vᵀY_v computed once per batch; refit W = S Q (E ∘ QᵀSB)
//   per-fold-kernel  K_b = X̃_bX̃_bᵀ per band once; K_γ = Σ γ_b K_b; per fold the training block
//                    K̃_tt centred with the training means = QΛQᵀ, M = K̃_vt Q, and per batch
//                    Z = Qᵀ(Y_t − 1ȳ_tᵀ); refit dual = Q (E ∘ QᵀY), W = diag(γ) X̃ᵀ dual
//
// S = diag(√γ per feature) (the identity for RidgeCV). Predictions for every alpha come from one
// GEMM on [M D_α1; M D_α2; …] with D_α = diag(1/(λ+α)); scores are reduced at once.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "brainlatent/error.h"
#include "engine.h"
#include "route_util.h"

namespace brainlatent::ridge {

namespace {

std::size_t Z(i64 v) { return static_cast<std::size_t>(v); }
double eig_flops(double m) { return 20.0 * m * m * m; }  // syevd(m) in SGEMM-time equivalents

// Fold v's decomposition and its projection of the validation rows.
struct FoldEig {
  Context::Eig eig;
  BufferPtr m_buf, extra_buf;
  ViewF m;      // n_v × r
  ViewD extra;  // primal: x̄_t (p); kernel: Qᵀ1 (n_t)
};

// Scores fold v for every alpha: predictions M·D_α·Z + offset against the fold's rows.
void score_fold(Context& ctx, const FoldEig& f, const ViewF& z, const Batch& batch, int v, int ac, Scratch<float>& ms_s,
                Scratch<float>& pr_s, const ViewD& acc) {
  Backend& be = ctx.be;
  const Problem& pb = ctx.pb;
  const i64 s = pb.folds.start[Z(v)], nv = pb.folds.size(v), r = f.eig.q.rows, tb = batch.tb;
  const int A = pb.n_alphas();
  BufferPtr alphas = ctx.upload(pb.alphas);
  for (int a0 = 0; a0 < A; a0 += ac) {
    ctx.checkpoint();
    const int na = std::min(ac, A - a0);
    const ViewF ms = ms_s.get(be, na * nv, r), pr = pr_s.get(be, na * nv, tb);
    be.shrink(f.m, f.eig.lam, vec<double>(*alphas, na, a0), Shrink::Inverse, Axis::Cols, ms);
    be.gemm(false, false, 1.0f, ms, z, 0.0f, pr);
    ctx.count_flops(2.0 * na * nv * r * tb);
    be.score(pr, na, batch.y.row_range(s, nv), batch.train_mean.row_range(v, 1), false, pb.score, batch.sum.row_range(v, 1),
             batch.sst.row_range(v, 1), 1.0 / pb.folds.k, acc.row_range(a0, na));
  }
}

// ------------------------------------------------------------------ per-fold primal
class PerFoldPrimal final : public Route {
 public:
  explicit PerFoldPrimal(Context& ctx) : ctx_(ctx), be_(ctx.be), pb_(ctx.pb) {}

  Footprint footprint() const override {
    const double p = static_cast<double>(pb_.p()), k = pb_.folds.k, nv = static_cast<double>(pb_.folds.max_size());
    const int ac = alpha_chunk(ctx_, pb_.folds.max_size(), pb_.p());
    Footprint f;
    // C, the folds' Q and M, the refit's Q; transients: one fold's C_t and centred X_v, the
    // eigensolver, the stacked [M D_α] of a fold.
    f.fixed = 4 * p * p + k * 4 * (p * p + nv * p) + 4 * p * p + 8 * (2 * k + 2) * p +
              std::max(4 * p * p + 4 * nv * p + eig_transient_bytes(ctx_, pb_.p()), 4.0 * ac * nv * p);
    // Per target: B, every B_v, B_t, Z and the predictions of an alpha chunk.
    f.per_target = 4 * ((k + 3) * p + ac * nv);
    f.max_batch = std::max<i64>(512, (i64(1) << 25) / std::max<i64>(1, static_cast<i64>(pb_.n_alphas()) * pb_.folds.max_size()));
    return f;
  }

  void setup() override {
    const i64 p = pb_.p();
    c_buf_ = be_.alloc(DType::F32, Z(p * p));
    c_ = view<float>(*c_buf_, p, p);
    be_.syrk(true, 1.0f, ctx_.x, 0.0f, c_);
    ctx_.count_flops(static_cast<double>(pb_.n()) * p * p);
    ctx_.check_gram_finite(c_, "XᵀX");
    // Training means of X̃ per fold: (Σ_all − Σ_v) / n_t (zero without an intercept).
    const int k = pb_.folds.k;
    xbar_.assign(Z(k), std::vector<double>(Z(p), 0.0));
    if (pb_.fit_intercept) {
      BufferPtr sums = be_.alloc(DType::F64, Z(k * p));
      for (int v = 0; v < k; ++v)
        be_.col_sums(ctx_.x.row_range(pb_.folds.start[Z(v)], pb_.folds.size(v)), view<double>(*sums, 1, p, v * p));
      const std::vector<double> s = ctx_.download(view<double>(*sums, k, p));
      for (int v = 0; v < k; ++v) {
        const double nt = static_cast<double>(pb_.n() - pb_.folds.size(v));
        for (i64 j = 0; j < p; ++j) {
          double all = 0;
          for (int u = 0; u < k; ++u) all += s[Z(u * p + j)];
          xbar_[Z(v)][Z(j)] = (all - s[Z(v * p + j)]) / nt;
        }
      }
    }
  }

  void begin_candidate(int, bool with_refit) override {
    const i64 p = pb_.p();
    const int k = pb_.folds.k;
    unit_ = pb_.unit_weights();
    if (!unit_) {
      std::vector<double> s(Z(p));
      for (i64 j = 0; j < p; ++j) s[Z(j)] = std::sqrt(ctx_.feature_weight[Z(j)]);
      sqrt_w_ = ctx_.upload(s);
    }
    folds_.clear();
    folds_.resize(Z(k));
    BufferPtr ct_buf = be_.alloc(DType::F32, Z(p * p));
    const ViewF ct = view<float>(*ct_buf, p, p);
    for (int v = 0; v < k; ++v) {
      ctx_.checkpoint();
      const i64 s = pb_.folds.start[Z(v)], nv = pb_.folds.size(v), nt = pb_.n() - nv;
      const ViewF xv = ctx_.x.row_range(s, nv);
      FoldEig& f = folds_[Z(v)];
      f.extra_buf = ctx_.upload(xbar_[Z(v)]);
      f.extra = vec<double>(*f.extra_buf, p);
      // C_t = S (C − X̃_vᵀX̃_v − n_t x̄_t x̄_tᵀ) S
      be_.copy(c_, ct);
      be_.syrk(true, -1.0f, xv, 1.0f, ct);
      ctx_.count_flops(static_cast<double>(nv) * p * p);
      if (pb_.fit_intercept) be_.add_outer(ct, -static_cast<double>(nt), f.extra, f.extra);
      if (!unit_) be_.scale_rows_cols(ct, sw_view(), sw_view());
      f.eig = ctx_.decompose(ct, false, false, (v + 1.0) / (k + 1.0));
      // M = (X̃_v − 1x̄_tᵀ) S Q
      ctx_.checkpoint();
      BufferPtr xc_buf = be_.alloc(DType::F32, Z(nv * p));
      const ViewF xc = view<float>(*xc_buf, nv, p);
      be_.copy(xv, xc);
      if (pb_.fit_intercept) be_.add_outer(xc, -1.0, ViewD{}, f.extra);
      if (!unit_) be_.scale_rows_cols(xc, ViewD{}, sw_view());
      f.m_buf = be_.alloc(DType::F32, Z(nv * p));
      f.m = view<float>(*f.m_buf, nv, p);
      be_.gemm(false, true, 1.0f, xc, f.eig.q, 0.0f, f.m);
      ctx_.count_flops(2.0 * nv * p * p);
      ctx_.sub_progress((v + 1.0) / (k + 1.0), "decompose");
    }
    ct_buf.reset();
    if (with_refit) begin_refit(0);
  }

  void begin_refit(int) override {
    const i64 p = pb_.p();
    unit_ = pb_.unit_weights();
    if (!unit_ && !sqrt_w_) {
      std::vector<double> s(Z(p));
      for (i64 j = 0; j < p; ++j) s[Z(j)] = std::sqrt(ctx_.feature_weight[Z(j)]);
      sqrt_w_ = ctx_.upload(s);
    }
    if (unit_) {
      full_ = ctx_.decompose(c_, false, false, 1.0);
    } else {
      BufferPtr cg = be_.alloc(DType::F32, Z(p * p));
      const ViewF cgv = view<float>(*cg, p, p);
      be_.copy(c_, cgv);
      be_.scale_rows_cols(cgv, sw_view(), sw_view());
      full_ = ctx_.decompose(cgv, false, false, 1.0);
    }
    ctx_.sub_progress(1.0, pb_.unit_weights() ? "decompose" : "refit");
  }

  void score(const Batch& batch, const ViewD& acc) override {
    const i64 p = pb_.p(), tb = batch.tb;
    const int k = pb_.folds.k;
    products(batch);
    const ViewF bt = bt_.get(be_, p, tb), z = z_.get(be_, p, tb);
    const int ac = alpha_chunk(ctx_, pb_.folds.max_size(), p);
    for (int v = 0; v < k; ++v) {
      ctx_.checkpoint();
      const FoldEig& f = folds_[Z(v)];
      const i64 nt = pb_.n() - pb_.folds.size(v);
      // B_t = S (B − B_v − n_t x̄_t ȳ_tᵀ);  Z = Qᵀ B_t
      be_.copy(b_, bt);
      be_.axpby(-1.0f, bv_.row_range(v * p, p), 1.0f, bt);
      if (pb_.fit_intercept) be_.add_outer(bt, -static_cast<double>(nt), f.extra, batch.train_mean.row_range(v, 1));
      if (!unit_) be_.scale_rows_cols(bt, sw_view(), ViewD{});
      be_.gemm(false, false, 1.0f, f.eig.q, bt, 0.0f, z);
      ctx_.count_flops(2.0 * p * p * tb);
      score_fold(ctx_, f, z, batch, v, ac, ms_, pr_, acc);
      ctx_.folds_done(v + 1, k);
    }
  }

  void refit(const Batch& batch, const ViewD& alphas, const ViewF& out) override {
    const i64 p = pb_.p(), tb = batch.tb;
    if (batch.cols) {  // a banded refit group: B = X̃ᵀY only
      b_ = b_s_.get(be_, p, tb);
      be_.gemm(true, false, 1.0f, ctx_.x, batch.y, 0.0f, b_);
      ctx_.count_flops(2.0 * pb_.n() * p * tb);
      key_ = nullptr;
    } else {
      products(batch);
    }
    // W = S Q (E ∘ Qᵀ S B)
    const ViewF sb = bt_.get(be_, p, tb), z = z_.get(be_, p, tb);
    be_.copy(b_, sb);
    if (!unit_) be_.scale_rows_cols(sb, sw_view(), ViewD{});
    be_.gemm(false, false, 1.0f, full_.q, sb, 0.0f, z);
    be_.shrink_targets(z, full_.lam, alphas, Shrink::Inverse, sb);
    be_.gemm(true, false, 1.0f, full_.q, sb, 0.0f, out);
    if (!unit_) be_.scale_rows_cols(out, sw_view(), ViewD{});
    ctx_.count_flops(4.0 * p * p * tb);
  }

  void end_candidate() override {
    folds_.clear();
    full_ = Context::Eig{};
    sqrt_w_.reset();
    ms_.reset();
    pr_.reset();
  }

 private:
  ViewD sw_view() const { return vec<double>(*sqrt_w_, pb_.p()); }

  // B_v = X̃_vᵀY_v for every fold and B = Σ_v B_v, once per batch (kept across candidates).
  void products(const Batch& batch) {
    const i64 p = pb_.p(), tb = batch.tb;
    const int k = pb_.folds.k;
    if (key_ == batch.y_buf.get() && key_j0_ == batch.j0 && key_tb_ == tb) return;
    bv_ = bv_s_.get(be_, k * p, tb);
    b_ = b_s_.get(be_, p, tb);
    for (int v = 0; v < k; ++v) {
      ctx_.checkpoint();
      const i64 s = pb_.folds.start[Z(v)], nv = pb_.folds.size(v);
      be_.gemm(true, false, 1.0f, ctx_.x.row_range(s, nv), batch.y.row_range(s, nv), 0.0f, bv_.row_range(v * p, p));
      if (v == 0) be_.copy(bv_.row_range(0, p), b_);
      else be_.axpby(1.0f, bv_.row_range(v * p, p), 1.0f, b_);
    }
    ctx_.count_flops(2.0 * pb_.n() * p * tb);
    key_ = batch.y_buf.get();
    key_j0_ = batch.j0;
    key_tb_ = tb;
  }

  Context& ctx_;
  Backend& be_;
  const Problem& pb_;
  bool unit_ = true;
  BufferPtr c_buf_, sqrt_w_;
  ViewF c_;
  std::vector<std::vector<double>> xbar_;
  std::vector<FoldEig> folds_;
  Context::Eig full_;
  Scratch<float> bv_s_, b_s_, bt_, z_, ms_, pr_;
  ViewF bv_, b_;
  const Buffer* key_ = nullptr;
  i64 key_j0_ = -1, key_tb_ = -1;
};

// ------------------------------------------------------------------ per-fold kernel
class PerFoldKernel final : public Route {
 public:
  explicit PerFoldKernel(Context& ctx) : ctx_(ctx), be_(ctx.be), pb_(ctx.pb) {}

  Footprint footprint() const override {
    const double n = static_cast<double>(pb_.n()), k = pb_.folds.k, nv = static_cast<double>(pb_.folds.max_size()), nt = n - nv;
    const double bands = pb_.unit_weights() ? 1 : pb_.n_bands() + 1;  // the band kernels and K_γ
    const int ac = alpha_chunk(ctx_, pb_.folds.max_size(), pb_.n() - pb_.folds.max_size());
    Footprint f;
    // (banded: the candidate's per-feature weights γ for the refit, p doubles)
    f.fixed = bands * 4 * n * n + k * (4 * (nt * nt + nv * nt) + 16 * nt) + 4 * n * n + 8 * n +
              (pb_.unit_weights() ? 0.0 : 8.0 * static_cast<double>(pb_.p())) +
              std::max({4 * (nt * nt + nv * nt) + eig_transient_bytes(ctx_, pb_.n() - pb_.folds.max_size()),
                        4 * n * n + eig_transient_bytes(ctx_, pb_.n()), 4.0 * ac * nv * nt});
    // Per target: Z of a fold (grown to n by the refit) and the predictions of an alpha chunk; the
    // refit's E∘Z. RidgeCV refits each batch right after scoring it, so all three stay allocated
    // until the candidate ends; banded ridge's refit comes after the search has freed the predictions.
    f.per_target = pb_.unit_weights() ? 4 * (2 * n + ac * nv) : 4 * std::max(nt + ac * nv, 2 * n);
    f.max_batch = std::max<i64>(512, (i64(1) << 25) / std::max<i64>(1, static_cast<i64>(pb_.n_alphas()) * pb_.folds.max_size()));
    return f;
  }

  void setup() override {
    const i64 n = pb_.n();
    unit_ = pb_.unit_weights();
    const int nb = unit_ ? 1 : pb_.n_bands();
    i64 c0 = 0;
    for (int b = 0; b < nb; ++b) {
      ctx_.checkpoint();
      const i64 pb = unit_ ? pb_.p() : pb_.band_sizes[Z(b)];
      kb_.push_back(be_.alloc(DType::F32, Z(n * n)));
      const ViewF kv = view<float>(*kb_.back(), n, n);
      be_.syrk(false, 1.0f, ctx_.x.col_range(c0, pb), 0.0f, kv);
      ctx_.count_flops(static_cast<double>(n) * n * pb);
      ctx_.check_gram_finite(kv, "XXᵀ");
      c0 += pb;
    }
  }

  void begin_candidate(int c, bool with_refit) override {
    const i64 n = pb_.n();
    const int k = pb_.folds.k;
    kernel_of(c);
    folds_.clear();
    folds_.resize(Z(k));
    for (int v = 0; v < k; ++v) {
      ctx_.checkpoint();
      const i64 s = pb_.folds.start[Z(v)], nv = pb_.folds.size(v), e = s + nv, nt = n - nv;
      BufferPtr ktt_buf = be_.alloc(DType::F32, Z(nt * nt)), kvt_buf = be_.alloc(DType::F32, Z(nv * nt));
      const ViewF ktt = view<float>(*ktt_buf, nt, nt), kvt = view<float>(*kvt_buf, nv, nt);
      // Training block K_tt and validation block K_vt: the rows and columns outside [s, e).
      const i64 after = n - e;
      be_.copy(kg_.block(0, 0, s, s), ktt.block(0, 0, s, s));
      be_.copy(kg_.block(0, e, s, after), ktt.block(0, s, s, after));
      be_.copy(kg_.block(e, 0, after, s), ktt.block(s, 0, after, s));
      be_.copy(kg_.block(e, e, after, after), ktt.block(s, s, after, after));
      be_.copy(kg_.block(s, 0, nv, s), kvt.block(0, 0, nv, s));
      be_.copy(kg_.block(s, e, nv, after), kvt.block(0, s, nv, after));
      if (pb_.fit_intercept) {
        // Per-fold centring (ridge.md §1): K̃_ij = K_ij − r_i − r_j + μ, K̃_vj = K_vj − c_v − r_j + μ,
        // with r the training rows' means and μ their mean.
        BufferPtr sums = be_.alloc(DType::F64, Z(nt + nv));
        be_.row_sums(ktt, vec<double>(*sums, nt), 1.0 / static_cast<double>(nt));
        be_.row_sums(kvt, vec<double>(*sums, nv, nt), 1.0 / static_cast<double>(nt));
        std::vector<double> r = ctx_.download(vec<double>(*sums, nt + nv));
        const double mu = std::accumulate(r.begin(), r.begin() + nt, 0.0) / static_cast<double>(nt);
        for (double& x : r) x = -x;
        BufferPtr neg = ctx_.upload(r);
        const ViewD rt = vec<double>(*neg, nt), rv = vec<double>(*neg, nv, nt);
        be_.add_broadcast(ktt, rt, rt, mu);
        be_.add_broadcast(kvt, rv, rt, mu);
      }
      FoldEig& f = folds_[Z(v)];
      f.eig = ctx_.decompose(ktt, pb_.fit_intercept, false, (v + 1.0) / (k + 1.0));
      ktt_buf.reset();
      // M = K̃_vt Q (Q's columns are the rows of q), and Qᵀ1 for the centring of Z.
      f.m_buf = be_.alloc(DType::F32, Z(nv * nt));
      f.m = view<float>(*f.m_buf, nv, nt);
      be_.gemm(false, true, 1.0f, kvt, f.eig.q, 0.0f, f.m);
      ctx_.count_flops(2.0 * nv * nt * nt);
      f.extra_buf = be_.alloc(DType::F64, Z(nt));
      f.extra = vec<double>(*f.extra_buf, nt);
      be_.row_sums(f.eig.q, f.extra);
      ctx_.sub_progress((v + 1.0) / (k + 1.0), "decompose");
    }
    if (with_refit) begin_refit(c);
  }

  void begin_refit(int c) override {
    kernel_of(c);
    // X̃ is globally centred with an intercept, so K_γ already is.
    full_ = ctx_.decompose(kg_, pb_.fit_intercept, false, 1.0);
    ctx_.sub_progress(1.0, unit_ ? "decompose" : "refit");
  }

  void score(const Batch& batch, const ViewD& acc) override {
    const i64 n = pb_.n(), tb = batch.tb;
    const int k = pb_.folds.k;
    const int ac = alpha_chunk(ctx_, pb_.folds.max_size(), n - pb_.folds.max_size());
    for (int v = 0; v < k; ++v) {
      ctx_.checkpoint();
      const FoldEig& f = folds_[Z(v)];
      const i64 s = pb_.folds.start[Z(v)], nv = pb_.folds.size(v), e = s + nv, nt = n - nv;
      // Z = Qᵀ (Y_t − 1ȳ_tᵀ): the training rows are the blocks before and after fold v.
      const ViewF z = z_.get(be_, nt, tb);
      be_.gemm(false, false, 1.0f, f.eig.q.col_range(0, s), batch.y.row_range(0, s), 0.0f, z);
      be_.gemm(false, false, 1.0f, f.eig.q.col_range(s, n - e), batch.y.row_range(e, n - e), 1.0f, z);
      ctx_.count_flops(2.0 * nt * nt * tb);
      if (pb_.fit_intercept) be_.add_outer(z, -1.0, f.extra, batch.train_mean.row_range(v, 1));
      score_fold(ctx_, f, z, batch, v, ac, ms_, pr_, acc);
      ctx_.folds_done(v + 1, k);
    }
  }

  void refit(const Batch& batch, const ViewD& alphas, const ViewF& out) override {
    const i64 n = pb_.n(), tb = batch.tb;
    // dual = Q (E ∘ QᵀY);  W = diag(γ) X̃ᵀ dual
    const ViewF z = z_.get(be_, n, tb), ez = ez_.get(be_, n, tb);
    be_.gemm(false, false, 1.0f, full_.q, batch.y, 0.0f, z);
    be_.shrink_targets(z, full_.lam, alphas, Shrink::Inverse, ez);
    be_.gemm(true, false, 1.0f, full_.q, ez, 0.0f, z);
    be_.gemm(true, false, 1.0f, ctx_.x, z, 0.0f, out);
    if (!unit_) be_.scale_rows_cols(out, vec<double>(*gamma_, pb_.p()), ViewD{});
    ctx_.count_flops(4.0 * n * n * tb + 2.0 * n * pb_.p() * tb);
  }

  void end_candidate() override {
    folds_.clear();
    full_ = Context::Eig{};
    ms_.reset();
    pr_.reset();
  }

 private:
  // K_γ = Σ_b γ_b K_b (K itself for RidgeCV), and the per-feature weights γ for the refit.
  void kernel_of(int c) {
    const i64 n = pb_.n();
    if (unit_) {
      kg_ = view<float>(*kb_[0], n, n);
      return;
    }
    if (kg_c_ == c) return;
    if (!kg_buf_) kg_buf_ = be_.alloc(DType::F32, Z(n * n));
    kg_ = view<float>(*kg_buf_, n, n);
    be_.fill(kg_, 0.0f);
    for (int b = 0; b < pb_.n_bands(); ++b)
      be_.axpby(static_cast<float>(pb_.candidates[Z(c) * Z(pb_.n_bands()) + Z(b)]), view<float>(*kb_[Z(b)], n, n), 1.0f, kg_);
    gamma_ = ctx_.upload(ctx_.feature_weight);
    kg_c_ = c;
  }

  Context& ctx_;
  Backend& be_;
  const Problem& pb_;
  bool unit_ = true;
  std::vector<BufferPtr> kb_;
  BufferPtr kg_buf_, gamma_;
  ViewF kg_;
  int kg_c_ = -1;
  std::vector<FoldEig> folds_;
  Context::Eig full_;
  Scratch<float> z_, ez_, ms_, pr_;
};

}  // namespace

std::unique_ptr<Route> make_per_fold_primal(Context& ctx) { return std::make_unique<PerFoldPrimal>(ctx); }
std::unique_ptr<Route> make_per_fold_kernel(Context& ctx) { return std::make_unique<PerFoldKernel>(ctx); }

// Flop models (ridge.md §1): GEMM flops plus eigensolves as SGEMM-time equivalents, the
// decompositions and their products repeated per candidate.
RouteCost cost_per_fold_primal(const Problem& pb) {
  const double n = static_cast<double>(pb.n()), p = static_cast<double>(pb.p()), t = static_cast<double>(pb.t()),
               A = pb.n_alphas(), K = pb.folds.k, nc = pb.n_distinct_candidates();
  const double nv = n / K;
  RouteCost c;
  c.setup = n * p * p;  // (XᵀY, 2npt, is formed per target batch)
  c.decompose = K * (eig_flops(p) + 3 * nv * p * p);
  c.total = c.setup + 2 * n * p * t + nc * (c.decompose + 2 * K * p * p * t + 2 * A * n * p * t) + std::min(nc, t) * eig_flops(p) + 4 * p * p * t;
  return c;
}

RouteCost cost_per_fold_kernel(const Problem& pb) {
  const double n = static_cast<double>(pb.n()), p = static_cast<double>(pb.p()), t = static_cast<double>(pb.t()),
               A = pb.n_alphas(), K = pb.folds.k, nc = pb.n_distinct_candidates();
  const double nv = n / K, nt = n - nv;
  RouteCost c;
  c.setup = n * n * p;
  c.decompose = K * (eig_flops(nt) + 2 * nv * nt * nt);
  c.total = c.setup + nc * (c.decompose + 2 * K * nt * nt * t + 2 * A * n * nt * t) + std::min(nc, t) * eig_flops(n) + 4 * n * n * t + 2 * n * p * t;
  return c;
}

}  // namespace brainlatent::ridge
