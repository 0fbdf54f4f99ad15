// Node-API surface of banded ridge: the fit as an async job (progress, cancel token, zero-copy
// results) and the Dirichlet candidates.
#include <memory>
#include <string>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/banded_ridge.h"
#include "enums.h"
#include "kit.h"
#include "ridge_fit_job.h"

namespace brainlatent::addon {
namespace {

Napi::Value banded_result_to_js(Napi::Env env, BandedRidgeResult& r) {
  Napi::Object out = standardised_model_to_js(env, r);
  out.Set("nBands", static_cast<double>(r.n_bands));
  out.Set("gammas", to_typed<Napi::Float64Array>(env, std::move(r.gammas)));
  out.Set("bestGamma", to_typed<Napi::Int32Array>(env, std::move(r.best_gamma)));
  out.Set("bestAlpha", to_typed<Napi::Float32Array>(env, std::move(r.best_alpha)));
  out.Set("bestScores", to_typed<Napi::Float32Array>(env, std::move(r.best_scores)));
  out.Set("gammaScores", to_typed<Napi::Float32Array>(env, std::move(r.gamma_scores)));
  const BandedRidgeInfo& i = r.info;
  Napi::Object info = fit_info_to_js(env, i);
  info.Set("nGammas", static_cast<double>(i.n_gammas));
  info.Set("eigendecompositions", static_cast<double>(i.eigendecompositions));
  info.Set("refitGroups", static_cast<double>(i.refit_groups));
  info.Set("skippedCandidates", static_cast<double>(i.skipped_candidates));
  info.Set("secondsGram", i.seconds_gram);
  info.Set("secondsSearch", i.seconds_search);
  info.Set("secondsRefit", i.seconds_refit);
  info.Set("secondsTotal", i.seconds_total);
  out.Set("info", info);
  return out;
}

// Banded ridge's own options, after the shared ones.
void read_banded_options(const Napi::Object& o, BandedRidgeOptions& opts) {
  for (double b : attr_vector<Napi::Float64Array, double>(o, "bandSizes")) opts.band_sizes.push_back(static_cast<std::int64_t>(b));
  if (has(o, "gammas")) opts.gammas = attr_vector<Napi::Float64Array, double>(o, "gammas");
  if (has(o, "concentrations")) opts.concentrations = attr_vector<Napi::Float64Array, double>(o, "concentrations");
  opts.n_iter = static_cast<int>(attr_int(o, "nIter", 100, 1));
  opts.seed = static_cast<std::uint64_t>(attr_int(o, "seed", 0, 0, std::int64_t(1) << 53));
}

// bandedRidgeCostEstimate(n, p, t, foldSizes: Float64Array, options) -> { route, flops, memory }: the
// per-fold route a banded fit of this shape would take (options as bandedRidgeFit's, without folds: each
// fold's size in foldSizes), its flop model and its memory plan under options.memoryBudget, from the
// dimensions alone (banded_ridge.h).
Napi::Value BandedRidgeCostEstimateJs(const Napi::CallbackInfo& info) {
  Args args(info, "bandedRidgeCostEstimate");
  const std::int64_t n = args.count(0, "n"), p = args.count(1, "p"), t = args.count(2, "t");
  const std::vector<std::int64_t> sizes = args.counts(3, "foldSizes");
  Napi::Object o = args.object(4, "options");
  BandedRidgeOptions opts;
  read_ridge_options(o, opts);
  read_banded_options(o, opts);
  const RidgeCostEstimate c = guarded(info.Env(), "bandedRidgeCostEstimate", [&] { return banded_ridge_cost_estimate(n, p, t, sizes, opts); });
  return cost_estimate_to_js(info.Env(), c);
}

// bandedRidgeFit(x, n, p, y, t, options, onProgress?, cancelToken?) -> Promise<result>
Napi::Value BandedRidgeFit(const Napi::CallbackInfo& info) {
  return ridge_fit_job<BandedRidgeOptions>(
      info, "bandedRidgeFit", "brainlatent.bandedRidgeFit",
      read_banded_options, [](const ConstMatF& x, const ConstMatF& y, const BandedRidgeOptions& opts) { return banded_ridge_fit(x, y, opts); }, banded_result_to_js);
}

// dirichletGammas(nSamples, nBands, concentrations: Float64Array, seed) -> Float64Array
Napi::Value DirichletGammas(const Napi::CallbackInfo& info) {
  Args args(info, "dirichletGammas");
  const std::int64_t ns = args.count(0, "nSamples"), nb = args.count(1, "nBands"), seed = args.count(3, "seed");
  auto c = args.array<Napi::Float64Array>(2, "concentrations");
  auto g = guarded(info.Env(), "dirichletGammas", [&] {
    return dirichlet_gammas(static_cast<int>(std::min<std::int64_t>(ns, 1 << 30)), static_cast<int>(std::min<std::int64_t>(nb, 1 << 30)),
                            std::vector<double>(c.Data(), c.Data() + c.ElementLength()), static_cast<std::uint64_t>(seed));
  });
  return to_typed<Napi::Float64Array>(info.Env(), std::move(g));
}

}  // namespace

void init_banded(Napi::Env env, Napi::Object exports) {
  exports.Set("bandedRidgeFit", Napi::Function::New(env, BandedRidgeFit, "bandedRidgeFit"));
  exports.Set("bandedRidgeCostEstimate", Napi::Function::New(env, BandedRidgeCostEstimateJs, "bandedRidgeCostEstimate"));
  exports.Set("dirichletGammas", Napi::Function::New(env, DirichletGammas, "dirichletGammas"));
}

}  // namespace brainlatent::addon
