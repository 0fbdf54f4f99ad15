// The CUDA backend's own kernels: the element-wise and reduction operations of the backend seam,
// the ridge kernels (shrinkage, fold statistics, scores, best-alpha selection) and the sampler's
// fused step with Philox noise. Each mirrors the CPU backend's arithmetic (float64 inside, the
// destination's type stored; the sampler's linear step in float32 without FMA contraction, as the
// CPU build), so the two backends agree to rounding and the op test can hold both to one float64
// reference. Launch shapes are plain: grid-stride loops over rows (grid y) and columns (grid x).
#include "cuda_kernels.h"

#include <algorithm>
#include <climits>

#include "brainlatent/backend.h"
#include "brainlatent/error.h"

namespace brainlatent {
namespace cuda {
namespace {

constexpr int kThreads = 256;

void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw Error(ErrorCode::Internal, std::string("CUDA kernel ") + what + ": " + cudaGetErrorString(e));
}

// A grid covering rows × cols: x over columns, y over rows (each capped; kernels stride).
dim3 grid2(i64 rows, i64 cols) {
  const i64 gx = std::min<i64>(std::max<i64>(1, (cols + kThreads - 1) / kThreads), 4096);
  const i64 gy = std::min<i64>(std::max<i64>(1, rows), 65535);
  return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
}
unsigned grid1(i64 n) { return static_cast<unsigned>(std::min<i64>(std::max<i64>(1, (n + kThreads - 1) / kThreads), 65535 * 8)); }

#define FOR_ROWS(i, rows) for (i64 i = blockIdx.y; i < (rows); i += gridDim.y)
#define FOR_COLS(j, cols) \
  for (i64 j = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; j < (cols); j += static_cast<i64>(gridDim.x) * blockDim.x)
#define FOR_1D(j, n) FOR_COLS(j, n)

__device__ inline double vget(DVec v, i64 k, double dflt) { return v.p ? v.p[k * v.step] : dflt; }

template <typename T>
__global__ void k_fill(T* a, i64 rows, i64 cols, i64 ld, T value) {
  FOR_ROWS(i, rows) FOR_COLS(j, cols) a[i * ld + j] = value;
}

template <typename S, typename D>
__global__ void k_convert(const S* src, i64 sld, D* dst, i64 dld, i64 rows, i64 cols, double scale, double shift, double diag) {
  FOR_ROWS(i, rows) FOR_COLS(j, cols) {
    dst[i * dld + j] = static_cast<D>(scale * static_cast<double>(src[i * sld + j]) + shift + (i == j ? diag : 0.0));
  }
}

// x rounded to the nearest TF32 value (ties away from zero; sign-magnitude bits make the carry
// into the exponent right), or cut to it where rounding up would overflow.
__device__ inline float round_tf32(float x) {
  const unsigned u = __float_as_uint(x);
  const float r = __uint_as_float((u + 0x1000u) & 0xffffe000u);
  return isfinite(r) ? r : __uint_as_float(u & 0xffffe000u);
}

__global__ void k_split_tf32(const float* src, i64 rows, i64 cols, i64 ld, float* hi, float* lo, i64 out_ld) {
  FOR_ROWS(i, rows) FOR_COLS(j, cols) {
    const float x = src[i * ld + j];
    const bool finite = isfinite(x);
    const float h = finite ? round_tf32(x) : x;
    hi[i * out_ld + j] = h;
    lo[i * out_ld + j] = finite ? round_tf32(__fsub_rn(x, h)) : 0.0f;
  }
}

__global__ void k_scale_f64(double* a, i64 rows, i64 cols, i64 ld, double beta) {
  FOR_ROWS(i, rows) FOR_COLS(j, cols) a[i * ld + j] = beta == 0.0 ? 0.0 : a[i * ld + j] * beta;
}

__global__ void k_axpby(float alpha, const float* x, i64 xld, float beta, float* y, i64 yld, i64 rows, i64 cols) {
  FOR_ROWS(i, rows) FOR_COLS(j, cols) {
    const float s = x[i * xld + j];
    float& d = y[i * yld + j];
    d = beta == 1.0f ? __fadd_rn(d, __fmul_rn(alpha, s)) : __fadd_rn(__fmul_rn(alpha, s), __fmul_rn(beta, d));
  }
}

__global__ void k_scale_rows_cols(float* a, i64 rows, i64 cols, i64 ld, DVec r, DVec c) {
  FOR_ROWS(i, rows) {
    const double ri = vget(r, i, 1.0);
    FOR_COLS(j, cols) {
      float& d = a[i * ld + j];
      d = c.p ? static_cast<float>(d * ri * c.p[j * c.step]) : static_cast<float>(d * ri);
    }
  }
}

__global__ void k_add_outer(float* a, i64 rows, i64 cols, i64 ld, double alpha, DVec u, DVec v) {
  FOR_ROWS(i, rows) {
    const double ui = alpha * vget(u, i, 1.0);
    FOR_COLS(j, cols) {
      float& d = a[i * ld + j];
      d = static_cast<float>(d + ui * vget(v, j, 1.0));
    }
  }
}

__global__ void k_add_broadcast(float* a, i64 rows, i64 cols, i64 ld, DVec r, DVec c, double shift) {
  FOR_ROWS(i, rows) {
    const double ri = vget(r, i, 0.0) + shift;
    FOR_COLS(j, cols) {
      float& d = a[i * ld + j];
      d = static_cast<float>(d + ri + vget(c, j, 0.0));
    }
  }
}

// One warp per row, float64 partial sums reduced by shuffles.
__global__ void k_row_sums(const float* a, i64 rows, i64 cols, i64 ld, double* out, i64 os, double scale) {
  const i64 warp = (static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  const i64 warps = static_cast<i64>(gridDim.x) * blockDim.x / 32;
  for (i64 i = warp; i < rows; i += warps) {
    double s = 0;
    for (i64 j = lane; j < cols; j += 32) s += a[i * ld + j];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
    if (lane == 0) out[i * os] = scale * s;
  }
}

__global__ void k_col_sums(const float* a, i64 rows, i64 cols, i64 ld, double* out, i64 os, double scale) {
  FOR_1D(j, cols) {
    double s = 0;
    for (i64 i = 0; i < rows; ++i) s += a[i * ld + j];
    out[j * os] = scale * s;
  }
}

template <typename T>
__global__ void k_symmetrize(T* a, i64 n, i64 ld) {
  FOR_ROWS(i, n) FOR_COLS(j, i) a[i * ld + j] = a[j * ld + i];
}

__device__ inline double shrink_weight(int kind, double lam, double alpha) {
  switch (kind) {
    case static_cast<int>(Shrink::Inverse): return 1.0 / (lam + alpha);
    case static_cast<int>(Shrink::Complement): return alpha / (lam + alpha);
    case static_cast<int>(Shrink::SqrtInverse): return sqrt(1.0 / (lam + alpha));
    default: return sqrt(alpha / (lam + alpha));
  }
}

__global__ void k_shrink_weights(DVec lam, DVec alphas, i64 na, i64 r, int kind, double* w) {
  FOR_ROWS(a, na) FOR_COLS(k, r) w[a * r + k] = shrink_weight(kind, lam.p[k * lam.step], alphas.p[a * alphas.step]);
}

__global__ void k_shrink(const float* src, i64 rows, i64 cols, i64 sld, const double* w, i64 r, bool axis_cols, float* dst, i64 dld,
                         i64 total_rows) {
  FOR_ROWS(row, total_rows) {
    const i64 a = row / rows, i = row % rows;
    const float* s = src + i * sld;
    const double* wa = w + a * r;
    float* d = dst + row * dld;
    if (axis_cols) {
      FOR_COLS(j, cols) d[j] = static_cast<float>(s[j] * wa[j]);
    } else {
      const double wi = wa[i];
      FOR_COLS(j, cols) d[j] = static_cast<float>(s[j] * wi);
    }
  }
}

__global__ void k_shrink_targets(const float* src, i64 rows, i64 cols, i64 sld, DVec lam, DVec alpha, int kind, float* dst, i64 dld) {
  FOR_ROWS(k, rows) {
    const double l = lam.p[k * lam.step];
    FOR_COLS(j, cols) {
      const double s = src[k * sld + j], a = alpha.p[j * alpha.step];
      double v;
      if (kind == static_cast<int>(Shrink::Inverse)) v = s / (l + a);
      else if (kind == static_cast<int>(Shrink::Complement)) v = s * a / (l + a);
      else v = s * shrink_weight(kind, l, a);
      dst[k * dld + j] = static_cast<float>(v);
    }
  }
}

__global__ void k_fold_stats(const float* y, i64 ld, i64 r0, i64 r1, i64 t, DVec level, double* sum, double* sst, double rel_var) {
  FOR_1D(j, t) {
    double s = 0, s2 = 0;
    for (i64 i = r0; i < r1; ++i) {
      const double v = y[i * ld + j];
      s += v;
      s2 += v * v;
    }
    const double m = static_cast<double>(r1 - r0);
    const double lv = level.p[j * level.step];
    const double ss = m > 0 ? fmax(0.0, s2 - s * s / m) : 0.0;
    sum[j] = s;
    sst[j] = ss > rel_var * (lv * lv * m + s2) ? ss : 0.0;
  }
}

__global__ void k_score(const float* pred, i64 pld, const float* y, i64 yld, i64 m, i64 t, DVec offset, bool residual, bool pearson,
                        DVec sum, DVec sst, double weight, double* acc) {
  FOR_1D(j, t) {
    const double off = residual ? 0.0 : offset.p[j * offset.step];
    double sse = 0, sp = 0, spp = 0, spy = 0, mean = 0;
    // (Pearson: the prediction without the training mean, centred by a first pass, as the CPU backend's score)
    if (pearson) {
      for (i64 i = 0; i < m; ++i) mean += residual ? static_cast<double>(y[i * yld + j]) - pred[i * pld + j] : static_cast<double>(pred[i * pld + j]);
      mean /= static_cast<double>(m);
    }
    for (i64 i = 0; i < m; ++i) {
      const double pr = pred[i * pld + j], yr = y[i * yld + j];
      if (!pearson) {
        const double d = residual ? pr : pr + off - yr;
        sse += d * d;
      } else {
        const double q = (residual ? yr - pr : pr) - mean;
        sp += q;
        spp += q * q;
        spy += q * yr;
      }
    }
    const double st = sst.p[j * sst.step];
    double s = 0;
    if (!pearson) {
      s = st > 0 ? 1.0 - sse / st : 0.0;
    } else {
      const double md = static_cast<double>(m);
      const double cpp = spp - sp * sp / md;
      const double cpy = spy - sp * sum.p[j * sum.step] / md;
      s = (cpp > 0 && st > 0) ? cpy / sqrt(cpp * st) : 0.0;
    }
    acc[j] += weight * s;
  }
}

__global__ void k_select_best(const double* scores, i64 ld, i64 na, i64 t, const double* alphas, const std::uint8_t* skip,
                              std::int32_t* bi, i64 is, double* bsc, i64 bs, double* ba, i64 as) {
  FOR_1D(j, t) {
    i64 best = -1;
    double sbest = 0;
    for (i64 a = 0; a < na; ++a) {
      if (skip[a]) continue;
      const double s = scores[a * ld + j];
      if (best < 0 || s > sbest || (s == sbest && alphas[a] > alphas[best])) {
        sbest = s;
        best = a;
      }
    }
    bi[j * is] = static_cast<std::int32_t>(best);
    bsc[j * bs] = sbest;
    ba[j * as] = alphas[best];
  }
}

__global__ void k_improve(const double* score, i64 s0, const std::int32_t* index, i64 i0, std::int32_t tag, double* bsc, i64 s1,
                          std::int32_t* bidx, i64 i1, std::int32_t* btag, i64 g1, i64 t) {
  FOR_1D(j, t) {
    const double s = score[j * s0];
    if (s > bsc[j * s1]) {
      bsc[j * s1] = s;
      bidx[j * i1] = index[j * i0];
      btag[j * g1] = tag;
    }
  }
}

__global__ void k_first_nonfinite(const float* a, i64 rows, i64 cols, i64 ld, unsigned long long* pos) {
  FOR_ROWS(i, rows) FOR_COLS(j, cols) {
    if (!isfinite(a[i * ld + j])) atomicMin(pos, static_cast<unsigned long long>(i * cols + j));
  }
}

// ---- Philox4x32-10 and Box-Muller, as philox.cpp (float64 Box-Muller, rounded to float).
struct Words {
  unsigned w[4];
};
__device__ inline Words philox(unsigned c0, unsigned c1, unsigned c2, unsigned c3, unsigned k0, unsigned k1) {
  for (int round = 0; round < 10; ++round) {
    const unsigned hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const unsigned hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    const unsigned n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Words{{c0, c1, c2, c3}};
}
__device__ inline float philox_normal_d(const NoiseKey& key, unsigned stream, unsigned long long e) {
  const Words w = philox(static_cast<unsigned>(e >> 2), stream, static_cast<unsigned>(key.image_index),
                         static_cast<unsigned>(key.image_index >> 32), static_cast<unsigned>(key.seed),
                         static_cast<unsigned>(key.seed >> 32));
  const unsigned lane = static_cast<unsigned>(e & 3u);
  const unsigned a = w.w[lane & 2u], b = w.w[(lane & 2u) + 1];
  constexpr double kInv = 1.0 / 4294967296.0;
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  const double u1 = (static_cast<double>(a) + 1.0) * kInv;
  const double u2 = (static_cast<double>(b) + 0.5) * kInv;
  const double r = sqrt(-2.0 * log(u1));
  return static_cast<float>((lane & 1u) ? r * sin(kTwoPi * u2) : r * cos(kTwoPi * u2));
}

__global__ void k_philox_fill(NoiseKey key, unsigned stream, unsigned long long first, float* out, i64 n) {
  FOR_1D(j, n) out[j] = philox_normal_d(key, stream, first + static_cast<unsigned long long>(j));
}

// ---- the sampler. Keys travel with the launch, a chunk of images per launch (grid y).
constexpr int kKeysPerLaunch = 32;
struct KeyChunk {
  NoiseKey k[kKeysPerLaunch];
};

__global__ void k_sampler_init(SamplerPtrs b, i64 img0, i64 nimg, KeyChunk keys, const float* z, const float* noise, double a, double sc,
                               double first_in_scale) {
  for (i64 q = blockIdx.y; q < nimg; q += gridDim.y) {
    const i64 img = img0 + q;
    FOR_COLS(j, b.n) {
      const i64 at = img * b.n + j;
      const double nz = noise ? static_cast<double>(noise[at]) : static_cast<double>(philox_normal_d(keys.k[q], 0, static_cast<unsigned long long>(j)));
      const float v = static_cast<float>(a * static_cast<double>(z[at]) + sc * nz);
      b.x[at] = v;
      const float in = static_cast<float>(first_in_scale * static_cast<double>(v));
      for (int g = 0; g < b.groups; ++g) b.unet_in[(g * b.images + img) * b.n + j] = in;
    }
  }
}

// A compiled step in launch-parameter form. Linear steps: per stored register, (source, float
// coefficient) pairs in the CPU loop's order (the fused pass's union of sources when it stores one
// or two registers, else term order). Clamped steps: float64 terms, as the CPU's clamped path.
struct DevComb {
  std::uint8_t dst = 0, terms = 0;
  std::uint8_t src[kInMax] = {};
  float cf[kInMax] = {};
  double cd[kInMax] = {};
  double range = 1;
};
struct DevStep {
  std::uint8_t clamps = 0, outs = 0;
  std::uint32_t inputs = 0;
  float scale = 1;
  bool noisy = false;
  std::uint32_t stream = 0;
  DevComb clamp[kMaxStepOps];
  DevComb out[1 + kHistorySlots];
};

__device__ inline float load_input(const SamplerPtrs& b, int i, i64 img, i64 j, const NoiseKey& key, std::uint32_t stream, bool philox) {
  const i64 at = img * b.n + j;
  switch (i) {
    case kInX: return b.x[at];
    case kInEpsU: return b.eps[at];
    case kInEpsC: return b.eps[((b.groups - 1) * b.images + img) * b.n + j];
    case kInNoise: return philox ? philox_normal_d(key, stream, static_cast<unsigned long long>(j)) : b.step_noise[at];
    default: return b.history[i - kInH0][at];
  }
}

__global__ void k_sampler_step(DevStep c, SamplerPtrs b, i64 img0, i64 nimg, KeyChunk keys) {
  const bool philox = b.step_noise == nullptr;
  for (i64 q = blockIdx.y; q < nimg; q += gridDim.y) {
    const i64 img = img0 + q;
    FOR_COLS(j, b.n) {
      float in[kInCount];
      for (int i = 0; i < kInCount; ++i) in[i] = (c.inputs & (1u << i)) ? load_input(b, i, img, j, keys.k[q], c.stream, philox) : 0.0f;
      float out[1 + kHistorySlots];
      if (c.clamps == 0) {
        for (int o = 0; o < c.outs; ++o) {
          const DevComb& t = c.out[o];
          float acc = 0.0f;
          for (int k = 0; k < t.terms; ++k) {
            const float term = __fmul_rn(t.cf[k], in[t.src[k]]);
            acc = k == 0 ? term : __fadd_rn(acc, term);
          }
          out[o] = acc;
        }
      } else {
        double v[kInMax];
        for (int i = 0; i < kInCount; ++i) v[i] = in[i];
        for (int m = 0; m < c.clamps; ++m) {
          double d = 0;
          for (int k = 0; k < c.clamp[m].terms; ++k) d += c.clamp[m].cd[k] * v[c.clamp[m].src[k]];
          v[kInClamp0 + m] = fmin(c.clamp[m].range, fmax(-c.clamp[m].range, d));
        }
        for (int o = 0; o < c.outs; ++o) {
          double d = 0;
          for (int k = 0; k < c.out[o].terms; ++k) d += c.out[o].cd[k] * v[c.out[o].src[k]];
          out[o] = static_cast<float>(d);
        }
      }
      const i64 at = img * b.n + j;
      for (int o = 0; o < c.outs; ++o) {
        if (c.out[o].dst != kRegX) {
          b.history[c.out[o].dst - kRegH0][at] = out[o];
          continue;
        }
        b.x[at] = out[o];
        const float v = __fmul_rn(c.scale, out[o]);
        for (int g = 0; g < b.groups; ++g) b.unet_in[(g * b.images + img) * b.n + j] = v;
      }
    }
  }
}

DevStep dev_step(const CompiledStep& c) {
  DevStep d;
  d.clamps = c.clamps;
  d.outs = c.outs;
  d.inputs = c.inputs;
  d.scale = static_cast<float>(c.next_in_scale);
  d.noisy = c.noisy;
  d.stream = c.noise_stream;
  auto exact = [](const LinearComb& t, DevComb& o) {
    o.dst = t.dst;
    o.terms = t.terms;
    o.range = t.clamp_range;
    for (int k = 0; k < t.terms; ++k) {
      o.src[k] = t.term[k].src;
      o.cd[k] = t.term[k].coeff;
      o.cf[k] = static_cast<float>(t.term[k].coeff);
    }
  };
  for (int m = 0; m < c.clamps; ++m) exact(c.clamp[m], d.clamp[m]);
  for (int o = 0; o < c.outs; ++o) exact(c.out[o], d.out[o]);
  if (c.clamps == 0 && c.outs <= 2) {
    // The CPU's fused pass: the union of every stored register's sources in ascending input
    // order, each register's float coefficients summed per source (zeros included).
    std::uint8_t uni[kInCount];
    int K = 0;
    for (int i = 0; i < kInCount; ++i) {
      bool used = false;
      for (int o = 0; o < c.outs; ++o)
        for (int t = 0; t < c.out[o].terms; ++t) used = used || c.out[o].term[t].src == i;
      if (used) uni[K++] = static_cast<std::uint8_t>(i);
    }
    if (K == 0) uni[K++] = kInX;
    for (int o = 0; o < c.outs; ++o) {
      DevComb& t = d.out[o];
      t.terms = static_cast<std::uint8_t>(K);
      for (int i = 0; i < K; ++i) {
        t.src[i] = uni[i];
        t.cf[i] = 0.0f;
        for (int k = 0; k < c.out[o].terms; ++k)
          if (c.out[o].term[k].src == uni[i]) t.cf[i] += static_cast<float>(c.out[o].term[k].coeff);
      }
    }
  }
  return d;
}

template <typename Launch>
void by_key_chunks(const SamplerPtrs& b, Launch&& launch) {
  for (i64 img0 = 0; img0 < b.images; img0 += kKeysPerLaunch) {
    const i64 nimg = std::min<i64>(kKeysPerLaunch, b.images - img0);
    KeyChunk keys{};
    if (b.keys)
      for (i64 q = 0; q < nimg; ++q) keys.k[q] = b.keys[img0 + q];
    launch(img0, nimg, keys);
  }
}

}  // namespace

void fill_f32(float* a, i64 rows, i64 cols, i64 ld, float value, cudaStream_t s) {
  if (rows * cols == 0) return;
  k_fill<<<grid2(rows, cols), kThreads, 0, s>>>(a, rows, cols, ld, value);
  check_launch("fill");
}
void fill_f64(double* a, i64 rows, i64 cols, i64 ld, double value, cudaStream_t s) {
  if (rows * cols == 0) return;
  k_fill<<<grid2(rows, cols), kThreads, 0, s>>>(a, rows, cols, ld, value);
  check_launch("fill");
}
void convert_f32_f64(const float* src, i64 sld, double* dst, i64 dld, i64 rows, i64 cols, double scale, double shift, double diag,
                     cudaStream_t s) {
  if (rows * cols == 0) return;
  k_convert<<<grid2(rows, cols), kThreads, 0, s>>>(src, sld, dst, dld, rows, cols, scale, shift, diag);
  check_launch("convert");
}
void convert_f64_f32(const double* src, i64 sld, float* dst, i64 dld, i64 rows, i64 cols, double scale, double shift, double diag,
                     cudaStream_t s) {
  if (rows * cols == 0) return;
  k_convert<<<grid2(rows, cols), kThreads, 0, s>>>(src, sld, dst, dld, rows, cols, scale, shift, diag);
  check_launch("convert");
}
void split_tf32(const float* src, i64 rows, i64 cols, i64 ld, float* hi, float* lo, i64 out_ld, cudaStream_t s) {
  if (rows * cols == 0) return;
  k_split_tf32<<<grid2(rows, cols), kThreads, 0, s>>>(src, rows, cols, ld, hi, lo, out_ld);
  check_launch("split_tf32");
}
void scale_f64(double* a, i64 rows, i64 cols, i64 ld, double beta, cudaStream_t s) {
  if (rows * cols == 0) return;
  k_scale_f64<<<grid2(rows, cols), kThreads, 0, s>>>(a, rows, cols, ld, beta);
  check_launch("scale");
}
void axpby(float alpha, const float* x, i64 xld, float beta, float* y, i64 yld, i64 rows, i64 cols, cudaStream_t s) {
  if (rows * cols == 0) return;
  k_axpby<<<grid2(rows, cols), kThreads, 0, s>>>(alpha, x, xld, beta, y, yld, rows, cols);
  check_launch("axpby");
}
void scale_rows_cols(float* a, i64 rows, i64 cols, i64 ld, DVec r, DVec c, cudaStream_t s) {
  if (rows * cols == 0) return;
  k_scale_rows_cols<<<grid2(rows, cols), kThreads, 0, s>>>(a, rows, cols, ld, r, c);
  check_launch("scale_rows_cols");
}
void add_outer(float* a, i64 rows, i64 cols, i64 ld, double alpha, DVec u, DVec v, cudaStream_t s) {
  if (rows * cols == 0) return;
  k_add_outer<<<grid2(rows, cols), kThreads, 0, s>>>(a, rows, cols, ld, alpha, u, v);
  check_launch("add_outer");
}
void add_broadcast(float* a, i64 rows, i64 cols, i64 ld, DVec r, DVec c, double shift, cudaStream_t s) {
  if (rows * cols == 0) return;
  k_add_broadcast<<<grid2(rows, cols), kThreads, 0, s>>>(a, rows, cols, ld, r, c, shift);
  check_launch("add_broadcast");
}
void row_sums(const float* a, i64 rows, i64 cols, i64 ld, double* out, i64 ostep, double scale, cudaStream_t s) {
  if (rows == 0) return;
  k_row_sums<<<grid1(rows * 32), kThreads, 0, s>>>(a, rows, cols, ld, out, ostep, scale);
  check_launch("row_sums");
}
void col_sums(const float* a, i64 rows, i64 cols, i64 ld, double* out, i64 ostep, double scale, cudaStream_t s) {
  if (cols == 0) return;
  k_col_sums<<<grid1(cols), kThreads, 0, s>>>(a, rows, cols, ld, out, ostep, scale);
  check_launch("col_sums");
}
void symmetrize_f32(float* a, i64 n, i64 ld, cudaStream_t s) {
  if (n < 2) return;
  k_symmetrize<<<grid2(n, n), kThreads, 0, s>>>(a, n, ld);
  check_launch("symmetrize");
}
void symmetrize_f64(double* a, i64 n, i64 ld, cudaStream_t s) {
  if (n < 2) return;
  k_symmetrize<<<grid2(n, n), kThreads, 0, s>>>(a, n, ld);
  check_launch("symmetrize");
}

void shrink(const float* src, i64 rows, i64 cols, i64 sld, DVec lam, DVec alphas, i64 na, int kind, bool axis_cols, double* w, float* dst,
            i64 dld, cudaStream_t s) {
  const i64 r = axis_cols ? cols : rows;
  if (na * r > 0) {
    k_shrink_weights<<<grid2(na, r), kThreads, 0, s>>>(lam, alphas, na, r, kind, w);
    check_launch("shrink weights");
  }
  if (na * rows * cols == 0) return;
  k_shrink<<<grid2(na * rows, cols), kThreads, 0, s>>>(src, rows, cols, sld, w, r, axis_cols, dst, dld, na * rows);
  check_launch("shrink");
}
void shrink_targets(const float* src, i64 rows, i64 cols, i64 sld, DVec lam, DVec alpha, int kind, float* dst, i64 dld, cudaStream_t s) {
  if (rows * cols == 0) return;
  k_shrink_targets<<<grid2(rows, cols), kThreads, 0, s>>>(src, rows, cols, sld, lam, alpha, kind, dst, dld);
  check_launch("shrink_targets");
}
void fold_stats(const float* y, i64 ld, i64 r0, i64 r1, i64 t, DVec level, double* sum, double* sst, double rel_var, cudaStream_t s) {
  if (t == 0) return;
  k_fold_stats<<<grid1(t), kThreads, 0, s>>>(y, ld, r0, r1, t, level, sum, sst, rel_var);
  check_launch("fold_stats");
}
void score(const float* pred, i64 pld, const float* y, i64 yld, i64 m, i64 t, DVec offset, bool residual, bool pearson, DVec sum, DVec sst,
           double weight, double* acc, cudaStream_t s) {
  if (t == 0) return;
  k_score<<<grid1(t), kThreads, 0, s>>>(pred, pld, y, yld, m, t, offset, residual, pearson, sum, sst, weight, acc);
  check_launch("score");
}
void select_best(const double* scores, i64 ld, i64 na, i64 t, const double* alphas, const std::uint8_t* skip, std::int32_t* best_index,
                 i64 is, double* best_score, i64 bs, double* best_alpha, i64 as, cudaStream_t s) {
  if (t == 0) return;
  k_select_best<<<grid1(t), kThreads, 0, s>>>(scores, ld, na, t, alphas, skip, best_index, is, best_score, bs, best_alpha, as);
  check_launch("select_best");
}
void improve(const double* score, i64 s0, const std::int32_t* index, i64 i0, std::int32_t tag, double* best_score, i64 s1,
             std::int32_t* best_index, i64 i1, std::int32_t* best_tag, i64 g1, i64 t, cudaStream_t s) {
  if (t == 0) return;
  k_improve<<<grid1(t), kThreads, 0, s>>>(score, s0, index, i0, tag, best_score, s1, best_index, i1, best_tag, g1, t);
  check_launch("improve");
}
void first_nonfinite(const float* a, i64 rows, i64 cols, i64 ld, unsigned long long* pos, cudaStream_t s) {
  if (rows * cols == 0) return;
  k_first_nonfinite<<<grid2(rows, cols), kThreads, 0, s>>>(a, rows, cols, ld, pos);
  check_launch("first_nonfinite");
}

void sampler_init(const SamplerPtrs& b, const float* z, const float* noise, double a, double sc, double first_in_scale, cudaStream_t s) {
  if (b.images * b.n == 0) return;
  by_key_chunks(b, [&](i64 img0, i64 nimg, const KeyChunk& keys) {
    k_sampler_init<<<grid2(nimg, b.n), kThreads, 0, s>>>(b, img0, nimg, keys, z, noise, a, sc, first_in_scale);
    check_launch("sampler_init");
  });
}

void sampler_step(const CompiledStep& step, const SamplerPtrs& b, cudaStream_t s) {
  if (b.images * b.n == 0) return;
  const DevStep d = dev_step(step);
  by_key_chunks(b, [&](i64 img0, i64 nimg, const KeyChunk& keys) {
    k_sampler_step<<<grid2(nimg, b.n), kThreads, 0, s>>>(d, b, img0, nimg, keys);
    check_launch("sampler_step");
  });
}

void philox_fill(const NoiseKey& key, std::uint32_t stream, std::uint64_t first, float* out, i64 n, cudaStream_t s) {
  if (n == 0) return;
  k_philox_fill<<<grid1(n), kThreads, 0, s>>>(key, stream, first, out, n);
  check_launch("philox_fill");
}

}  // namespace cuda
}  // namespace brainlatent
