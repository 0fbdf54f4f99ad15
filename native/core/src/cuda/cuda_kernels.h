// Internal: the CUDA backend's element-wise, reduction, ridge and sampler kernels (cuda_kernels.cu),
// as plain launchers over device pointers, strides and a stream, so that cuda_backend.cpp stays
// ordinary C++ (compiled by the host compiler) and only this file's implementation needs nvcc.
// Matrices are row-major (element (i, j) at p[i·ld + j]); a vector is a pointer and a stride
// (nullptr: absent, read as the operation's neutral value). Arithmetic matches the CPU backend's:
// float64 inside, stored in the destination's type.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

#include "brainlatent/philox.h"
#include "brainlatent/sd_fused_step.h"

namespace brainlatent {
namespace cuda {

using i64 = std::int64_t;

struct DVec {  // a strided vector of doubles on the device (p == nullptr: absent)
  const double* p = nullptr;
  i64 step = 1;
};

void fill_f32(float* a, i64 rows, i64 cols, i64 ld, float value, cudaStream_t s);
void fill_f64(double* a, i64 rows, i64 cols, i64 ld, double value, cudaStream_t s);
void convert_f32_f64(const float* src, i64 sld, double* dst, i64 dld, i64 rows, i64 cols, double scale, double shift, double diag,
                     cudaStream_t s);
void convert_f64_f32(const double* src, i64 sld, float* dst, i64 dld, i64 rows, i64 cols, double scale, double shift, double diag,
                     cudaStream_t s);
void scale_f64(double* a, i64 rows, i64 cols, i64 ld, double beta, cudaStream_t s);
void axpby(float alpha, const float* x, i64 xld, float beta, float* y, i64 yld, i64 rows, i64 cols, cudaStream_t s);
void scale_rows_cols(float* a, i64 rows, i64 cols, i64 ld, DVec r, DVec c, cudaStream_t s);
void add_outer(float* a, i64 rows, i64 cols, i64 ld, double alpha, DVec u, DVec v, cudaStream_t s);
void add_broadcast(float* a, i64 rows, i64 cols, i64 ld, DVec r, DVec c, double shift, cudaStream_t s);
void row_sums(const float* a, i64 rows, i64 cols, i64 ld, double* out, i64 ostep, double scale, cudaStream_t s);
void col_sums(const float* a, i64 rows, i64 cols, i64 ld, double* out, i64 ostep, double scale, cudaStream_t s);
// The 3xTF32 product's operands: src (rows × cols, ld) split into hi = src rounded to TF32 and
// lo = (src − hi) rounded to TF32. TF32 keeps 10 of float32's
// 23 mantissa bits, so hi·hi + hi·lo + lo·hi on TF32 tensor cores carries src's products to within
// 2⁻²¹ (the dropped lo·lo and lo's own rounding; 2⁻²⁴ on average), near float32's 2⁻²⁴, where one
// TF32 product carries them to 2⁻¹¹. Non-finite values go to hi whole (lo 0): an infinite input
// can then give NaN where SGEMM gives ±Inf (non-finite either way). hi and lo have leading dimension
// out_ld (≥ cols: padded so that tensor-core kernels read aligned columns).
void split_tf32(const float* src, i64 rows, i64 cols, i64 ld, float* hi, float* lo, i64 out_ld, cudaStream_t s);
// Copies the upper triangle of the row-major n×n matrix onto the lower one (after a cuBLAS/cuSOLVER
// call that wrote one triangle).
void symmetrize_f32(float* a, i64 n, i64 ld, cudaStream_t s);
void symmetrize_f64(double* a, i64 n, i64 ld, cudaStream_t s);

// Ridge. kind is the brainlatent::Shrink value. shrink: w (na × r, contiguous scratch) is filled
// with the weights first, then dst (na·rows × cols) = src scaled along axis_cols ? j : i.
void shrink(const float* src, i64 rows, i64 cols, i64 sld, DVec lam, DVec alphas, i64 na, int kind, bool axis_cols, double* w,
            float* dst, i64 dld, cudaStream_t s);
void shrink_targets(const float* src, i64 rows, i64 cols, i64 sld, DVec lam, DVec alpha, int kind, float* dst, i64 dld, cudaStream_t s);
// One fold (rows r0..r1 of y): sum and SST per column, the constant-target rule applied.
void fold_stats(const float* y, i64 ld, i64 r0, i64 r1, i64 t, DVec level, double* sum, double* sst, double rel_var, cudaStream_t s);
// One block of stacked predictions (m × t at pred, ld pld) scored into acc (1 × t).
void score(const float* pred, i64 pld, const float* y, i64 yld, i64 m, i64 t, DVec offset, bool residual, bool pearson, DVec sum,
           DVec sst, double weight, double* acc, cudaStream_t s);
// scores (na × t, ld) → best per column; alphas and skip are device arrays of na entries.
void select_best(const double* scores, i64 ld, i64 na, i64 t, const double* alphas, const std::uint8_t* skip, std::int32_t* best_index,
                 i64 is, double* best_score, i64 bs, double* best_alpha, i64 as, cudaStream_t s);
void improve(const double* score, i64 s0, const std::int32_t* index, i64 i0, std::int32_t tag, double* best_score, i64 s1,
             std::int32_t* best_index, i64 i1, std::int32_t* best_tag, i64 g1, i64 t, cudaStream_t s);
// Position of the first NaN/Inf in row-major order, written to *pos (must hold INT64_MAX before).
void first_nonfinite(const float* a, i64 rows, i64 cols, i64 ld, unsigned long long* pos, cudaStream_t s);

// Sampler (sd_fused_step.h), contiguous images × n buffers. keys: one per image (host array,
// passed with the launch in chunks).
struct SamplerPtrs {
  i64 images = 0, n = 0;
  int groups = 1;
  float* x = nullptr;
  float* history[kHistorySlots] = {};
  const float* eps = nullptr;
  float* unet_in = nullptr;
  const float* step_noise = nullptr;
  const NoiseKey* keys = nullptr;
};
void sampler_init(const SamplerPtrs& b, const float* z, const float* noise, double a, double sc, double first_in_scale, cudaStream_t s);
void sampler_step(const CompiledStep& step, const SamplerPtrs& b, cudaStream_t s);

// Philox normals (stream, elements first..first+n) of one key, for tests.
void philox_fill(const NoiseKey& key, std::uint32_t stream, std::uint64_t first, float* out, i64 n, cudaStream_t s);

}  // namespace cuda
}  // namespace brainlatent
