// The fused per-step update over a batch's latents: guidance combine, scheduler update with its
// multistep state, per-step noise and the next U-Net input, in one pass over memory.
//
// Every scheduler's step is a short *step program* (scheduler.h builds one per U-Net call): a few
// assignments, each a float64 linear combination of per-element registers, optionally clamped
// (clip_sample). The registers of element j of image b are
//   X   the sample x (persistent)
//   E   the guided noise prediction: ε_u + g·(ε_c − ε_u) with guidance, else ε_c
//   N   this step's Gaussian noise: Philox (seed_b, index_b, noise_stream, j), or the caller's
//   H0…H5  persistent state (previous ε or x̂0, a saved sample): scheduler history
//   T0…T3  temporaries of this step
// Assignments run in order (each reads the registers as left by the ones before); then X and the
// written H registers are stored (float32) and the next U-Net input is next_in_scale · X for every
// guidance group. The program's algebra is float64: compile_step() composes it, per step, into
// one linear combination per stored register; the per-element arithmetic is float32, as
// diffusers' own step is. Programs and compiled steps are plain data, so they run unchanged on
// another device: a CUDA kernel evaluates a compiled step per element, 1:1.
#pragma once
#include <cstdint>

#include "brainlatent/philox.h"

namespace brainlatent {

enum StepReg : std::uint8_t {
  kRegX = 0, kRegE = 1, kRegN = 2,
  kRegH0 = 3, kRegH1, kRegH2, kRegH3, kRegH4, kRegH5,
  kRegT0 = 9, kRegT1, kRegT2, kRegT3,
  kRegCount = 13
};
constexpr int kHistorySlots = 6;
constexpr int kMaxStepTerms = 6;
constexpr int kMaxStepOps = 8;

struct StepTerm {
  std::uint8_t reg = kRegX;
  double coeff = 0;
};

struct StepAssign {
  std::uint8_t dst = kRegX;
  std::uint8_t terms = 0;
  StepTerm term[kMaxStepTerms];
  bool clamp = false;     // dst = clamp(Σ, −clamp_range, clamp_range)
  double clamp_range = 1;
};

struct StepProgram {
  std::uint8_t ops = 0;
  StepAssign op[kMaxStepOps];
  double next_in_scale = 1;       // the next U-Net input is next_in_scale · X
  bool noisy = false;             // N is read (Philox stream noise_stream, or the given step noise)
  std::uint32_t noise_stream = 0;

  // Builders: `assign(dst, {{reg, c}, …})`. Throws InvalidArgument past the fixed capacity.
  StepProgram& assign(std::uint8_t dst, std::initializer_list<StepTerm> terms, bool clamp = false, double range = 1);
  // Registers read before this program writes them, and registers written (bit r = register r).
  std::uint32_t reads() const;
  std::uint32_t writes() const;
};

struct FusedBatch {
  std::int64_t images = 0;      // B
  std::int64_t per_image = 0;   // n = channels·h·w
  int groups = 1;               // 2 with classifier-free guidance ([uncond rows; cond rows])
  double guidance = 1;          // g
  float* x = nullptr;           // [B, n]
  float* history[kHistorySlots] = {};  // [B, n] each, those the programs use
  const float* eps = nullptr;   // [G·B, n]
  float* unet_in = nullptr;     // [G·B, n]
  const NoiseKey* keys = nullptr;  // [B]
  const float* step_noise = nullptr;  // [B, n]: this step's noise instead of Philox (optional)
};

// A step program compiled for one guidance setting: every register the step stores (X and the
// history slots it writes) as one linear combination of the step's inputs — the registers as the
// step finds them, with E split into its two guidance halves — plus, only where the program clamps
// (clip_sample), the clamped intermediates it passes through. Composition is exact algebra done
// once in float64 (a handful of operations per step, not per element), so the per-element work is
// one short dot product per stored register instead of one pass per assignment.
enum StepInput : std::uint8_t {
  kInX = 0, kInEpsU = 1, kInEpsC = 2, kInNoise = 3, kInH0 = 4,  // kInH0 + k: history slot k
  kInCount = kInH0 + kHistorySlots,
  kInClamp0 = kInCount,  // kInClamp0 + m: the m-th clamped intermediate
  kInMax = kInClamp0 + kMaxStepOps
};
struct LinearTerm {
  std::uint8_t src = kInX;  // a StepInput (or kInClamp0 + m)
  double coeff = 0;
};
struct LinearComb {
  std::uint8_t dst = kRegX;  // a StepReg (X or H0…H5); for a clamp, its index m
  std::uint8_t terms = 0;
  LinearTerm term[kInMax];
  double clamp_range = 1;    // clamps only: the value is clamp(Σ, −range, range)
};
struct CompiledStep {
  std::uint8_t clamps = 0;       // clamped intermediates, in order (each may read earlier ones)
  LinearComb clamp[kMaxStepOps];
  std::uint8_t outs = 0;         // stored registers: the written history slots, then X last
  LinearComb out[1 + kHistorySlots];
  std::uint32_t inputs = 0;      // bit i: input i is read
  double next_in_scale = 1;
  bool noisy = false;
  std::uint32_t noise_stream = 0;
};
// groups 2 (classifier-free guidance): E = ε_u + g·(ε_c − ε_u); groups 1: E = ε_c.
CompiledStep compile_step(const StepProgram& program, int groups, double guidance);

// The buffers a compiled step needs are there: every history slot it reads or writes
// (has_history[k]), guidance when it was compiled for it (groups 2), and noise keys when it draws
// Philox noise and no step noise is given. Throws InvalidArgument naming what is missing.
void check_step_buffers(const CompiledStep& step, const bool (&has_history)[kHistorySlots], int groups, bool step_noise, bool keys);

// CPU implementation: one thread (the U-Net call owns the cores; this pass is memory-bound). A step
// that stores one or two registers (every scheduler but the history shifts of LMS, PNDM and UniPC)
// is one in-place pass over each image; the others go through blocks kept in L1. Clamped steps
// (clip_sample) evaluate term by term in float64. The AVX2 build of the loops is picked at run
// time where the CPU has it (without FMA, so the results are the same on every CPU).
void fused_step_cpu(const CompiledStep& step, const FusedBatch& b);
// Compiles and runs (tests and one-off steps; the sampler loop compiles its plan once).
void fused_step_cpu(const StepProgram& program, const FusedBatch& b);

// x = a·z + s·noise for each image and writes the first U-Net input (scale · x into all
// groups). noise is [B, n] or null, in which case Philox stream 0 is used.
void init_latents_cpu(const FusedBatch& b, const float* z, const float* noise, double a, double s, double first_in_scale);

}  // namespace brainlatent
