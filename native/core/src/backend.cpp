// The parts of the backend seam every implementation shares: names, memory accounting, errors.
#include "brainlatent/backend.h"
#include "brainlatent/profile.h"

#include <cstdio>
#include <string>

namespace brainlatent {

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I32: return 4;
    case DType::U8: return 1;
  }
  return 1;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I32: return "int32";
    case DType::U8: return "uint8";
  }
  return "?";
}

const char* op_name(Op op) {
  switch (op) {
    case Op::Gemm: return "gemm";
    case Op::Syrk: return "syrk";
    case Op::Eigh: return "eigh";
    case Op::Cholesky: return "cholesky";
    case Op::CholeskySolve: return "cholesky_solve";
    case Op::CholeskyInverse: return "cholesky_inverse";
    case Op::Copy: return "copy";
    case Op::Fill: return "fill";
    case Op::Convert: return "convert";
    case Op::Axpby: return "axpby";
    case Op::ScaleRowsCols: return "scale_rows_cols";
    case Op::AddOuter: return "add_outer";
    case Op::AddBroadcast: return "add_broadcast";
    case Op::RowSums: return "row_sums";
    case Op::ColSums: return "col_sums";
    case Op::Shrink: return "shrink";
    case Op::ShrinkTargets: return "shrink_targets";
    case Op::Tridiagonalize: return "tridiagonalize";
    case Op::TriShrink: return "tri_shrink";
    case Op::TriShrinkTargets: return "tri_shrink_targets";
    case Op::FoldStats: return "fold_stats";
    case Op::Score: return "score";
    case Op::SelectBest: return "select_best";
    case Op::Improve: return "improve";
    case Op::FirstNonFinite: return "first_nonfinite";
    case Op::SamplerInit: return "sampler_init";
    case Op::SamplerStep: return "sampler_step";
    case Op::Count_: break;
  }
  return "?";
}

namespace {
std::string gib(std::size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f GiB", static_cast<double>(bytes) / static_cast<double>(1ull << 30));
  return buf;
}
}  // namespace

void Backend::count_alloc(std::size_t bytes, const char* what) {
  const std::size_t live = live_.fetch_add(bytes) + bytes;
  const std::size_t limit = limit_.load();
  if (limit > 0 && live > limit) {
    live_.fetch_sub(bytes);
    throw Error::budget_exceeded(std::string(what) + ": " + gib(bytes) + " more would bring the " + name() +
                                 " backend's work buffers to " + gib(live) + ", past the memory budget of " + gib(limit));
  }
  std::size_t peak = peak_.load();
  while (live > peak && !peak_.compare_exchange_weak(peak, live)) {
  }
  if (bytes >= (1u << 20) && profile::each_call())
    std::fprintf(stderr, "alloc %.1f MB (%s), live %.1f MB\n", bytes / 1e6, what, live / 1e6);
}

void Backend::count_free(std::size_t bytes) {
  const std::size_t live = live_.fetch_sub(bytes) - bytes;
  if (bytes >= (1u << 20) && profile::each_call()) std::fprintf(stderr, "free %.1f MB, live %.1f MB\n", bytes / 1e6, live / 1e6);
}

void Backend::unsupported(Op op, DType dtype) const {
  throw Error(ErrorCode::BackendUnavailable,
              std::string("the ") + name() + " backend does not implement " + op_name(op) + " for " + dtype_name(dtype));
}

}  // namespace brainlatent
