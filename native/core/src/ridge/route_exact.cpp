// The exact routes (ridge.md §2): one decomposition of all samples; every fold's held-out
// residuals in closed form, e_v = (I − H_vv)⁻¹ (y_v − ŷ_v), with H = H_c + 11ᵀ/n when an
// intercept is fitted, which equals per-fold centring exactly.
//
//   exact-primal  XᵀX = QΛQᵀ, N = X̃Q; per alpha: residual Y − N D Z (Z = NᵀY),
//                 (I − H)_vv = I − N_v D N_vᵀ − 11ᵀ/n
//   exact-kernel  XXᵀ = QΛQᵀ; per alpha: residual Q diag(α/(λ+α)) QᵀY,
//                 (I − H)_vv = Q_v diag(α/(λ+α)) Q_vᵀ over the eigenvectors other than the
//                 centred kernel's constant one (whose term is the intercept's 11ᵀ/n)
//
// The (I − H)_vv blocks of a fold are formed for a chunk of alphas by one GEMM and factored in
// float64, and kept for every batch: well-conditioned ones as a float32 factor (primal) or, in the
// kernel form, folded with the residual's projection into one matrix P = (I − H)_vv⁻¹ Q_v
// diag(α/(λ+α)), so that a fold's held-out residuals are e_v = P · QᵀY, every alpha's P of a fold
// stacked into one GEMM; the others as the float64 factor. With one target batch (the usual case)
// the kernel form forms each fold's projections just before scoring it, in one buffer the folds share.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <limits>
#include <sstream>

#include "brainlatent/error.h"
#include "engine.h"
#include "route_util.h"

namespace brainlatent::ridge {

namespace {

std::size_t Z(i64 v) { return static_cast<std::size_t>(v); }

// Columns per panel of X̃ in the kernel form's refit (X̃ freed after setup): panels of ~16 MiB, at
// least 128 columns. The panel is the transposed operand of its GEMM, whose rows are its columns: at
// 320 (the large bench shape's 4 MiB panels) OpenBLAS's Cooperlake kernels ran 211–256 GFLOP/s, at
// 1,024–2,048 241–296 (n 3,000, 3,072 targets, interleaved in one process). At most n columns: the
// panel (n × n floats at most) then fits in the place of the Gram and the eigensolver's scratch, which
// the plan counts and which are free by the refit (X̃'s own place may hold the dual coefficients);
// below n = 128 the 128-column floor takes at most 64 KiB more, within the plan's 1 MiB reserve.
// BRAINLATENT_X_PANEL_COLS=N sets N: the tests' way to several panels at small shapes.
// A size the tests force by environment variable (> 0), or 0.
i64 forced_size(const char* name) {
  const char* e = std::getenv(name);
  return e ? std::max<i64>(0, std::atoll(e)) : 0;
}

i64 x_panel_cols(i64 n, i64 p) {
  const i64 forced = forced_size("BRAINLATENT_X_PANEL_COLS");
  const i64 rows = std::max<i64>(1, n);
  if (forced > 0) return std::min(p, forced);
  const i64 most = std::max<i64>(128, std::min((i64{1} << 22) / rows, rows) / 64 * 64);
  // (as many panels as that width needs, of even widths: 4,000 columns in 1,984 + 1,984 + 32 ran the
  // last at half the rate, ~2.5 ms lost at the medium bench shape; 1,344 + 1,344 + 1,312 instead)
  if (p <= most) return p;
  const i64 panels = (p + most - 1) / most;
  return std::min(most, ((p + panels - 1) / panels + 63) / 64 * 64);
}
double eig_flops(double m) { return 20.0 * m * m * m; }
// Floats by which X̃'s buffer may exceed the kernel form's shared stack and still hold it (256 KiB).
constexpr std::size_t kSpareSlack = std::size_t{1} << 16;

// A Cholesky factor's largest over smallest diagonal entry: cond(A) ≈ its square.
double diagonal_ratio(const std::vector<double>& d) {
  const auto mm = std::minmax_element(d.begin(), d.end());
  return *mm.second / *mm.first;
}
// cond up to 1e4 (ratio 1e2): float32 solves and inverses formed in float64 keep ~1e-3 relative
// accuracy; up to 1e2 (ratio 10) the inverse itself is formed in float32.
constexpr double kF32SolveRatio = 1e2, kF32InverseRatio = 10;
// The primal form's (I − H)_vv (eigenvalues in (0, 1]) with a squared Cholesky pivot below this has
// an eigenvalue below it: the 1e-5 of the resolution rule (α < 1e-5·λ_max ⇔ α/(α + λ_max) < ~1e-5).
constexpr double kSingularPivot = 1e-5;

struct Factor {
  BufferPtr buf;
  // Unresolved: an alpha below the decomposition's resolution (Context::unresolved), never scored:
  // no factor (its (I − H)_vv is as singular as the Gram: exact-primal with n ≤ p as α → 0), and in
  // the kernel form zero projection columns.
  enum Kind { F32Factor, Projection, F64Factor, Unresolved } kind = F32Factor;
};

class Exact final : public Route {
 public:
  Exact(Context& ctx, bool primal) : ctx_(ctx), be_(ctx.be), pb_(ctx.pb), primal_(primal), score_rows_(score_rows_target()) {}

  Footprint footprint() const override {
    const double n = static_cast<double>(pb_.n()), p = static_cast<double>(pb_.p()), A = pb_.n_alphas();
    const double r = primal_ ? p : n, nv = static_cast<double>(pb_.folds.max_size());
    const double ac = chunk();
    // Per (alpha, fold): its (I − H)_vv's factor, float32 (4·n_v²), in the primal form, the projection P (4·n_v·n)
    // in its fold's stack in the kernel form; and a block too ill-conditioned for float32 solves (a Cholesky
    // diagonal ratio above kF32SolveRatio: high-leverage samples at small alphas) keeps a float64 factor instead
    // (primal, 8·n_v²) or beside its stack (kernel, 8·n_v² more). Which blocks do shows only once they are factored:
    // each is counted as if it did, or a fit its plan accepted could fail past its budget (11 of 17 alphas did in
    // every fold of a review's n 1,200, p 4,800 fit, 1.1–16 MB over the plan).
    double factors = 0;
    for (int v = 0; v < pb_.folds.k; ++v) {
      const double sv = static_cast<double>(pb_.folds.size(v));
      factors += A * sv * (primal_ ? 8.0 * sv : 4.0 * n + 8.0 * sv);
    }
    Footprint f;
    // The Gram (during setup), Q, N (primal), the factors; transients: the eigensolver, or the scaled
    // rows (an alpha chunk's, ac·nv × r; kernel form: in the fold's stack when the chunk holds every
    // alpha), the chunk's (I − H)_vv blocks and inverses, and one float64 block.
    const double scaled = primal_ || ac < A ? 4 * ac * nv * r : 0;
    // (and the kernel form's residual weights α/(λ+α), A·r float64)
    f.fixed = 4 * r * r + (primal_ ? 4 * n * p : 8 * A * r) + factors +
              std::max(4 * r * r + eig_transient_bytes(ctx_, primal_ ? pb_.p() : pb_.n()), scaled + 8 * ac * nv * nv + 8 * nv * nv);
    // Per target: Z, its shrunk copy, the full residual (primal) or an alpha chunk of one fold's
    // (kernel), and a float64 copy of one fold's residuals.
    f.per_target = 4 * (2 * r + (primal_ ? n : score_rows())) + 8 * nv;
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
    const bool centred = !primal_ && pb_.fit_intercept;
    // (the primal form's N = X̃Q follows: the decomposition's share of the rest by the flop model)
    const double eig = eig_flops(static_cast<double>(r)), after = primal_ ? 2.0 * n * p * p : 0.0;
    // A training fold of fewer samples than features (less one with an intercept) has a singular
    // primal problem, and as α → 0 its (I − H)_vv with it, even where XᵀX of all samples is regular
    // (n 60, p 55, 5 folds): the alphas below the Gram's resolution are unresolved then too, as on
    // the per-fold primal route, instead of failing to factor.
    const bool singular_folds = primal_ && pb_.n() - pb_.folds.max_size() - (pb_.fit_intercept ? 1 : 0) < pb_.p();
    // With one target batch Z's buffer (QᵀY or NᵀY, r × t, score()'s first product) is taken now and
    // holds the eigensolver's workspace first (~2r² floats: 31 MB at the medium bench shape, ~17 ms
    // of fresh pages on the bench VM, no longer faulted in to be freed). Only where Z is at least as
    // large: the pages it lends are then pages Z touches anyway, held from here without a new peak.
    ViewF scratch;
    if (be_.host_visible() && ctx_.single_batch) {
      const i64 rz = centred && n > 1 ? n - 1 : r;  // Z's rows: the decomposed order (less the constant vector)
      const std::size_t need = be_.eigh_scratch_count(rz);
      if (need > 0 && Z(rz * pb_.t()) >= need) scratch = z_.get(be_, rz, pb_.t());
    }
    eig_ = ctx_.decompose(gv, centred, /*split_constant=*/true, 0.1 + 0.9 * eig / (eig + after), singular_folds, scratch, tridiagonal_basis());
    // The Gram is not read again. Where the kernel form's folds are formed while scoring (one batch,
    // host memory) its pages, already touched, hold leverage()'s (I − H)_vv blocks and inverses (12 MiB
    // not faulted in fresh at the medium bench shape), and the refit's panels of X̃ where they fill it
    // (setup's end). Only where both blocks fit, so that it holds no more than they would beside it
    // (the plan counts the Gram's place through the refit, see footprint()).
    const i64 nv = pb_.folds.max_size(), ac = chunk();
    if (!primal_ && be_.host_visible() && ctx_.single_batch && Z(2 * ac * nv * nv) <= g->count()) {
      gram_ = std::move(g);
      h_s_.lend(*gram_, 0, Z(ac * nv * nv));
      inv_s_.lend(*gram_, Z(ac * nv * nv), Z(ac * nv * nv));
    }
    g.reset();
    if (centred && n > 1) {
      // The constant direction u carries nothing: its term of (I − H_c) is exactly the 11ᵀ/n that an
      // intercept adds to H, uᵀY = 0 for the centred Y, and X̃ᵀu = 0. Without it (I − H)_vv is a sum
      // of positive terms, Q_v diag(α/(λ+α)) Q_vᵀ over the other n − 1 eigenvectors, with no cancellation.
      eig_.q = eig_.q.row_range(1, n - 1);
      eig_.lam = vec<double>(*eig_.lam_buf, n - 1, 1);
      if (eig_.tridiagonal) eig_.off = vec<double>(*eig_.off_buf, n - 1, 1);  // (row 0 was decoupled: T's rest)
    }
    if (primal_) {
      // N = X̃Q: the row space of the leverages.
      n_buf_ = be_.alloc(DType::F32, Z(n * p));
      nmat_ = view<float>(*n_buf_, n, p);
      be_.gemm(false, true, 1.0f, ctx_.x, eig_.q, 0.0f, nmat_);
      ctx_.count_flops(2.0 * n * p * p);
    }
    // X̃ is not read again but by the kernel form's refit (X̃ᵀ times the dual coefficients), which with
    // one target batch on a host-visible backend forms it in panels of columns from X instead (once
    // per block of targets: one block at the medium bench shape, 2 at the large, ~0.01 s each): freed here, it is not
    // live beside the scoring's buffers (at the medium bench shape 32 MB of 190 at the peak: fresh
    // pages cost ~1–2 ms a MiB on the bench VM, whose host backs them at first touch). With several
    // batches every batch's refit would form it again: kept.
    if (primal_ || (be_.host_visible() && ctx_.single_batch)) {
      // (the kernel form's folds then share one stack, formed in score(): X̃'s pages, already touched,
      // take it where they hold it, and X̃ is freed here where they do not; 4·n·p bytes against 4·(n − 1)·A·n_v,
      // which the bench shapes' p = 2n, 10 alphas and 5 folds just fit: ~31 MB not faulted in again at the medium
      // shape, ~0.5 ms a MiB on the bench VM. Held from here, it raises no peak: the stack is taken with the
      // first fold's scoring, everything taken in between still live; and only where it is no more than
      // kSpareSlack larger than the stack, within the plan's 1 MiB reserve: a wide X̃ is freed, not held as a small stack)
      const std::size_t stack = Z(eig_.q.rows * pb_.n_alphas() * pb_.folds.max_size());
      if (!primal_ && ctx_.x_buf && ctx_.x_buf->count() >= stack && ctx_.x_buf->count() - stack <= kSpareSlack) spare_ = std::move(ctx_.x_buf);
      ctx_.x_buf.reset();
      ctx_.x = ViewF{};
      panel_cols_ = x_panel_cols(n, p);
      // The refit's panels in the Gram's place, as wide as it holds (n columns) in balanced widths
      // (4,000 columns as 2 × 2,000 at the medium bench shape, 10 MiB not faulted in fresh), where they
      // fill it and it is no larger than a panel of its own may be (x_panel_cols' 16 MiB): else it is freed
      // after the scoring (the large bench shape's 36 MB Gram held as its panels raised the peak RSS 545 → 551 MB).
      if (gram_ && !forced_size("BRAINLATENT_X_PANEL_COLS") && n > 0 && gram_->count() <= (std::size_t{1} << 22)) {
        const i64 panels = (p + n - 1) / n, cols = (p + panels - 1) / panels;
        if (Z(n * cols) + kSpareSlack >= gram_->count()) {
          panel_cols_ = cols;
          xp_.lend(*gram_, 0, gram_->count());
          panels_in_gram_ = true;
        }
      }
    }
  }

  // The (I − H)_vv factors of every alpha and fold (leverage()). Per fold and chunk of alphas, every
  // alpha's block H_vv = L_v diag(w_α) L_vᵀ (L_v = N_v, w = 1/(λ+α) in the primal form, one GEMM for
  // the chunk; L_v = Q_v, w = α/(λ+α) in the kernel form, one symmetric product per alpha) and, in
  // the kernel form, one GEMM every alpha's projection: the fold's projections are stacked
  // (A·n_v × n) so that score() runs them as one GEMM.
  void begin_candidate(int, bool) override {
    const int A = pb_.n_alphas(), k = pb_.folds.k;
    factors_.clear();
    factors_.resize(Z(A * k));
    stacks_.clear();
    stacks_.resize(Z(k));
    all_projected_.assign(Z(k), 0);
    alphas_ = ctx_.upload(pb_.alphas);
    // The kernel form's residual weights α/(λ+α) per alpha, one per eigenvector, for the projections.
    if (!primal_ && !eig_.tridiagonal) {
      const std::vector<double> lam = ctx_.download(eig_.lam);
      std::vector<double> w(Z(A) * lam.size());
      for (int a = 0; a < A; ++a)
        for (std::size_t q = 0; q < lam.size(); ++q) w[Z(a) * lam.size() + q] = pb_.alphas[Z(a)] / (lam[q] + pb_.alphas[Z(a)]);
      wres_ = ctx_.upload(w);
    }
    // With one target batch the kernel form's folds are formed in score(), each right before its
    // scoring GEMM, in one stack buffer (r × A·n_v floats, 32 MB at the medium bench shape) instead
    // of one per fold: 1/k of the memory, and of the fresh pages to fault in.
    fused_ = !primal_ && ctx_.single_batch;
    if (!fused_) spare_.reset();
    if (!fused_)
      for (int v = 0; v < k; ++v) leverage(v);
  }

  // Fold v's (I − H)_vv factors for every alpha and, in the kernel form, its projections' stack.
  void leverage(int v) {
    const i64 r = eig_.q.rows;
    const int A = pb_.n_alphas(), k = pb_.folds.k, ac = chunk();
    // (the kernel form has no 11ᵀ/n term: its constant eigenvector is left out, see setup())
    const double inv_n = pb_.fit_intercept && primal_ ? 1.0 / static_cast<double>(pb_.n()) : 0.0;
    const i64 s = pb_.folds.start[Z(v)], nv = pb_.folds.size(v);
    const ViewF qv = eig_.q.col_range(s, nv);  // kernel: Q_vᵀ (r × n_v)
    if (!primal_) {
      if (!fused_) stacks_[Z(v)] = be_.alloc(DType::F32, Z(r * A * nv));
      else if (!shared_stack_) {
        // (X̃'s buffer when setup() kept it: it holds the stack)
        shared_stack_ = spare_ ? std::move(spare_) : be_.alloc(DType::F32, Z(r * A * pb_.folds.max_size()));
      }
      all_projected_[Z(v)] = 1;
    }
    for (int a0 = 0; a0 < A; a0 += ac) {
      ctx_.checkpoint();
      const int na = std::min(ac, A - a0);
      const ViewF h = h_s_.get(be_, na * nv, nv);
      if (primal_) {
        // [N_v diag(w_α)]_α (na·n_v × p) · N_vᵀ
        const ViewF l = l_s_.get(be_, na * nv, r), nvr = nmat_.row_range(s, nv);
        be_.shrink(nvr, eig_.lam, vec<double>(*alphas_, na, a0), Shrink::Inverse, Axis::Cols, l);
        be_.gemm(false, true, 1.0f, l, nvr, 0.0f, h);
        // (the flops of the symmetric products this replaces: half of the GEMM's)
        ctx_.count_flops(static_cast<double>(na) * nv * nv * r);
      } else {
        // Per alpha, (W^½ Q_vᵀ)ᵀ (W^½ Q_vᵀ) by a symmetric rank-k product: half the flops of one
        // GEMM over the chunk. The chunk's scaled rows (na·r × n_v) in one pass first, so that the
        // products run back to back (one alpha's shrink between them left the BLAS threads idle:
        // 4 ms per alpha at the medium bench shape for a 2.4 ms product).
        // (with every alpha in one chunk they fit in the fold's stack, which the projections fill only after)
        const ViewF l = na == A ? view<float>(*stack_of(v).buf, na * r, nv) : l_s_.get(be_, na * r, nv);
        if (eig_.tridiagonal) be_.tri_shrink(qv, eig_.lam, eig_.off, vec<double>(*alphas_, na, a0), Shrink::SqrtComplement, l);
        else be_.shrink(qv, eig_.lam, vec<double>(*alphas_, na, a0), Shrink::SqrtComplement, Axis::Rows, l);
        // (a check between products: 0.17 s each at NSD's size, 1.7 s for the chunk)
        for (int a = 0; a < na; ++a) {
          ctx_.checkpoint();
          be_.syrk(true, 1.0f, l.row_range(a * r, r), 0.0f, h.row_range(a * nv, nv));
        }
        ctx_.count_flops(static_cast<double>(na) * nv * nv * r);
      }
      // (kernel: the chunk's inverses side by side, n_v × na·n_v, so that Pᵀ is one NN GEMM)
      const ViewF inv = primal_ ? ViewF{} : inv_s_.get(be_, nv, na * nv);
      for (int a = a0; a < a0 + na; ++a) {
        ctx_.checkpoint();
        const ViewF av = h.row_range((a - a0) * nv, nv);
        Factor& f = factors_[Z(a * k + v)];
        const ViewF inv_a = primal_ ? ViewF{} : inv.col_range((a - a0) * nv, nv);
        if (ctx_.unresolved[Z(a)]) {
          f.kind = Factor::Unresolved;
          if (!primal_) be_.fill(inv_a, 0.0f);
          continue;
        }
        // Kernel form, well-conditioned block: factored and inverted in float32, in its place in
        // the chunk's inverses (half the time of float64 and no conversions; the inverse's error,
        // ~cond·ε32 ≤ 1e-5 relative, is that of the float32 GEMMs it feeds).
        if (!primal_) {
          be_.copy(av, inv_a);
          if (be_.cholesky(inv_a) && diagonal_ratio(ctx_.download(ViewF{inv_a.buf, inv_a.offset, nv, 1, inv_a.ld + 1})) <= kF32InverseRatio) {
            be_.cholesky_inverse(inv_a);
            f.kind = Factor::Projection;
            continue;
          }
        }
        BufferPtr ad = be_.alloc(DType::F64, Z(nv * nv));
        const ViewD adv = view<double>(*ad, nv, nv);
        if (primal_) be_.convert(av, adv, -1.0, -inv_n, 1.0);  // I − H_vv − 11ᵀ/n
        else be_.convert(av, adv);                             // Q_v diag(α/(λ+α)) Q_vᵀ, u left out
        const bool factored = be_.cholesky(adv);
        const std::vector<double> diag = factored ? ctx_.download(ViewD{adv.buf, adv.offset, nv, 1, nv + 1}) : std::vector<double>{};
        // Primal form: (I − H)_vv, formed by a float32 subtraction, is singular or nearly (a pivot
        // below kSingularPivot) where a fold's training rows leave a direction of the features
        // empty, which XᵀX of all samples does not show and the per-fold route's Gram of those rows
        // does (its smallest eigenvalue is then ≈ α/(α + μ), μ ≤ λ_max the held-out rows' energy
        // there): the rule of a singular problem holds, the alphas below 1e-5·λ_max are unresolved,
        // and this one with them.
        if (primal_ && !eig_.raw.empty() &&
            (!factored || *std::min_element(diag.begin(), diag.end()) < std::sqrt(kSingularPivot))) {
          ctx_.resolve_above(1e-5 * std::max(std::fabs(eig_.raw.front()), std::fabs(eig_.raw.back())));
          if (ctx_.unresolved[Z(a)]) {
            f.kind = Factor::Unresolved;
            continue;
          }
        }
        if (!factored) {
          std::ostringstream msg;
          msg << "exact CV: (I − H) for fold " << v << " at alpha " << std::setprecision(6) << pb_.alphas[Z(a)]
              << " is not positive definite (the alpha is too small for this data); use cvMethod: 'per-fold' (--cv-method per-fold) "
                 "or larger alphas";
          throw Error(ErrorCode::NumericalFailure, msg.str());
        }
        const double ratio = diagonal_ratio(diag);
        if (ratio > kF32SolveRatio) {
          f.kind = Factor::F64Factor;
          f.buf = std::move(ad);
          if (!primal_) {
            be_.fill(inv_a, 0.0f);  // (its columns of the stack are unused)
            all_projected_[Z(v)] = 0;
          }
        } else if (primal_) {
          f.kind = Factor::F32Factor;
          f.buf = be_.alloc(DType::F32, Z(nv * nv));
          be_.convert(adv, view<float>(*f.buf, nv, nv));
        } else {
          be_.cholesky_inverse(adv);
          be_.convert(adv, inv_a);
          f.kind = Factor::Projection;
        }
      }
      if (!primal_) {
        // P = A⁻¹ Q_v diag(α/(λ+α)) for the chunk's alphas, kept transposed: Pᵀ = diag(α/(λ+α)) Q_vᵀ A⁻¹
        // (A symmetric) in columns a·n_v.. of the fold's stack (r × A·n_v). Both GEMMs that touch it
        // are then NN or TN, which OpenBLAS runs ~1.2× faster than this one as NT (k = n_v).
        const ViewF pv = stack_of(v).col_range(a0 * nv, na * nv);
        be_.gemm(false, false, 1.0f, qv, inv, 0.0f, pv);
        if (eig_.tridiagonal) {
          // (every alpha's block in one sweep along whole rows of the stack: column j at its block's alpha)
          std::vector<double> by_col(Z(na * nv));
          for (int a = 0; a < na; ++a) std::fill_n(by_col.begin() + a * nv, nv, pb_.alphas[Z(a0 + a)]);
          const BufferPtr cols = ctx_.upload(by_col);
          be_.tri_shrink_targets(pv, eig_.lam, eig_.off, vec<double>(*cols, na * nv), Shrink::Complement, pv);
        } else {
          for (int a = 0; a < na; ++a)
            be_.scale_rows_cols(pv.col_range(a * nv, nv), vec<double>(*wres_, r, (a0 + a) * r), ViewD{});
        }
        ctx_.count_flops(2.0 * na * nv * nv * r);
      }
    }
    // A fold that keeps float64 factors reads its projections again in score()'s per-alpha pass:
    // it keeps this buffer, the next fold takes a new one.
    if (fused_ && !all_projected_[Z(v)]) stacks_[Z(v)] = std::move(shared_stack_);
    if (!fused_) ctx_.sub_progress(0.1 + 0.9 * (v + 1.0) / k, "leverage");  // (fused: score() reports its folds)
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
    z_key_ = batch.loads;
    // Kernel folds whose every alpha has its projection: e_v for a chunk of alphas in one GEMM,
    // [P_α]_α · QᵀY, scored at once.
    if (!primal_) {
      for (int v = 0; v < k; ++v) {
        if (fused_) leverage(v);
        if (!all_projected_[Z(v)]) continue;
        const i64 s = pb_.folds.start[Z(v)], nv = pb_.folds.size(v);
        // (the larger chunks first: the output buffer is taken at its largest once)
        const int chunks = score_chunks(nv), base = A / chunks, extra = A % chunks;
        for (int c = 0; c < chunks; ++c) {
          ctx_.checkpoint();
          const int a0 = c * base + std::min(c, extra), na = base + (c < extra ? 1 : 0);
          const ViewF e = rv_.get(be_, na * nv, tb);
          be_.gemm(true, false, 1.0f, stack_of(v).col_range(a0 * nv, na * nv), z_view_, 0.0f, e);
          ctx_.count_flops(2.0 * na * nv * r * tb);
          be_.score(e, na, batch.y.row_range(s, nv), ViewD{}, true, pb_.score, batch.sum.row_range(v, 1), batch.sst.row_range(v, 1),
                    1.0 / k, acc.row_range(a0, na));
        }
        ctx_.folds_done(v + 1, k);
      }
    }
    if (fused_) free_leverage();
    // (the shrunk Z only where a pass below reads it: the primal form, and kernel folds kept as a
    // float64 factor; with every fold projected the kernel form needs none)
    ViewF zs;
    const ViewF res = primal_ ? res_.get(be_, n, tb) : ViewF{};
    for (int a = 0; a < A; ++a) {
      bool any = primal_;
      for (int v = 0; v < k; ++v) any = any || !all_projected_[Z(v)];
      if (!any) break;
      // (an unresolved alpha's row of acc stays 0: it is reported as NaN and never chosen)
      if (ctx_.unresolved[Z(a)]) {
        ctx_.folds_done(a + 1, A);
        continue;
      }
      ctx_.checkpoint();
      BufferPtr alpha = ctx_.upload({pb_.alphas[Z(a)]});
      // Residual of the full fit: primal Y − N D Z with D = 1/(λ+α); kernel Q diag(α/(λ+α)) QᵀY (the
      // projections P already carry it: only blocks kept as a float64 factor need it here).
      bool need_zs = primal_;
      for (int v = 0; v < k; ++v) need_zs = need_zs || factors_[Z(a * k + v)].kind == Factor::F64Factor;
      if (need_zs) {
        zs = zs_.get(be_, r, tb);
        if (eig_.tridiagonal) be_.tri_shrink(z_view_, eig_.lam, eig_.off, vec<double>(*alpha, 1), Shrink::Complement, zs);
        else be_.shrink(z_view_, eig_.lam, vec<double>(*alpha, 1), primal_ ? Shrink::Inverse : Shrink::Complement, Axis::Rows, zs);
      }
      if (primal_) {
        be_.copy(batch.y, res);
        be_.gemm(false, false, -1.0f, nmat_, zs, 1.0f, res);
        ctx_.count_flops(2.0 * n * r * tb);
      }
      for (int v = 0; v < k; ++v) {
        if (!primal_ && all_projected_[Z(v)]) continue;
        const i64 s = pb_.folds.start[Z(v)], nv = pb_.folds.size(v);
        const Factor& f = factors_[Z(a * k + v)];
        const ViewF rv = primal_ ? res.row_range(s, nv) : rv_.get(be_, nv, tb);
        if (f.kind == Factor::Projection) {
          // e_v = P · QᵀY
          be_.gemm(true, false, 1.0f, stack_of(v).col_range(a * nv, nv), z_view_, 0.0f, rv);
          ctx_.count_flops(2.0 * nv * r * tb);
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
      ctx_.folds_done(a + 1, A);  // (the primal form's scoring is this pass, an alpha at a time)
    }
  }

  // (Z = NᵀY or QᵀY, kept from score() for the batch's refit)
  bool refit_reads_y() const override { return false; }

  void refit(const Batch& batch, const ViewD& alphas, const ViewF& out) override {
    const i64 n = pb_.n(), p = pb_.p(), r = eig_.q.rows, tb = batch.tb;
    if (z_key_ != batch.loads || z_view_.cols != tb) {
      if (!batch.y_buf) throw Error(ErrorCode::Internal, "exact refit: the batch's Y was freed before its products were kept");
      z_view_ = z_.get(be_, r, tb);
      if (primal_) be_.gemm(true, false, 1.0f, nmat_, batch.y, 0.0f, z_view_);
      else be_.gemm(false, false, 1.0f, eig_.q, batch.y, 0.0f, z_view_);
    }
    // (in place: Z is not read again; a later batch or refit computes it anew, z_key_ below)
    const ViewF ez = z_view_;
    if (eig_.tridiagonal) be_.tri_shrink_targets(z_view_, eig_.lam, eig_.off, alphas, Shrink::Inverse, ez);
    else be_.shrink_targets(z_view_, eig_.lam, alphas, Shrink::Inverse, ez);
    if (primal_) {
      be_.gemm(true, false, 1.0f, eig_.q, ez, 0.0f, out);
      ctx_.count_flops(2.0 * p * r * tb);
    } else {
      // The dual coefficients Q·(shrunk Z) a block of targets at a time, in the scoring residuals'
      // buffer (free by now), so that no n × tb buffer is added beside the coefficients (see score_chunk).
      const i64 wb = refit_block(n, tb);
      // X̃ freed after setup: its columns formed a panel at a time.
      const i64 pc = ctx_.x_buf ? p : panel_cols_;
      for (i64 j0 = 0; j0 < tb; j0 += wb) {
        ctx_.checkpoint();
        const i64 w = std::min(wb, tb - j0);
        const ViewF dual = rv_.get(be_, n, w);
        be_.gemm(true, false, 1.0f, eig_.q, ez.col_range(j0, w), 0.0f, dual);
        if (ctx_.x_buf) {
          be_.gemm(true, false, 1.0f, ctx_.x, dual, 0.0f, out.col_range(j0, w));
          continue;
        }
        for (i64 c0 = 0; c0 < p; c0 += pc) {
          const i64 pw = std::min(pc, p - c0);
          const ViewF panel = xp_.get(be_, n, pw);
          ctx_.fill_x_cols(c0, pw, panel.ptr());
          be_.gemm(true, false, 1.0f, panel, dual, 0.0f, out.row_range(c0, pw).col_range(j0, w));
        }
      }
      ctx_.count_flops(2.0 * n * r * tb + 2.0 * n * p * tb);
    }
    z_key_ = 0;
    xp_.reset();
    gram_.reset();
    panels_in_gram_ = false;
  }

  void end_candidate() override {
    factors_.clear();
    stacks_.clear();
    free_leverage();
    xp_.reset();
    gram_.reset();
    panels_in_gram_ = false;
  }

  // The shared stack and leverage()'s scratch (kept factors and per-fold stacks stay).
  void free_leverage() {
    if (!panels_in_gram_) gram_.reset();
    shared_stack_.reset();
    spare_.reset();
    l_s_.reset();
    h_s_.reset();
    inv_s_.reset();
  }

 private:
  // The kernel form's basis: tridiagonal where the backend has it (Context::decompose; the CUDA backend
  // keeps cuSOLVER's eigenbasis), K = Qᵀ T Q from the reduction alone: the eigensolver's ?stedc and its
  // 2n³ back-transform left out, the diagonal scalings become solves with T + αI (tri_shrink). Medians
  // of 9 fits each at the medium bench shape on two Zen 3 cores: setup 0.45 s against 0.63 s (the
  // decomposition 0.28 against 0.46), the solves 0.10 s against 0.05 for the scalings; at 8,859 samples
  // in float64 the fit 97.9 s against 107.4 s (the decomposition 60.8 against 74.2). And more accurate
  // in float32 (no eigenvectors of close eigenvalues): coefficients 1.6e-4 off a float64 solve against
  // 2.4e-3 (n 600, p 1,500, 300 targets; float64 decompositions: 5.6e-5 either way).
  // BRAINLATENT_EXACT_BASIS=eigen keeps the eigenbasis (ctest runs the ridge tests in both).
  bool tridiagonal_basis() const {
    if (primal_) return false;
    const char* basis = std::getenv("BRAINLATENT_EXACT_BASIS");
    return !(basis && std::strcmp(basis, "eigen") == 0);
  }
  Context& ctx_;
  Backend& be_;
  const Problem& pb_;
  bool primal_;
  Context::Eig eig_;
  BufferPtr n_buf_;
  ViewF nmat_;
  // Alphas per chunk of the stacked products (a quarter of the budget for an alpha chunk of one fold).
  int chunk() const { return alpha_chunk(ctx_, pb_.folds.max_size(), primal_ ? pb_.p() : pb_.n()); }
  // Kernel form: alphas per scoring GEMM, [P_α]_α · QᵀY — enough rows (up to ~2,000) for the GEMM's
  // full rate, and no more, so that its output (na·n_v × tb) stays small, the alphas spread evenly
  // over the chunks (10 alphas of 600 rows: 3, 3, 2, 2, not 3, 3, 3, 1). One fold's 600 rows (the large
  // bench shape) ran ~10% below 1,200–3,000 rows (258–269 against 285–311 GFLOP/s, interleaved in one
  // process on the Emerald Rapids VM); 400 rows against 800–2,000 the same. Every fresh MiB costs: on a
  // VM whose balloon takes back freed memory (free page reporting) first touching one took 1.8–2.7 ms,
  // and the output of every alpha at once was 65 MB at the medium bench shape (the fit's largest
  // buffer; its first fold's GEMM ran at 160 GFLOP/s against 210 for the next).
  // BRAINLATENT_SCORE_ROWS=N sets N: the tests' way to several chunks at small shapes.
  static constexpr i64 kScoreRows = 2048;
  static i64 score_rows_target() {
    const i64 forced = forced_size("BRAINLATENT_SCORE_ROWS");
    return forced > 0 ? forced : kScoreRows;
  }
  const i64 score_rows_;
  // (the scoring GEMMs of a fold of n_v rows, and the most alphas one takes)
  int score_chunks(i64 nv) const {
    const int most = static_cast<int>(std::clamp<i64>(score_rows_ / std::max<i64>(1, nv), 1, chunk()));
    const int A = std::max(1, pb_.n_alphas());
    return (A + most - 1) / most;
  }
  int score_chunk(i64 nv) const {
    const int A = std::max(1, pb_.n_alphas()), chunks = score_chunks(nv);
    return (A + chunks - 1) / chunks;
  }
  // The most rows of one fold's scoring output over the folds: score_chunk(n_v)·n_v stays within the
  // target rows while a fold has fewer (10 alphas, folds of 600, 300 and 200 samples take 1,800, 1,500
  // and 2,000 rows of 2,048), and is n_v for a fold of more.
  double score_rows() const {
    double rows = 0;
    for (int v = 0; v < pb_.folds.k; ++v) rows = std::max(rows, static_cast<double>(score_chunk(pb_.folds.size(v))) * static_cast<double>(pb_.folds.size(v)));
    return rows;
  }
  // Kernel refit: targets per block of the dual coefficients (n × block), so that they fit in the
  // largest scoring output (score_rows() × tb floats, what footprint() counts per target), in
  // balanced blocks (no floor: a wider block than fits would grow that buffer past the footprint).
  // With X̃ freed the block may be as wide as X̃ was (n × p, counted in the plan as X's copy): fewer
  // blocks, fewer passes forming X̃'s panels (medium bench shape: one block of all 4,096 targets).
  i64 refit_block(i64 n, i64 tb) const {
    i64 cap = std::max<i64>(1, static_cast<i64>(score_rows()) * tb / std::max<i64>(1, n));
    if (!ctx_.x_buf) cap = std::max(cap, pb_.p());
    const i64 blocks = (tb + cap - 1) / cap;
    return std::max<i64>(1, (tb + blocks - 1) / blocks);
  }
  std::vector<Factor> factors_;
  std::vector<BufferPtr> stacks_;     // kernel: per fold, every alpha's projection, transposed (r × A·n_v)
  ViewF stack_of(int v) const {
    const i64 nv = pb_.folds.size(v);
    return view<float>(stacks_[Z(v)] ? *stacks_[Z(v)] : *shared_stack_, eig_.q.rows, pb_.n_alphas() * nv);
  }
  std::vector<char> all_projected_;   // kernel: the fold's every alpha has its projection
  bool fused_ = false;                // kernel, one batch: folds formed in score() (see begin_candidate)
  BufferPtr shared_stack_;            // fused: the stack the folds share
  BufferPtr spare_;                   // kernel form: X̃'s buffer after setup, for the shared stack
  BufferPtr alphas_, wres_;           // the alphas, and the kernel form's α/(λ+α) per alpha and eigenvector
  Scratch<float> l_s_, h_s_, inv_s_;  // leverage(): scaled rows, (I − H)_vv blocks, inverses
  Scratch<float> z_, zs_, res_, rv_;
  Scratch<double> rd_;
  ViewF z_view_;
  std::uint64_t z_key_ = 0;  // the batch load z_view_ is of (Batch::loads; 0: none)
  Scratch<float> xp_;        // the kernel refit's panel of X̃ (X̃ freed after setup)
  BufferPtr gram_;           // the Gram's buffer after setup, lent to h_s_, inv_s_ and xp_ (see setup())
  bool panels_in_gram_ = false;  // the refit's panels of X̃ in gram_ (kept through the refit)
  i64 panel_cols_ = 0;       // its columns (x_panel_cols, read once per fit)
};

}  // namespace

std::unique_ptr<Route> make_exact_primal(Context& ctx) { return std::make_unique<Exact>(ctx, true); }
std::unique_ptr<Route> make_exact_kernel(Context& ctx) { return std::make_unique<Exact>(ctx, false); }

RouteCost cost_exact_primal(const Problem& pb) {
  const double n = static_cast<double>(pb.n()), p = static_cast<double>(pb.p()), t = static_cast<double>(pb.t()),
               A = pb.n_alphas(), nv = n / pb.folds.k;
  RouteCost c;
  c.setup = n * p * p + eig_flops(p) + 2 * n * p * p;
  c.decompose = A * (n * nv * p + n * nv * nv / 3);  // the leverages (begin_candidate)
  c.total = c.setup + 2 * n * p * t + c.decompose + A * (2 * n * p * t + 2 * n * nv * t) + 2 * p * p * t;
  return c;
}

RouteCost cost_exact_kernel(const Problem& pb) {
  const double n = static_cast<double>(pb.n()), p = static_cast<double>(pb.p()), t = static_cast<double>(pb.t()),
               A = pb.n_alphas(), nv = n / pb.folds.k;
  RouteCost c;
  c.setup = n * n * p + eig_flops(n);
  // (the leverages: formed fold by fold while scoring with one target batch, the usual case, their
  // share of the progress going with the scoring; with several, before the first batch)
  c.decompose = 0;
  // (per alpha, every fold's (I − H)_vv by symmetric products, n·n_v·n, their factors, and the
  // projections P, 2·n·n_v·n: the products were counted and the projections left out, a third of
  // the leverages' 4.2 TFLOP at NSD's size)
  c.leverage = A * (3 * n * nv * n + n * nv * nv / 3);
  c.total = c.setup + c.leverage + 2 * n * n * t + A * (2 * n * n * t + 2 * n * nv * t) + 2 * n * n * t + 2 * n * p * t;
  return c;
}

}  // namespace brainlatent::ridge
