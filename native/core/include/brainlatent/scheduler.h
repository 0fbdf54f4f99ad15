// Diffusion schedules and samplers, matching diffusers' formulas (DDIMScheduler,
// EulerDiscreteScheduler, DPMSolverMultistepScheduler with dpmsolver++ / order 2 / midpoint /
// final_sigmas_type "zero"): the training schedule, the inference timesteps for "leading",
// "trailing" and "linspace" spacing, the img2img strength rule, and every step reduced to the
// scalar coefficients of one fused update (sd_fused_step.h). All scalar arithmetic is float64.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "brainlatent/sd_fused_step.h"

namespace brainlatent {

enum class SchedulerKind { Ddim, Euler, DpmSolverPP2M };
enum class TimestepSpacing { Leading, Trailing, Linspace };
// How img2img picks the noise level: diffusers' pipelines noise the latent at the first
// timestep that runs; CompVis' scripts (Takagi & Nishimoto) one DDIM step above it.
enum class Img2ImgRule { Diffusers, CompVis };

SchedulerKind parse_scheduler_kind(const std::string& name);  // "ddim" | "euler" | "dpmpp2m"
TimestepSpacing parse_timestep_spacing(const std::string& name);
Img2ImgRule parse_img2img_rule(const std::string& name);
const char* scheduler_kind_name(SchedulerKind kind);
const char* timestep_spacing_name(TimestepSpacing spacing);

// The training schedule (scheduler/scheduler_config.json). Defaults are SD 1.x's.
struct ScheduleConfig {
  int num_train_timesteps = 1000;
  double beta_start = 0.00085;
  double beta_end = 0.012;
  std::string beta_schedule = "scaled_linear";  // | "linear" | "squaredcos_cap_v2"
  bool set_alpha_to_one = false;
  int steps_offset = 1;
  TimestepSpacing spacing = TimestepSpacing::Leading;
  std::string prediction_type = "epsilon";
};

// ᾱ_t for t = 0 .. num_train_timesteps-1 (float64; diffusers' float32 values differ by <= 2e-7).
std::vector<double> alphas_cumprod(const ScheduleConfig& config);

// The full inference timestep list of a scheduler for `steps` steps (before strength).
std::vector<double> inference_timesteps(const ScheduleConfig& config, SchedulerKind kind, int steps);

struct PlannedStep {
  int step_index = 0;         // index in the full timestep list
  double timestep = 0;        // what the U-Net receives
  double alpha_cumprod = 0;   // ᾱ at that timestep (interpolated for fractional timesteps)
  double sigma = 0;           // √((1-ᾱ)/ᾱ)
  double model_in_scale = 1;  // the U-Net sees model_in_scale · x
  FusedStepCoeffs coeffs;     // the update after this step's U-Net call
};

// Everything the fused loop needs, computed once per job.
struct SamplerPlan {
  SchedulerKind kind = SchedulerKind::Ddim;
  int num_inference_steps = 0;
  double strength = 1;
  double eta = 0;
  int t_start = 0;                 // index of the first step that runs
  double noise_timestep = 0;       // timestep at which the input latent is noised
  double noise_alpha_cumprod = 0;  // ᾱ there
  double init_x_scale = 1;         // x_T = init_x_scale · z + init_noise_scale · n
  double init_noise_scale = 0;
  std::vector<PlannedStep> steps;  // the steps that run, in order
};

// Throws InvalidArgument for steps < 1, strength outside (0, 1], eta < 0, an unknown
// schedule, or a strength so small that no step would run.
SamplerPlan make_sampler_plan(const ScheduleConfig& config, SchedulerKind kind, int steps, double strength,
                              double eta = 0.0, Img2ImgRule rule = Img2ImgRule::Diffusers);

}  // namespace brainlatent
