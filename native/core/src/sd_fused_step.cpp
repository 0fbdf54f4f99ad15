#include "brainlatent/sd_fused_step.h"

#include <algorithm>
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

namespace {

constexpr std::int64_t kBlock = 256;

inline float* history_of(const FusedBatch& b, int reg) { return b.history[reg - kRegH0]; }

// The block loops, on distinct registers (restrict lets them vectorise).
inline void scale_into(double* __restrict d, const double* __restrict s, double c, std::int64_t L) {
  for (std::int64_t j = 0; j < L; ++j) d[j] = c * s[j];
}
inline void add_scaled(double* __restrict d, const double* __restrict s, double c, std::int64_t L) {
  for (std::int64_t j = 0; j < L; ++j) d[j] += c * s[j];
}
inline void widen(double* __restrict d, const float* __restrict s, std::int64_t L) {
  for (std::int64_t j = 0; j < L; ++j) d[j] = s[j];
}

}  // namespace

void fused_step_cpu(const StepProgram& p, const FusedBatch& b) {
  const std::int64_t n = b.per_image, B = b.images;
  const bool cfg = b.groups == 2;
  const std::uint32_t reads = p.reads(), writes = p.writes();
  for (int r = kRegH0; r < kRegH0 + kHistorySlots; ++r)
    if (((reads | writes) & (1u << r)) && !history_of(b, r))
      throw Error(ErrorCode::InvalidArgument, "fused step: the program uses history slot H" + std::to_string(r - kRegH0) +
                                                  " but the batch has no buffer for it");
  // Per-thread scratch: one block of every register (float64) plus a block of noise.
  thread_local std::vector<double> regs;
  thread_local std::vector<float> noise;
  regs.resize(static_cast<std::size_t>(kRegCount * kBlock));
  noise.resize(static_cast<std::size_t>(kBlock));
  double* const base = regs.data();
  auto reg = [base](int r) { return base + r * kBlock; };
  double acc[kBlock];
  const double g = b.guidance;
  for (std::int64_t img = 0; img < B; ++img) {
    float* x = b.x + img * n;
    const float* e_u = b.eps + img * n;
    const float* e_c = b.eps + ((b.groups - 1) * B + img) * n;
    float* in0 = b.unet_in + img * n;
    float* in1 = cfg ? b.unet_in + (B + img) * n : nullptr;
    for (std::int64_t j0 = 0; j0 < n; j0 += kBlock) {
      const std::int64_t L = std::min(kBlock, n - j0);
      double* X = reg(kRegX);
      widen(X, x + j0, L);
      if (reads & (1u << kRegE)) {
        double* E = reg(kRegE);
        if (cfg)
          for (std::int64_t j = 0; j < L; ++j) {
            const double u = e_u[j0 + j];
            E[j] = u + g * (static_cast<double>(e_c[j0 + j]) - u);
          }
        else
          for (std::int64_t j = 0; j < L; ++j) E[j] = e_c[j0 + j];
      }
      if (reads & (1u << kRegN)) {
        double* N = reg(kRegN);
        const float* src = b.step_noise ? b.step_noise + img * n + j0 : noise.data();
        if (!b.step_noise)
          philox_normal_fill(b.keys[img], p.noise_stream, static_cast<std::uint64_t>(j0), noise.data(), static_cast<std::size_t>(L));
        for (std::int64_t j = 0; j < L; ++j) N[j] = src[j];
      }
      for (int r = kRegH0; r < kRegH0 + kHistorySlots; ++r) {
        if (!(reads & (1u << r))) continue;
        widen(reg(r), history_of(b, r) + img * n + j0, L);
      }
      for (int i = 0; i < p.ops; ++i) {
        const StepAssign& a = p.op[i];
        // Accumulate straight into the destination unless it is also a source of this assignment.
        bool self = false;
        for (int k = 0; k < a.terms; ++k) self = self || a.term[k].reg == a.dst;
        double* d = self ? acc : reg(a.dst);
        if (a.terms == 0) {
          for (std::int64_t j = 0; j < L; ++j) d[j] = 0.0;
        } else {
          scale_into(d, reg(a.term[0].reg), a.term[0].coeff, L);
          for (int k = 1; k < a.terms; ++k) add_scaled(d, reg(a.term[k].reg), a.term[k].coeff, L);
        }
        if (self) {
          double* out = reg(a.dst);
          for (std::int64_t j = 0; j < L; ++j) out[j] = acc[j];
          d = out;
        }
        if (a.clamp) {
          const double lo = -a.clamp_range, hi = a.clamp_range;
          for (std::int64_t j = 0; j < L; ++j) d[j] = std::min(hi, std::max(lo, d[j]));
        }
      }
      for (int r = kRegH0; r < kRegH0 + kHistorySlots; ++r) {
        if (!(writes & (1u << r))) continue;
        float* h = history_of(b, r) + img * n + j0;
        const double* H = reg(r);
        for (std::int64_t j = 0; j < L; ++j) h[j] = static_cast<float>(H[j]);
      }
      const double s = p.next_in_scale;
      for (std::int64_t j = 0; j < L; ++j) {
        const float xv = static_cast<float>(X[j]);
        x[j0 + j] = xv;
        // the U-Net sees the stored (float32) sample, scaled
        const float in = static_cast<float>(s * static_cast<double>(xv));
        in0[j0 + j] = in;
        if (cfg) in1[j0 + j] = in;
      }
    }
  }
}

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
