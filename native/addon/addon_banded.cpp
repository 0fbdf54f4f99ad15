// Node-API surface of banded ridge: an AsyncWorker per fit with progress through a thread-safe
// function and the cancel tokens of addon_ridge.cpp, zero-copy typed arrays in and out.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/banded_ridge.h"
#include "convert.h"
#include "fit_worker.h"

namespace brainlatent::addon {
namespace {

Napi::Value banded_result_to_js(Napi::Env env, BandedRidgeResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("nFeatures", static_cast<double>(r.n_features));
  out.Set("nTargets", static_cast<double>(r.n_targets));
  out.Set("nBands", static_cast<double>(r.n_bands));
  out.Set("coef", to_typed<Napi::Float32Array>(env, std::move(r.coef)));
  out.Set("intercept", to_typed<Napi::Float32Array>(env, std::move(r.intercept)));
  out.Set("xMean", to_typed<Napi::Float32Array>(env, std::move(r.x_mean)));
  out.Set("xScale", to_typed<Napi::Float32Array>(env, std::move(r.x_scale)));
  out.Set("gammas", to_typed<Napi::Float64Array>(env, std::move(r.gammas)));
  out.Set("bestGamma", to_typed<Napi::Int32Array>(env, std::move(r.best_gamma)));
  out.Set("bestAlpha", to_typed<Napi::Float32Array>(env, std::move(r.best_alpha)));
  out.Set("bestScores", to_typed<Napi::Float32Array>(env, std::move(r.best_scores)));
  out.Set("gammaScores", to_typed<Napi::Float32Array>(env, std::move(r.gamma_scores)));
  const BandedRidgeInfo& i = r.info;
  Napi::Object info = Napi::Object::New(env);
  info.Set("route", i.route);
  info.Set("eigPrecision", i.eig_precision);
  info.Set("nGammas", static_cast<double>(i.n_gammas));
  info.Set("targetBatch", static_cast<double>(i.target_batch));
  info.Set("nBatches", static_cast<double>(i.n_batches));
  info.Set("eigendecompositions", static_cast<double>(i.eigendecompositions));
  info.Set("refitGroups", static_cast<double>(i.refit_groups));
  info.Set("skippedCandidates", static_cast<double>(i.skipped_candidates));
  info.Set("gemmFlops", i.gemm_flops);
  info.Set("secondsGram", i.seconds_gram);
  info.Set("secondsSearch", i.seconds_search);
  info.Set("secondsRefit", i.seconds_refit);
  info.Set("secondsTotal", i.seconds_total);
  out.Set("info", info);
  return out;
}

// bandedRidgeFit(x, n, p, y, t, options, onProgress?, cancelToken?) -> Promise<result>
Napi::Value BandedRidgeFit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::int64_t n = int_arg(info, 1, "n"), p = int_arg(info, 2, "p"), t = int_arg(info, 4, "t");
  Napi::Float32Array x = f32_arg(info, 0, "X", static_cast<std::size_t>(n * p));
  Napi::Float32Array y = f32_arg(info, 3, "Y", static_cast<std::size_t>(n * t));
  if (!info[5].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object o = info[5].As<Napi::Object>();
  BandedRidgeOptions opts;
  auto bands = attr_typed_array<Napi::Float64Array>(o, "bandSizes", napi_float64_array, "Float64Array");
  for (std::size_t i = 0; i < bands.ElementLength(); ++i) opts.band_sizes.push_back(static_cast<std::int64_t>(bands[i]));
  auto alphas = attr_typed_array<Napi::Float64Array>(o, "alphas", napi_float64_array, "Float64Array");
  opts.alphas.assign(alphas.Data(), alphas.Data() + alphas.ElementLength());
  if (has(o, "gammas")) {
    auto g = attr_typed_array<Napi::Float64Array>(o, "gammas", napi_float64_array, "Float64Array");
    opts.gammas.assign(g.Data(), g.Data() + g.ElementLength());
  }
  if (has(o, "concentrations")) {
    auto c = attr_typed_array<Napi::Float64Array>(o, "concentrations", napi_float64_array, "Float64Array");
    opts.concentrations.assign(c.Data(), c.Data() + c.ElementLength());
  }
  opts.n_iter = static_cast<int>(attr_number(o, "nIter", 100));
  opts.seed = static_cast<std::uint64_t>(attr_number(o, "seed", 0));
  auto folds = attr_typed_array<Napi::Int32Array>(o, "folds", napi_int32_array, "Int32Array");
  opts.folds.assign(folds.Data(), folds.Data() + folds.ElementLength());
  opts.n_folds = static_cast<int>(attr_number(o, "nFolds", 0));
  opts.score = parse_score(o);
  opts.fit_intercept = attr_bool(o, "fitIntercept", true);
  opts.standardize = attr_bool(o, "standardize", false);
  opts.route = parse_route(o);
  opts.eig_precision = parse_precision(o);
  opts.memory_budget = static_cast<std::size_t>(attr_number(o, "memoryBudget", 0));
  opts.target_batch = static_cast<std::int64_t>(attr_number(o, "targetBatch", 0));
  auto* worker = new FitWorker<BandedRidgeOptions, BandedRidgeResult>(env, "brainlatent.bandedRidgeFit", banded_ridge_fit,
                                                                      banded_result_to_js, x, n, p, y, t, std::move(opts),
                                                                      cancel_arg(info, 7), progress_arg(info, 6));
  return worker->start();
}

// dirichletGammas(nSamples, nBands, concentrations: Float64Array, seed) -> Float64Array
Napi::Value DirichletGammas(const Napi::CallbackInfo& info) {
  const std::int64_t ns = int_arg(info, 0, "nSamples"), nb = int_arg(info, 1, "nBands"), seed = int_arg(info, 3, "seed");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(info.Env(), "concentrations must be a Float64Array");
  auto c = info[2].As<Napi::Float64Array>();
  try {
    auto g = dirichlet_gammas(static_cast<int>(ns), static_cast<int>(nb), std::vector<double>(c.Data(), c.Data() + c.ElementLength()),
                              static_cast<std::uint64_t>(seed));
    return to_typed<Napi::Float64Array>(info.Env(), std::move(g));
  } catch (const Error& e) {
    throw to_js_error(info.Env(), e.code(), e.what());
  }
}

}  // namespace

void init_banded(Napi::Env env, Napi::Object exports) {
  exports.Set("bandedRidgeFit", Napi::Function::New(env, BandedRidgeFit));
  exports.Set("dirichletGammas", Napi::Function::New(env, DirichletGammas));
}

}  // namespace brainlatent::addon
