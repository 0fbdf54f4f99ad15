// Every enum table of the addon (string option → core enum), in one place, and the reader of the
// options both ridge solvers share.
#pragma once
#include "brainlatent/ridge.h"
#include "brainlatent/sd_pipeline.h"
#include "kit.h"

namespace brainlatent::addon {

inline constexpr EnumEntry<RidgeScore> kRidgeScores[] = {{"r2", RidgeScore::R2}, {"pearson", RidgeScore::Pearson}};
inline constexpr EnumEntry<RidgeRoute> kRidgeRoutes[] = {
    {"auto", RidgeRoute::Auto}, {"primal", RidgeRoute::Primal}, {"kernel", RidgeRoute::Kernel}};
inline constexpr EnumEntry<RidgeCvMethod> kRidgeCvMethods[] = {
    {"auto", RidgeCvMethod::Auto}, {"per-fold", RidgeCvMethod::PerFold}, {"exact", RidgeCvMethod::Exact}};
inline constexpr EnumEntry<EigPrecision> kEigPrecisions[] = {
    {"auto", EigPrecision::Auto}, {"float32", EigPrecision::Float32}, {"float64", EigPrecision::Float64}};

// The options RidgeOptions and BandedRidgeOptions share (alphas, folds, score, intercept,
// standardisation, route, solver, backend, precision, memory), read from a JS options object.
template <typename Options>
void read_ridge_options(const Napi::Object& o, Options& opts) {
  opts.alphas = attr_vector<Napi::Float64Array, double>(o, "alphas");
  opts.score = attr_enum(o, "score", RidgeScore::R2, kRidgeScores);
  opts.fit_intercept = attr_bool(o, "fitIntercept", true);
  opts.standardize = attr_bool(o, "standardize", false);
  opts.route = attr_enum(o, "route", RidgeRoute::Auto, kRidgeRoutes);
  opts.solver = attr_string(o, "solver", "");
  opts.backend = attr_string(o, "backend", "auto");
  opts.eig_precision = attr_enum(o, "eigPrecision", EigPrecision::Auto, kEigPrecisions);
  opts.memory_budget = static_cast<std::size_t>(attr_int(o, "memoryBudget", 0, 0, std::int64_t(1) << 50));
  opts.target_batch = attr_int(o, "targetBatch", 0, 0, std::int64_t(1) << 40);
}

// A fit's folds (a cost estimate takes the folds' sizes instead).
template <typename Options>
void read_folds(const Napi::Object& o, Options& opts) {
  opts.folds = attr_vector<Napi::Int32Array, std::int32_t>(o, "folds");
  opts.n_folds = static_cast<int>(attr_int(o, "nFolds", 0));
}

inline constexpr EnumEntry<LatentMode> kLatentModes[] = {
    {"auto", LatentMode::Auto}, {"mean", LatentMode::Mean}, {"sample", LatentMode::Sample}};

}  // namespace brainlatent::addon
