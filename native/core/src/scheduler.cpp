#include "brainlatent/scheduler.h"

#include <algorithm>
#include <cmath>

#include "brainlatent/error.h"

namespace brainlatent {
namespace {

[[noreturn]] void invalid(const std::string& message) { throw Error(ErrorCode::InvalidArgument, message); }

// numpy.linspace(start, stop, n): start + i·step, the last value exactly stop.
std::vector<double> linspace(double start, double stop, int n) {
  std::vector<double> v(static_cast<std::size_t>(std::max(n, 0)));
  if (n == 1) v[0] = start;
  if (n < 2) return v;
  const double step = (stop - start) / (n - 1);
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = start + i * step;
  v.back() = stop;
  return v;
}

// numpy.arange(start, 0, -step) for step > 0.
std::vector<double> arange_down(double start, double step) {
  std::vector<double> v;
  const auto n = static_cast<std::int64_t>(std::ceil(start / step));
  for (std::int64_t k = 0; k < n; ++k) v.push_back(start - static_cast<double>(k) * step);
  return v;
}

double round_half_even(double x) { return std::nearbyint(x); }

std::vector<double> sigma_table(const std::vector<double>& ac) {
  std::vector<double> s(ac.size());
  for (std::size_t t = 0; t < ac.size(); ++t) s[t] = std::sqrt((1.0 - ac[t]) / ac[t]);
  return s;
}

// numpy.interp(t, arange(len(table)), table)
double interp(const std::vector<double>& table, double t) {
  if (t <= 0) return table.front();
  const double last = static_cast<double>(table.size() - 1);
  if (t >= last) return table.back();
  const auto i = static_cast<std::size_t>(std::floor(t));
  const double f = t - static_cast<double>(i);
  return f == 0.0 ? table[i] : table[i] + (table[i + 1] - table[i]) * f;
}

double f32(double x) { return static_cast<double>(static_cast<float>(x)); }

}  // namespace

SchedulerKind parse_scheduler_kind(const std::string& name) {
  if (name == "ddim") return SchedulerKind::Ddim;
  if (name == "euler") return SchedulerKind::Euler;
  if (name == "dpmpp2m" || name == "dpm++2m" || name == "dpmsolver++") return SchedulerKind::DpmSolverPP2M;
  invalid("unknown scheduler '" + name + "': expected one of ddim, euler, dpmpp2m");
}

TimestepSpacing parse_timestep_spacing(const std::string& name) {
  if (name == "leading") return TimestepSpacing::Leading;
  if (name == "trailing") return TimestepSpacing::Trailing;
  if (name == "linspace") return TimestepSpacing::Linspace;
  invalid("unknown timestep spacing '" + name + "': expected leading, trailing or linspace");
}

Img2ImgRule parse_img2img_rule(const std::string& name) {
  if (name == "diffusers") return Img2ImgRule::Diffusers;
  if (name == "compvis") return Img2ImgRule::CompVis;
  invalid("unknown img2img rule '" + name + "': expected diffusers or compvis");
}

const char* scheduler_kind_name(SchedulerKind kind) {
  switch (kind) {
    case SchedulerKind::Ddim: return "ddim";
    case SchedulerKind::Euler: return "euler";
    case SchedulerKind::DpmSolverPP2M: return "dpmpp2m";
  }
  return "?";
}

const char* timestep_spacing_name(TimestepSpacing spacing) {
  switch (spacing) {
    case TimestepSpacing::Leading: return "leading";
    case TimestepSpacing::Trailing: return "trailing";
    case TimestepSpacing::Linspace: return "linspace";
  }
  return "?";
}

std::vector<double> alphas_cumprod(const ScheduleConfig& c) {
  const int T = c.num_train_timesteps;
  if (T < 2) invalid("num_train_timesteps must be >= 2, got " + std::to_string(T));
  std::vector<double> betas;
  if (c.beta_schedule == "scaled_linear") {
    betas = linspace(std::sqrt(c.beta_start), std::sqrt(c.beta_end), T);
    for (double& b : betas) b *= b;
  } else if (c.beta_schedule == "linear") {
    betas = linspace(c.beta_start, c.beta_end, T);
  } else if (c.beta_schedule == "squaredcos_cap_v2") {
    auto abar = [](double t) {
      const double v = std::cos((t + 0.008) / 1.008 * M_PI / 2);
      return v * v;
    };
    for (int i = 0; i < T; ++i)
      betas.push_back(std::min(1.0 - abar(static_cast<double>(i + 1) / T) / abar(static_cast<double>(i) / T), 0.999));
  } else {
    invalid("unsupported beta_schedule '" + c.beta_schedule + "': expected scaled_linear, linear or squaredcos_cap_v2");
  }
  std::vector<double> ac(betas.size());
  double prod = 1.0;
  for (std::size_t t = 0; t < betas.size(); ++t) ac[t] = (prod *= 1.0 - betas[t]);
  return ac;
}

std::vector<double> inference_timesteps(const ScheduleConfig& c, SchedulerKind kind, int N) {
  if (N < 1) invalid("steps must be >= 1, got " + std::to_string(N));
  const int T = c.num_train_timesteps;
  if (N > T) invalid("steps (" + std::to_string(N) + ") cannot exceed num_train_timesteps (" + std::to_string(T) + ")");
  std::vector<double> ts;
  const bool dpm = kind == SchedulerKind::DpmSolverPP2M;
  switch (c.spacing) {
    case TimestepSpacing::Leading: {
      const int M = dpm ? N + 1 : N;
      const int ratio = T / M;
      for (int i = M - 1; i >= (dpm ? 1 : 0); --i) ts.push_back(static_cast<double>(i * ratio + c.steps_offset));
      break;
    }
    case TimestepSpacing::Trailing: {
      for (double v : arange_down(T, static_cast<double>(T) / N)) ts.push_back(round_half_even(v) - 1.0);
      break;
    }
    case TimestepSpacing::Linspace: {
      if (kind == SchedulerKind::Euler) {
        // float32 linspace, not rounded: Euler runs fractional timesteps here
        auto v = linspace(0, T - 1, N);
        for (auto it = v.rbegin(); it != v.rend(); ++it) ts.push_back(f32(*it));
      } else {
        auto v = linspace(0, T - 1, dpm ? N + 1 : N);
        for (auto it = v.rbegin(); it != v.rend(); ++it) ts.push_back(round_half_even(*it));
        if (dpm) ts.pop_back();
      }
      break;
    }
  }
  return ts;
}

SamplerPlan make_sampler_plan(const ScheduleConfig& c, SchedulerKind kind, int N, double strength, double eta,
                              Img2ImgRule rule) {
  if (!(strength > 0.0 && strength <= 1.0))
    invalid("strength must be in (0, 1], got " + std::to_string(strength));
  if (N < 1) invalid("steps must be >= 1, got " + std::to_string(N));
  if (!(eta >= 0.0)) invalid("eta must be >= 0, got " + std::to_string(eta));
  if (eta > 0.0 && kind != SchedulerKind::Ddim) invalid("eta > 0 is only defined for the ddim scheduler");
  if (c.prediction_type != "epsilon")
    invalid("prediction_type '" + c.prediction_type + "' is not supported (SD 1.x predicts epsilon)");

  const std::vector<double> ac = alphas_cumprod(c);
  const std::vector<double> ts = inference_timesteps(c, kind, N);
  const int T = c.num_train_timesteps;
  const int init = std::min(static_cast<int>(static_cast<double>(N) * strength), N);
  const int t_start = std::max(N - init, 0);
  if (init < 1)
    invalid("strength " + std::to_string(strength) + " with " + std::to_string(N) +
            " steps runs no denoising step (needs strength >= 1/steps)");

  SamplerPlan plan;
  plan.kind = kind;
  plan.num_inference_steps = N;
  plan.strength = strength;
  plan.eta = eta;
  plan.t_start = t_start;

  const std::vector<double> sig_table = sigma_table(ac);
  auto alpha_at = [&](double t) { return 1.0 / (1.0 + std::pow(interp(sig_table, t), 2)); };

  // noise level of the input latent
  int noise_index = t_start;
  if (rule == Img2ImgRule::CompVis) {
    if (kind != SchedulerKind::Ddim) invalid("the compvis img2img rule is only defined for the ddim scheduler");
    if (t_start == 0) invalid("the compvis img2img rule needs strength·steps < steps (CompVis indexes past the schedule)");
    noise_index = t_start - 1;
  }
  plan.noise_timestep = ts[static_cast<std::size_t>(noise_index)];
  const double final_alpha = c.set_alpha_to_one ? 1.0 : ac[0];

  if (kind == SchedulerKind::Ddim) {
    const double a = ac[static_cast<std::size_t>(plan.noise_timestep)];
    plan.noise_alpha_cumprod = a;
    plan.init_x_scale = std::sqrt(a);
    plan.init_noise_scale = std::sqrt(1.0 - a);
    const int ratio = T / N;
    for (int i = t_start; i < N; ++i) {
      PlannedStep s;
      s.step_index = i;
      s.timestep = ts[static_cast<std::size_t>(i)];
      const int t = static_cast<int>(s.timestep);
      const int prev = t - ratio;
      const double a_t = ac[static_cast<std::size_t>(t)];
      const double a_p = prev >= 0 ? ac[static_cast<std::size_t>(prev)] : final_alpha;
      s.alpha_cumprod = a_t;
      s.sigma = std::sqrt((1 - a_t) / a_t);
      const double variance = ((1 - a_p) / (1 - a_t)) * (1 - a_t / a_p);
      const double std_dev = eta * std::sqrt(variance);
      const double dir2 = 1 - a_p - std_dev * std_dev;
      if (dir2 < 0) invalid("eta " + std::to_string(eta) + " is too large: 1 - alpha_prev - sigma^2 < 0");
      FusedStepCoeffs& k = s.coeffs;
      k.p = static_cast<float>(1.0 / std::sqrt(a_t));
      k.q = static_cast<float>(-std::sqrt(1 - a_t) / std::sqrt(a_t));
      k.c_d = static_cast<float>(std::sqrt(a_p));
      k.c_eps = static_cast<float>(std::sqrt(dir2));
      k.c_noise = static_cast<float>(std_dev);
      k.noise_stream = static_cast<std::uint32_t>(1 + i);
      k.next_in_scale = 1.0f;
      plan.steps.push_back(s);
    }
    return plan;
  }

  // Euler and DPM-Solver++ work on sigmas at the (possibly fractional) timesteps, stored as
  // float32 as diffusers does, with a final 0.
  std::vector<double> sig(ts.size() + 1, 0.0);
  for (std::size_t i = 0; i < ts.size(); ++i) sig[i] = f32(interp(sig_table, ts[i]));

  if (kind == SchedulerKind::Euler) {
    const double s0 = sig[static_cast<std::size_t>(noise_index)];
    plan.noise_alpha_cumprod = alpha_at(plan.noise_timestep);
    plan.init_x_scale = 1.0;
    plan.init_noise_scale = s0;
    for (int i = t_start; i < N; ++i) {
      PlannedStep s;
      s.step_index = i;
      s.timestep = ts[static_cast<std::size_t>(i)];
      s.alpha_cumprod = alpha_at(s.timestep);
      const double sg = sig[static_cast<std::size_t>(i)], sn = sig[static_cast<std::size_t>(i) + 1];
      s.sigma = sg;
      s.model_in_scale = 1.0 / std::sqrt(sg * sg + 1.0);
      FusedStepCoeffs& k = s.coeffs;
      k.c_x = 1.0f;
      k.c_eps = static_cast<float>(sn - sg);
      k.next_in_scale = i + 1 < N ? static_cast<float>(1.0 / std::sqrt(sn * sn + 1.0)) : 1.0f;
      plan.steps.push_back(s);
    }
    return plan;
  }

  // DPM-Solver++(2M), epsilon prediction, midpoint, lower-order first and final steps.
  auto alpha_sigma = [](double sigma, double& alpha_t, double& sigma_t) {
    alpha_t = 1.0 / std::sqrt(sigma * sigma + 1.0);
    sigma_t = sigma * alpha_t;
  };
  {
    double a0, s0;
    alpha_sigma(sig[static_cast<std::size_t>(t_start)], a0, s0);
    plan.noise_alpha_cumprod = a0 * a0;
    plan.init_x_scale = a0;
    plan.init_noise_scale = s0;
  }
  for (int i = t_start; i < N; ++i) {
    PlannedStep s;
    s.step_index = i;
    s.timestep = ts[static_cast<std::size_t>(i)];
    s.alpha_cumprod = alpha_at(s.timestep);
    const double sg = sig[static_cast<std::size_t>(i)], sn = sig[static_cast<std::size_t>(i) + 1];
    s.sigma = sg;
    double alpha_s, sigma_s, alpha_t, sigma_t;
    alpha_sigma(sg, alpha_s, sigma_s);
    alpha_sigma(sn, alpha_t, sigma_t);
    FusedStepCoeffs& k = s.coeffs;
    k.p = static_cast<float>(1.0 / alpha_s);
    k.q = static_cast<float>(-sigma_s / alpha_s);
    k.store_x0 = true;
    const bool first_order = (i == t_start) || (i == N - 1);
    if (sigma_t == 0.0) {
      k.c_x = 0.0f;
      k.c_d = 1.0f;
    } else {
      const double lambda_s = std::log(alpha_s) - std::log(sigma_s);
      const double lambda_t = std::log(alpha_t) - std::log(sigma_t);
      const double h = lambda_t - lambda_s;
      k.c_x = static_cast<float>(sigma_t / sigma_s);
      k.c_d = static_cast<float>(-alpha_t * (std::exp(-h) - 1.0));
      if (!first_order) {
        double alpha_s1, sigma_s1;
        alpha_sigma(sig[static_cast<std::size_t>(i) - 1], alpha_s1, sigma_s1);
        const double lambda_s1 = std::log(alpha_s1) - std::log(sigma_s1);
        const double r0 = (lambda_s - lambda_s1) / h;
        k.r = static_cast<float>(0.5 / r0);
      }
    }
    plan.steps.push_back(s);
  }
  return plan;
}

}  // namespace brainlatent
