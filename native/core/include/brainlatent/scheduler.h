// Diffusion schedulers, exactly as diffusers runs them in its img2img pipeline (each confirmed in
// diffusers' source): DDIMScheduler, PNDMScheduler (skip_prk_steps), DDPMScheduler,
// LMSDiscreteScheduler (order 4), EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
// HeunDiscreteScheduler, DPMSolverMultistepScheduler (dpmsolver++ and sde-dpmsolver++, order 2,
// midpoint) and UniPCMultistepScheduler (bh2, order 2, with its corrector). For each: the training
// schedule, the inference timesteps of each spacing (with the class's own default spacing), Karras
// sigmas where the class has them, the img2img strength rule (timesteps[t_start·order:], the begin
// index) and every U-Net call reduced to a small step program (sd_fused_step.h) whose state —
// multistep history, saved samples — lives in the fused step's buffers. All scalar arithmetic is
// float64; values diffusers stores as float32 tensors (sigmas, fractional timesteps) are rounded
// to float32 first, as it does.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "brainlatent/sd_fused_step.h"

namespace brainlatent {

enum class SchedulerKind { Ddim, Pndm, Ddpm, Lms, Euler, EulerAncestral, Heun, DpmSolverPP2M, DpmSolverPP2MSde, UniPC };
enum class TimestepSpacing { Leading, Trailing, Linspace };
// How img2img picks the noise level: diffusers' pipelines noise the latent at the first
// timestep that runs; CompVis' scripts (Takagi & Nishimoto) one DDIM step above it.
enum class Img2ImgRule { Diffusers, CompVis };

// "ddim" | "pndm" | "ddpm" | "lms" | "euler" | "euler-ancestral" | "heun" | "dpmpp2m" | "dpmpp2m-sde" | "unipc"
SchedulerKind parse_scheduler_kind(const std::string& name);
TimestepSpacing parse_timestep_spacing(const std::string& name);
Img2ImgRule parse_img2img_rule(const std::string& name);
const char* scheduler_kind_name(SchedulerKind kind);
const char* timestep_spacing_name(TimestepSpacing spacing);
// The diffusers class of a scheduler, and whether it has use_karras_sigmas.
const char* scheduler_class_name(SchedulerKind kind);
bool scheduler_has_karras(SchedulerKind kind);
// How many U-Net calls a scheduler makes per timestep of its list (HeunDiscreteScheduler.order = 2).
int scheduler_order(SchedulerKind kind);

// scheduler/scheduler_config.json as given: a field left empty takes the default of the
// scheduler class that runs (diffusers' from_config does the same: beta_start 0.0001, "linear",
// steps_offset 0, and DDIM's set_alpha_to_one true and clip_sample true, …).
struct ScheduleConfig {
  std::optional<int> num_train_timesteps;
  std::optional<double> beta_start, beta_end;
  std::optional<std::string> beta_schedule;    // "linear" | "scaled_linear" | "squaredcos_cap_v2"
  std::optional<bool> set_alpha_to_one;        // DDIM, PNDM
  std::optional<int> steps_offset;
  std::optional<TimestepSpacing> spacing;
  std::optional<std::string> prediction_type;  // "epsilon" only
  std::optional<bool> clip_sample;             // DDIM, DDPM, Heun
  std::optional<double> clip_sample_range;
  std::optional<bool> use_karras_sigmas;
  std::optional<double> sigma_min, sigma_max;  // Karras range (all but LMS, as diffusers), else the schedule's ends
  std::optional<std::string> variance_type;    // DDPM: "fixed_small" | "fixed_small_log" | "fixed_large"
  std::string source = "scheduler config";     // named in errors (the file's path)
};

// The config with the class defaults of `kind` filled in.
struct ResolvedSchedule {
  int num_train_timesteps = 1000;
  double beta_start = 0.0001, beta_end = 0.02;
  std::string beta_schedule = "linear";
  bool set_alpha_to_one = false;
  int steps_offset = 0;
  TimestepSpacing spacing = TimestepSpacing::Leading;
  bool clip_sample = false;
  double clip_sample_range = 1.0;
  bool karras = false;
  std::optional<double> sigma_min, sigma_max;
  std::string variance_type = "fixed_small";
  std::string source;
};
ResolvedSchedule resolve_schedule(const ScheduleConfig& config, SchedulerKind kind);

// SD 1.5's scheduler_config.json (what a model folder without one gets).
ScheduleConfig sd15_schedule();

// ᾱ_t for t = 0 .. num_train_timesteps-1 (float64; diffusers' float32 values differ by <= 2e-7).
// Throws InvalidArgument naming config.source and the field when a beta falls outside (0, 1)
// (so ᾱ would not be strictly decreasing in (0, 1)).
std::vector<double> alphas_cumprod(const ResolvedSchedule& config);

// The scheduler's full timestep list for `steps` steps (before strength): N values for most, N+1
// for PNDM with skip_prk_steps (the second repeated), 2N−1 for Heun; fractional where diffusers'
// are (Euler, Euler ancestral, LMS, Heun under linspace or Karras).
std::vector<double> inference_timesteps(const ResolvedSchedule& config, SchedulerKind kind, int steps);

struct PlannedStep {
  int step_index = 0;         // index in the full timestep list (diffusers' step_index)
  double timestep = 0;        // what the U-Net receives (an int64 U-Net gets it truncated)
  double alpha_cumprod = 0;   // ᾱ of this call: the table's at its timestep (ᾱ-indexed), else 1/(1+σ²) of its float32 σ
  double sigma = 0;           // the scheduler's σ for this call (√((1-ᾱ)/ᾱ) for the ᾱ-indexed ones)
  double model_in_scale = 1;  // the U-Net sees model_in_scale · x
  StepProgram program;        // the update after this call
};

// Everything the fused loop needs, computed once per job.
struct SamplerPlan {
  SchedulerKind kind = SchedulerKind::Ddim;
  int num_inference_steps = 0;
  double strength = 1;
  double eta = 0;
  double max_eta = 0;              // the largest eta the steps that run allow (DDIM: > 1, ∞ if none bounds it; others 0)
  bool karras = false;
  TimestepSpacing spacing = TimestepSpacing::Leading;
  int t_start = 0;                 // diffusers' t_start (the pipeline's img2img offset)
  int begin_index = 0;             // t_start · order: the first step_index that runs
  std::vector<double> timesteps;   // the full list
  double noise_timestep = 0;       // timestep at which the input latent is noised
  double noise_alpha_cumprod = 0;  // ᾱ there (as PlannedStep::alpha_cumprod: the first run's, under diffusers' rule)
  double init_x_scale = 1;         // x_T = init_x_scale · z + init_noise_scale · n
  double init_noise_scale = 0;
  int history = 0;                 // state buffers the step programs use (H0..)
  bool stochastic = false;         // some step draws noise
  std::vector<PlannedStep> steps;  // the U-Net calls that run, in order
};

// Throws InvalidArgument for steps < 1, strength outside (0, 1], eta < 0 (or > 0 for a scheduler
// other than ddim, or above max_eta for ddim), Karras for a scheduler without it, an invalid schedule, or a strength so small
// that no step would run.
SamplerPlan make_sampler_plan(const ScheduleConfig& config, SchedulerKind kind, int steps, double strength,
                              double eta = 0.0, Img2ImgRule rule = Img2ImgRule::Diffusers);

}  // namespace brainlatent
