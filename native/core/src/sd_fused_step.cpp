#include "brainlatent/sd_fused_step.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "brainlatent/error.h"

namespace brainlatent {

StepProgram& StepProgram::assign(std::uint8_t dst, std::initializer_list<StepTerm> terms, bool clamp, double range) {
  if (ops >= kMaxStepOps) throw Error(ErrorCode::InvalidArgument, "step program: more than " + std::to_string(kMaxStepOps) + " assignments");
  if (terms.size() > static_cast<std::size_t>(kMaxStepTerms))
    throw Error(ErrorCode::InvalidArgument, "step program: more than " + std::to_string(kMaxStepTerms) + " terms");
  if (dst == kRegE || dst == kRegN || dst >= kRegCount) throw Error(ErrorCode::InvalidArgument, "step program: bad destination");
  StepAssign& a = op[ops++];
  a.dst = dst;
  a.terms = 0;
  for (const StepTerm& t : terms) {
    if (t.reg >= kRegCount) throw Error(ErrorCode::InvalidArgument, "step program: bad register");
    if (t.coeff == 0.0) continue;  // skipped: exact zeros cost nothing (and 0·inf never happens)
    a.term[a.terms++] = t;
  }
  a.clamp = clamp;
  a.clamp_range = range;
  return *this;
}

std::uint32_t StepProgram::reads() const {
  std::uint32_t written = 0, read = 0;
  for (int i = 0; i < ops; ++i) {
    for (int k = 0; k < op[i].terms; ++k)
      if (!(written & (1u << op[i].term[k].reg))) read |= 1u << op[i].term[k].reg;
    written |= 1u << op[i].dst;
  }
  if (noisy) read |= 1u << kRegN;
  return read | (1u << kRegX);  // X is always read (the next U-Net input)
}

std::uint32_t StepProgram::writes() const {
  std::uint32_t w = 0;
  for (int i = 0; i < ops; ++i) w |= 1u << op[i].dst;
  return w;
}

CompiledStep compile_step(const StepProgram& p, int groups, double guidance) {
  // Each register as a vector of coefficients over the inputs and the clamped intermediates.
  using Vec = std::array<double, kInMax>;
  std::array<Vec, kRegCount> reg{};
  auto unit = [](int i) {
    Vec v{};
    v[static_cast<std::size_t>(i)] = 1.0;
    return v;
  };
  reg[kRegX] = unit(kInX);
  if (groups == 2) {
    reg[kRegE][kInEpsU] = 1.0 - guidance;
    reg[kRegE][kInEpsC] = guidance;
  } else {
    reg[kRegE] = unit(kInEpsC);
  }
  reg[kRegN] = unit(kInNoise);
  for (int h = 0; h < kHistorySlots; ++h) reg[static_cast<std::size_t>(kRegH0 + h)] = unit(kInH0 + h);
  // (temporaries read before they are written hold 0)
  CompiledStep c;
  auto to_comb = [](const Vec& v, std::uint8_t dst) {
    LinearComb out;
    out.dst = dst;
    for (int i = 0; i < kInMax; ++i)
      if (v[static_cast<std::size_t>(i)] != 0.0) out.term[out.terms++] = {static_cast<std::uint8_t>(i), v[static_cast<std::size_t>(i)]};
    return out;
  };
  for (int i = 0; i < p.ops; ++i) {
    const StepAssign& a = p.op[i];
    Vec v{};
    for (int k = 0; k < a.terms; ++k)
      for (int q = 0; q < kInMax; ++q) v[static_cast<std::size_t>(q)] += a.term[k].coeff * reg[a.term[k].reg][static_cast<std::size_t>(q)];
    if (a.clamp) {
      const int m = c.clamps++;
      c.clamp[m] = to_comb(v, static_cast<std::uint8_t>(m));
      c.clamp[m].clamp_range = a.clamp_range;
      v = unit(kInClamp0 + m);
    }
    reg[a.dst] = v;
  }
  const std::uint32_t writes = p.writes();
  for (int h = 0; h < kHistorySlots; ++h)
    if (writes & (1u << (kRegH0 + h))) c.out[c.outs++] = to_comb(reg[static_cast<std::size_t>(kRegH0 + h)], static_cast<std::uint8_t>(kRegH0 + h));
  c.out[c.outs++] = to_comb(reg[kRegX], kRegX);
  // The noise is drawn when the program says so even if its coefficient vanished (the stream is
  // part of the step's contract); the inputs the stored registers read.
  c.noisy = p.noisy;
  c.noise_stream = p.noise_stream;
  c.next_in_scale = p.next_in_scale;
  for (int o = 0; o < c.outs; ++o)
    for (int k = 0; k < c.out[o].terms; ++k) c.inputs |= 1u << c.out[o].term[k].src;
  for (int m = 0; m < c.clamps; ++m)
    for (int k = 0; k < c.clamp[m].terms; ++k) c.inputs |= 1u << c.clamp[m].term[k].src;
  c.inputs &= (1u << kInCount) - 1;
  if (groups != 2 && (c.inputs & (1u << kInEpsU))) throw Error(ErrorCode::InvalidArgument, "compile_step: ε_u without guidance");
  return c;
}

namespace {

constexpr std::int64_t kBlock = 256;

// The linear path computes in float32, as diffusers' own step does, from coefficients composed in
// float64 and rounded once; the test against the float64 reference bounds the difference. Float32
// keeps eight lanes per AVX2 vector (the float64 form was 1.5–3× slower than the hand-written
// per-scheduler loops this replaced).

// out[j] = Σ_k c[k]·src[k][j] for K sources; the sources never alias out (a block buffer).
template <int K>
__attribute__((always_inline)) inline void comb_block(float* __restrict out, const float* const* src, const float* c, std::int64_t L) {
  const float* s[K];
  float k[K];
  for (int i = 0; i < K; ++i) {
    s[i] = src[i];
    k[i] = c[i];
  }
#pragma GCC ivdep
  for (std::int64_t j = 0; j < L; ++j) {
    float a = k[0] * s[0][j];
    for (int i = 1; i < K; ++i) a += k[i] * s[i][j];
    out[j] = a;
  }
}

// Up to two stored registers in one pass, in place: every source of element j is read before
// element j of any output is written, so outputs may be sources (X, a history slot). out[O−1] is X;
// the next U-Net input (scale · the stored x) goes to one or two groups. c is O × K.
template <int K, int O, bool TWO>
__attribute__((always_inline)) inline void fused_block(const float* const* src, const float* c, float* const* out, float* __restrict in0,
                                                       float* __restrict in1, float scale, std::int64_t L) {
  const float* s[K];
  float k[O][K];
  float* d[O];
  for (int i = 0; i < K; ++i) s[i] = src[i];
  for (int o = 0; o < O; ++o) {
    d[o] = out[o];
    for (int i = 0; i < K; ++i) k[o][i] = c[o * K + i];
  }
#pragma GCC ivdep
  for (std::int64_t j = 0; j < L; ++j) {
    float v[K];
    for (int i = 0; i < K; ++i) v[i] = s[i][j];
    float r[O];
    for (int o = 0; o < O; ++o) {
      float a = k[o][0] * v[0];
      for (int i = 1; i < K; ++i) a += k[o][i] * v[i];
      r[o] = a;
    }
    for (int o = 0; o < O; ++o) d[o][j] = r[o];
    const float in = scale * r[O - 1];
    in0[j] = in;
    if (TWO) in1[j] = in;
  }
}

template <int O, bool TWO>
__attribute__((always_inline)) inline void fused_any(int K, const float* const* src, const float* c, float* const* out, float* in0, float* in1,
                                                     float scale, std::int64_t L) {
  switch (K) {
    case 1: fused_block<1, O, TWO>(src, c, out, in0, in1, scale, L); break;
    case 2: fused_block<2, O, TWO>(src, c, out, in0, in1, scale, L); break;
    case 3: fused_block<3, O, TWO>(src, c, out, in0, in1, scale, L); break;
    case 4: fused_block<4, O, TWO>(src, c, out, in0, in1, scale, L); break;
    case 5: fused_block<5, O, TWO>(src, c, out, in0, in1, scale, L); break;
    case 6: fused_block<6, O, TWO>(src, c, out, in0, in1, scale, L); break;
    case 7: fused_block<7, O, TWO>(src, c, out, in0, in1, scale, L); break;
    case 8: fused_block<8, O, TWO>(src, c, out, in0, in1, scale, L); break;
    case 9: fused_block<9, O, TWO>(src, c, out, in0, in1, scale, L); break;
    default: fused_block<10, O, TWO>(src, c, out, in0, in1, scale, L); break;
  }
}

__attribute__((always_inline)) inline void comb_any(int K, float* out, const float* const* src, const float* c, std::int64_t L) {
  switch (K) {
    case 1: comb_block<1>(out, src, c, L); break;
    case 2: comb_block<2>(out, src, c, L); break;
    case 3: comb_block<3>(out, src, c, L); break;
    case 4: comb_block<4>(out, src, c, L); break;
    case 5: comb_block<5>(out, src, c, L); break;
    case 6: comb_block<6>(out, src, c, L); break;
    case 7: comb_block<7>(out, src, c, L); break;
    case 8: comb_block<8>(out, src, c, L); break;
    case 9: comb_block<9>(out, src, c, L); break;
    default: comb_block<10>(out, src, c, L); break;
  }
}

// The addresses of one image's inputs (block j0 is added by the caller).
struct ImageInputs {
  const float* in[kInCount] = {};
};

// One image, no clamps. Most steps store one or two registers (X, and x̂0 or ε for a multistep
// method): those run as one in-place pass over the union of their sources. Steps that store more
// (the history shifts of LMS, PNDM, UniPC) compute the history into block buffers first (they may
// read the old history and X), then X with the U-Net input, then store the history. The AVX2 clone
// is chosen at load time where the CPU has it (no FMA: the same results as the default build).
__attribute__((target_clones("avx2", "default"))) void step_image_linear(const CompiledStep& c, const ImageInputs& im,
                                                                         float* const* hist_dst, float* x, float* in0, float* in1,
                                                                         std::int64_t n, const float* noise_src, bool philox,
                                                                         const NoiseKey& key) {
  alignas(64) float hbuf[kHistorySlots][kBlock];
  alignas(64) float nbuf[kBlock];
  alignas(64) float xbuf[kBlock];
  const float scale = static_cast<float>(c.next_in_scale);
  const int last = c.outs - 1;  // X
  // The fused form: the union of the sources, a dense O × K matrix of float coefficients.
  const bool fused = c.outs <= 2;
  int K = 0;
  std::uint8_t uni[kInCount];
  float dense[2 * kInCount] = {};
  if (fused) {
    for (int i = 0; i < kInCount; ++i) {
      bool used = false;
      for (int o = 0; o < c.outs; ++o)
        for (int t = 0; t < c.out[o].terms; ++t) used = used || c.out[o].term[t].src == i;
      if (used) uni[K++] = static_cast<std::uint8_t>(i);
    }
    if (K == 0) uni[K++] = kInX;  // all-zero combinations still need a source to multiply
    for (int o = 0; o < c.outs; ++o)
      for (int t = 0; t < c.out[o].terms; ++t)
        for (int i = 0; i < K; ++i)
          if (uni[i] == c.out[o].term[t].src) dense[o * K + i] += static_cast<float>(c.out[o].term[t].coeff);
  }
  const float* src[kInCount];
  float coef[kInCount];
  // Blocks bound the buffers (noise, history); the fused pass without noise needs none and runs
  // over the whole image at once (a block's set-up costs as much as a few hundred elements).
  const std::int64_t block = fused && !(c.inputs & (1u << kInNoise)) ? std::max<std::int64_t>(n, 1) : kBlock;
  for (std::int64_t j0 = 0; j0 < n; j0 += block) {
    const std::int64_t L = std::min(block, n - j0);
    const float* block_in[kInCount];
    for (int i = 0; i < kInCount; ++i) block_in[i] = im.in[i] ? im.in[i] + j0 : nullptr;
    if (c.inputs & (1u << kInNoise)) {
      if (philox) {
        philox_normal_fill(key, c.noise_stream, static_cast<std::uint64_t>(j0), nbuf, static_cast<std::size_t>(L));
        block_in[kInNoise] = nbuf;
      } else {
        block_in[kInNoise] = noise_src + j0;
      }
    }
    if (fused) {
      for (int i = 0; i < K; ++i) src[i] = block_in[uni[i]];
      float* out[2];
      for (int o = 0; o < last; ++o) out[o] = hist_dst[c.out[o].dst - kRegH0] + j0;
      out[last] = x + j0;
      if (c.outs == 1) {
        if (in1) fused_any<1, true>(K, src, dense, out, in0 + j0, in1 + j0, scale, L);
        else fused_any<1, false>(K, src, dense, out, in0 + j0, nullptr, scale, L);
      } else {
        if (in1) fused_any<2, true>(K, src, dense, out, in0 + j0, in1 + j0, scale, L);
        else fused_any<2, false>(K, src, dense, out, in0 + j0, nullptr, scale, L);
      }
      continue;
    }
    for (int o = 0; o <= last; ++o) {
      const LinearComb& t = c.out[o];
      for (int k = 0; k < t.terms; ++k) {
        src[k] = block_in[t.term[k].src];
        coef[k] = static_cast<float>(t.term[k].coeff);
      }
      float* out = o == last ? xbuf : hbuf[t.dst - kRegH0];
      if (t.terms == 0)
        std::fill(out, out + L, 0.0f);
      else
        comb_any(t.terms, out, src, coef, L);
    }
    for (std::int64_t j = 0; j < L; ++j) {
      const float xv = xbuf[j];
      x[j0 + j] = xv;
      in0[j0 + j] = scale * xv;
      if (in1) in1[j0 + j] = scale * xv;
    }
    for (int o = 0; o < last; ++o) {
      const int h = c.out[o].dst - kRegH0;
      std::copy(hbuf[h], hbuf[h] + L, hist_dst[h] + j0);
    }
  }
}

// One image with clamped intermediates (clip_sample): every input widened per block, the clamps
// and outputs evaluated term by term in float64. Rare, so plainly written.
void step_image_clamped(const CompiledStep& c, const ImageInputs& im, float* const* hist_dst, float* x, float* in0, float* in1,
                        std::int64_t n, const float* noise_src, bool philox, const NoiseKey& key) {
  std::vector<double> v(static_cast<std::size_t>(kInMax * kBlock));
  std::vector<float> nbuf(static_cast<std::size_t>(kBlock)), obuf(static_cast<std::size_t>((1 + kHistorySlots) * kBlock));
  auto reg = [&](int i) { return v.data() + static_cast<std::ptrdiff_t>(i) * kBlock; };
  auto eval = [&](const LinearComb& t, double* d, std::int64_t L) {
    std::fill(d, d + L, 0.0);
    for (int k = 0; k < t.terms; ++k) {
      const double* s = reg(t.term[k].src);
      const double cf = t.term[k].coeff;
      for (std::int64_t j = 0; j < L; ++j) d[j] += cf * s[j];
    }
  };
  for (std::int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const std::int64_t L = std::min(kBlock, n - j0);
    for (int i = 0; i < kInCount; ++i) {
      if (!(c.inputs & (1u << i))) continue;
      const float* s = i == kInNoise ? (philox ? nbuf.data() : noise_src + j0) : im.in[i] + j0;
      if (i == kInNoise && philox) philox_normal_fill(key, c.noise_stream, static_cast<std::uint64_t>(j0), nbuf.data(), static_cast<std::size_t>(L));
      double* d = reg(i);
      for (std::int64_t j = 0; j < L; ++j) d[j] = s[j];
    }
    for (int m = 0; m < c.clamps; ++m) {
      double* d = reg(kInClamp0 + m);
      eval(c.clamp[m], d, L);
      const double r = c.clamp[m].clamp_range;
      for (std::int64_t j = 0; j < L; ++j) d[j] = std::min(r, std::max(-r, d[j]));
    }
    std::vector<double> acc(static_cast<std::size_t>(L));
    for (int o = 0; o < c.outs; ++o) {
      eval(c.out[o], acc.data(), L);
      float* ob = obuf.data() + static_cast<std::ptrdiff_t>(o) * kBlock;
      for (std::int64_t j = 0; j < L; ++j) ob[j] = static_cast<float>(acc[static_cast<std::size_t>(j)]);
    }
    for (int o = 0; o < c.outs; ++o) {
      const float* ob = obuf.data() + static_cast<std::ptrdiff_t>(o) * kBlock;
      if (c.out[o].dst != kRegX) {
        std::copy(ob, ob + L, hist_dst[c.out[o].dst - kRegH0] + j0);
        continue;
      }
      for (std::int64_t j = 0; j < L; ++j) {
        x[j0 + j] = ob[j];
        const float in = static_cast<float>(c.next_in_scale) * ob[j];
        in0[j0 + j] = in;
        if (in1) in1[j0 + j] = in;
      }
    }
  }
}

}  // namespace

void check_step_buffers(const CompiledStep& c, const bool (&has_history)[kHistorySlots], int groups, bool step_noise, bool keys) {
  for (int o = 0; o < c.outs; ++o)
    if (c.out[o].dst != kRegX && !has_history[c.out[o].dst - kRegH0])
      throw Error(ErrorCode::InvalidArgument, "fused step: the program writes history slot H" + std::to_string(c.out[o].dst - kRegH0) +
                                                  " but the batch has no buffer for it");
  for (int h = 0; h < kHistorySlots; ++h)
    if ((c.inputs & (1u << (kInH0 + h))) && !has_history[h])
      throw Error(ErrorCode::InvalidArgument, "fused step: the program reads history slot H" + std::to_string(h) +
                                                  " but the batch has no buffer for it");
  if ((c.inputs & (1u << kInEpsU)) && groups != 2) throw Error(ErrorCode::InvalidArgument, "fused step: compiled for guidance, run without");
  if ((c.inputs & (1u << kInNoise)) && !step_noise && !keys) throw Error(ErrorCode::InvalidArgument, "fused step: noise keys missing");
}

void fused_step_cpu(const CompiledStep& c, const FusedBatch& b) {
  const std::int64_t n = b.per_image, B = b.images;
  const bool cfg = b.groups == 2;
  bool history[kHistorySlots];
  for (int h = 0; h < kHistorySlots; ++h) history[h] = b.history[h] != nullptr;
  check_step_buffers(c, history, b.groups, b.step_noise != nullptr, b.keys != nullptr);
  for (std::int64_t img = 0; img < B; ++img) {
    ImageInputs im;
    im.in[kInX] = b.x + img * n;
    im.in[kInEpsU] = cfg ? b.eps + img * n : nullptr;
    im.in[kInEpsC] = b.eps + ((b.groups - 1) * B + img) * n;
    float* hist_dst[kHistorySlots];
    for (int h = 0; h < kHistorySlots; ++h) {
      hist_dst[h] = b.history[h] ? b.history[h] + img * n : nullptr;
      im.in[kInH0 + h] = hist_dst[h];
    }
    const float* noise_src = b.step_noise ? b.step_noise + img * n : nullptr;
    const bool philox = !b.step_noise;
    float* x = b.x + img * n;
    float* in0 = b.unet_in + img * n;
    float* in1 = cfg ? b.unet_in + (B + img) * n : nullptr;
    const NoiseKey key = b.keys ? b.keys[img] : NoiseKey{};
    if (c.clamps == 0)
      step_image_linear(c, im, hist_dst, x, in0, in1, n, noise_src, philox, key);
    else
      step_image_clamped(c, im, hist_dst, x, in0, in1, n, noise_src, philox, key);
  }
}

void fused_step_cpu(const StepProgram& p, const FusedBatch& b) { fused_step_cpu(compile_step(p, b.groups, b.guidance), b); }

void init_latents_cpu(const FusedBatch& b, const float* z, const float* noise, double a, double s, double first_in_scale) {
  const std::int64_t n = b.per_image, B = b.images;
  std::vector<float> buf;
  for (std::int64_t img = 0; img < B; ++img) {
    const float* nz = noise ? noise + img * n : nullptr;
    if (!nz) {
      buf.resize(static_cast<std::size_t>(n));
      philox_normal_fill(b.keys[img], 0, 0, buf.data(), buf.size());
      nz = buf.data();
    }
    float* x = b.x + img * n;
    const float* zi = z + img * n;
    for (std::int64_t j = 0; j < n; ++j) {
      const float v = static_cast<float>(a * static_cast<double>(zi[j]) + s * static_cast<double>(nz[j]));
      x[j] = v;
      const float in = static_cast<float>(first_in_scale * static_cast<double>(v));
      for (int g = 0; g < b.groups; ++g) b.unet_in[(g * B + img) * n + j] = in;
    }
  }
}

}  // namespace brainlatent
