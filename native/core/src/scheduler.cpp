#include "brainlatent/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "brainlatent/error.h"

namespace brainlatent {
namespace {

[[noreturn]] void invalid(const std::string& message) { throw Error(ErrorCode::InvalidArgument, message); }

std::string num(double v) {
  std::ostringstream o;
  o.precision(10);
  o << v;
  return o.str();
}

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

// The N points of numpy.arange(T, 0, -T/N): T + k·(−T/N) for k < N. (numpy's own arange gives N + 1 points
// where ⌈T / (T/N)⌉ rounds up past N, as at 61, 103, 121 … of 1000: diffusers then runs a step more, at
// timestep −1, or refuses the count; exactly N is what the spacing means.)
std::vector<double> trailing_points(double T, int N) {
  std::vector<double> v;
  const double step = T / N;
  for (int k = 0; k < N; ++k) v.push_back(T + static_cast<double>(k) * -step);
  return v;
}

double round_half_even(double x) { return std::nearbyint(x); }
double f32(double x) { return static_cast<double>(static_cast<float>(x)); }

// numpy.interp(t, arange(len(table)), table)
double interp(const std::vector<double>& table, double t) {
  if (t <= 0) return table.front();
  const double last = static_cast<double>(table.size() - 1);
  if (t >= last) return table.back();
  const auto i = static_cast<std::size_t>(std::floor(t));
  const double f = t - static_cast<double>(i);
  return f == 0.0 ? table[i] : table[i] + (table[i + 1] - table[i]) * f;
}

// diffusers' _sigma_to_t: the fractional timestep of σ by interpolation in log σ.
double sigma_to_t(double sigma, const std::vector<double>& log_sigmas) {
  const double ls = std::log(std::max(sigma, 1e-10));
  const int n = static_cast<int>(log_sigmas.size());
  // low = the last index with log_sigmas[i] <= ls (argmax of the cumulative count), 0 if none
  int low = 0;
  for (int i = 0; i < n; ++i)
    if (ls - log_sigmas[static_cast<std::size_t>(i)] >= 0) low = i;
  low = std::min(low, n - 2);
  const double lo = log_sigmas[static_cast<std::size_t>(low)], hi = log_sigmas[static_cast<std::size_t>(low) + 1];
  double w = (lo - ls) / (lo - hi);
  w = std::min(1.0, std::max(0.0, w));
  return (1 - w) * low + w * (low + 1);
}

// Karras et al. (2022) ρ = 7 spacing between σ_max and σ_min, N values.
std::vector<double> karras(double sigma_min, double sigma_max, int n) {
  const double rho = 7.0;
  const auto ramp = linspace(0, 1, n);
  const double min_inv = std::pow(sigma_min, 1 / rho), max_inv = std::pow(sigma_max, 1 / rho);
  std::vector<double> s;
  for (double r : ramp) s.push_back(std::pow(max_inv + r * (min_inv - max_inv), rho));
  return s;
}

enum class Family { AlphaIndexed, SigmaFloat, SigmaInt };

Family family_of(SchedulerKind k) {
  switch (k) {
    case SchedulerKind::Ddim:
    case SchedulerKind::Pndm:
    case SchedulerKind::Ddpm: return Family::AlphaIndexed;
    case SchedulerKind::Lms:
    case SchedulerKind::Euler:
    case SchedulerKind::EulerAncestral:
    case SchedulerKind::Heun: return Family::SigmaFloat;
    default: return Family::SigmaInt;
  }
}

// The scheduler's timesteps and, for the σ-based ones, its σ list (float32 values, final 0).
struct Lists {
  std::vector<double> timesteps;
  std::vector<double> sigmas;
};

// The N base timesteps of a spacing, descending (before PNDM's and Heun's repetitions).
std::vector<double> spaced(const ResolvedSchedule& c, SchedulerKind kind, int N) {
  const int T = c.num_train_timesteps;
  const Family fam = family_of(kind);
  std::vector<double> ts;
  switch (c.spacing) {
    case TimestepSpacing::Leading: {
      const int M = fam == Family::SigmaInt ? N + 1 : N;
      const int ratio = T / M;
      for (int i = M - 1; i >= (fam == Family::SigmaInt ? 1 : 0); --i) ts.push_back(static_cast<double>(i) * ratio + c.steps_offset);
      break;
    }
    case TimestepSpacing::Trailing:
      for (double v : trailing_points(T, N)) ts.push_back(round_half_even(v) - 1.0);
      break;
    case TimestepSpacing::Linspace: {
      if (fam == Family::SigmaFloat) {
        // np.linspace(0, T-1, N, dtype=float32): fractional timesteps, float32
        auto v = linspace(0, T - 1, N);
        for (auto it = v.rbegin(); it != v.rend(); ++it) ts.push_back(f32(*it));
      } else {
        auto v = linspace(0, T - 1, fam == Family::SigmaInt ? N + 1 : N);
        for (auto it = v.rbegin(); it != v.rend(); ++it) ts.push_back(round_half_even(*it));
        if (fam == Family::SigmaInt) ts.pop_back();
      }
      break;
    }
  }
  // Leading spacing adds steps_offset to multiples of T / N: with many steps (N close to T) the
  // first timestep passes T − 1. The ᾱ-indexed schedulers (DDIM, PNDM, DDPM) index alphas_cumprod
  // with it, and diffusers fails there too; the σ-based ones interpolate, clamped, as np.interp does.
  for (double t : ts)
    if (fam == Family::AlphaIndexed && !(t >= 0 && t <= T - 1))
      invalid(std::to_string(N) + " steps under " + timestep_spacing_name(c.spacing) + " spacing (steps_offset " +
              std::to_string(c.steps_offset) + ") reach timestep " + num(t) + ", outside the schedule's 0.." +
              std::to_string(T - 1) + ": use fewer steps");
  return ts;
}

// Whether a Karras schedule spans the config's sigma_min..sigma_max (where set) instead of the schedule's ends: every
// diffusers class that has Karras sigmas but LMS reads them (`hasattr(self.config, "sigma_min")` in its
// _convert_to_karras), Euler and UniPC from their own arguments, Heun and DPM-Solver++ from the keys from_config keeps
// of another class's config (the usual switch, DPMSolverMultistepScheduler.from_config(euler.config)).
bool karras_range_from_config(SchedulerKind kind) { return kind != SchedulerKind::Lms; }

Lists make_lists(const ResolvedSchedule& c, SchedulerKind kind, int N, const std::vector<double>& ac) {
  Lists L;
  std::vector<double> sig_all(ac.size()), log_sig(ac.size());
  for (std::size_t t = 0; t < ac.size(); ++t) {
    sig_all[t] = std::sqrt((1.0 - ac[t]) / ac[t]);
    log_sig[t] = std::log(sig_all[t]);
  }
  const Family fam = family_of(kind);
  std::vector<double> ts = spaced(c, kind, N);
  if (fam == Family::AlphaIndexed) {
    if (kind == SchedulerKind::Pndm && ts.size() >= 2) {
      // skip_prk_steps: [t_{N-1}, t_{N-2}, t_{N-2}, t_{N-3}, …, t_0] (the second one repeated)
      ts.insert(ts.begin() + 1, ts[1]);
    }
    L.timesteps = ts;
    return L;
  }
  std::vector<double> sig;
  if (fam == Family::SigmaFloat) {
    for (double t : ts) sig.push_back(interp(sig_all, t));
    if (c.karras) {
      const bool cfg_range = karras_range_from_config(kind);
      const double lo = cfg_range && c.sigma_min ? *c.sigma_min : sig.back();
      const double hi = cfg_range && c.sigma_max ? *c.sigma_max : sig.front();
      sig = karras(lo, hi, N);
      ts.clear();
      for (double s : sig) ts.push_back(f32(sigma_to_t(s, log_sig)));
    }
  } else {
    for (double t : ts) sig.push_back(interp(sig_all, t));
    if (c.karras) {
      const bool cfg_range = karras_range_from_config(kind);
      const double lo = cfg_range && c.sigma_min ? *c.sigma_min : sig_all.front();
      const double hi = cfg_range && c.sigma_max ? *c.sigma_max : sig_all.back();
      sig = karras(lo, hi, N);
      ts.clear();
      const bool round = kind == SchedulerKind::UniPC || c.beta_schedule != "squaredcos_cap_v2";
      for (double s : sig) ts.push_back(round ? round_half_even(sigma_to_t(s, log_sig)) : std::trunc(sigma_to_t(s, log_sig)));
    }
  }
  for (double& s : sig) s = f32(s);
  sig.push_back(0.0);
  if (kind == SchedulerKind::Heun) {
    // [σ0, σ1, σ1, …, σ_{N-1}, σ_{N-1}, 0] and [t0, t1, t1, …, t_{N-1}, t_{N-1}]
    std::vector<double> s2{sig.front()}, t2{ts.front()};
    for (std::size_t i = 1; i + 1 < sig.size(); ++i) s2.insert(s2.end(), {sig[i], sig[i]});
    s2.push_back(sig.back());
    for (std::size_t i = 1; i < ts.size(); ++i) t2.insert(t2.end(), {ts[i], ts[i]});
    sig = s2;
    ts = t2;
  }
  L.timesteps = ts;
  L.sigmas = sig;
  return L;
}

// VP α_t and σ_t of a σ (DPMSolver/UniPC _sigma_to_alpha_sigma_t) and λ = log α − log σ.
struct Vp {
  double alpha, sigma, lambda;
};
Vp vp(double s) {
  const double a = 1.0 / std::sqrt(s * s + 1.0);
  const double sg = s * a;
  return {a, sg, std::log(a) - std::log(sg)};
}

// ∫_{σ_i}^{σ_{i+1}} of LMS's Lagrange basis polynomial (order ≤ 4, degree ≤ 3): Gauss–Legendre
// with 4 nodes is exact (scipy's quad on it agrees to rounding).
double lms_coefficient(const std::vector<double>& s, int order, int t, int current) {
  static const double xg[4] = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526};
  static const double wg[4] = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538};
  const double a = s[static_cast<std::size_t>(t)], b = s[static_cast<std::size_t>(t) + 1];
  double sum = 0;
  for (int q = 0; q < 4; ++q) {
    const double tau = 0.5 * (b - a) * xg[q] + 0.5 * (a + b);
    double prod = 1.0;
    for (int k = 0; k < order; ++k) {
      if (k == current) continue;
      prod *= (tau - s[static_cast<std::size_t>(t - k)]) / (s[static_cast<std::size_t>(t - current)] - s[static_cast<std::size_t>(t - k)]);
    }
    sum += wg[q] * prod;
  }
  return 0.5 * (b - a) * sum;
}

}  // namespace

SchedulerKind parse_scheduler_kind(const std::string& name) {
  if (name == "ddim") return SchedulerKind::Ddim;
  if (name == "pndm") return SchedulerKind::Pndm;
  if (name == "ddpm") return SchedulerKind::Ddpm;
  if (name == "lms") return SchedulerKind::Lms;
  if (name == "euler") return SchedulerKind::Euler;
  if (name == "euler-ancestral" || name == "euler_a") return SchedulerKind::EulerAncestral;
  if (name == "heun") return SchedulerKind::Heun;
  if (name == "dpmpp2m" || name == "dpm++2m" || name == "dpmsolver++") return SchedulerKind::DpmSolverPP2M;
  if (name == "dpmpp2m-sde" || name == "sde-dpmsolver++") return SchedulerKind::DpmSolverPP2MSde;
  if (name == "unipc") return SchedulerKind::UniPC;
  invalid("unknown scheduler '" + name +
          "': expected one of ddim, pndm, ddpm, lms, euler, euler-ancestral, heun, dpmpp2m, dpmpp2m-sde, unipc");
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
    case SchedulerKind::Pndm: return "pndm";
    case SchedulerKind::Ddpm: return "ddpm";
    case SchedulerKind::Lms: return "lms";
    case SchedulerKind::Euler: return "euler";
    case SchedulerKind::EulerAncestral: return "euler-ancestral";
    case SchedulerKind::Heun: return "heun";
    case SchedulerKind::DpmSolverPP2M: return "dpmpp2m";
    case SchedulerKind::DpmSolverPP2MSde: return "dpmpp2m-sde";
    case SchedulerKind::UniPC: return "unipc";
  }
  return "?";
}

const char* scheduler_class_name(SchedulerKind kind) {
  switch (kind) {
    case SchedulerKind::Ddim: return "DDIMScheduler";
    case SchedulerKind::Pndm: return "PNDMScheduler";
    case SchedulerKind::Ddpm: return "DDPMScheduler";
    case SchedulerKind::Lms: return "LMSDiscreteScheduler";
    case SchedulerKind::Euler: return "EulerDiscreteScheduler";
    case SchedulerKind::EulerAncestral: return "EulerAncestralDiscreteScheduler";
    case SchedulerKind::Heun: return "HeunDiscreteScheduler";
    case SchedulerKind::DpmSolverPP2M:
    case SchedulerKind::DpmSolverPP2MSde: return "DPMSolverMultistepScheduler";
    case SchedulerKind::UniPC: return "UniPCMultistepScheduler";
  }
  return "?";
}

bool scheduler_has_karras(SchedulerKind k) {
  return k == SchedulerKind::Euler || k == SchedulerKind::Heun || k == SchedulerKind::Lms ||
         k == SchedulerKind::DpmSolverPP2M || k == SchedulerKind::DpmSolverPP2MSde || k == SchedulerKind::UniPC;
}

int scheduler_order(SchedulerKind k) { return k == SchedulerKind::Heun ? 2 : 1; }

const char* timestep_spacing_name(TimestepSpacing spacing) {
  switch (spacing) {
    case TimestepSpacing::Leading: return "leading";
    case TimestepSpacing::Trailing: return "trailing";
    case TimestepSpacing::Linspace: return "linspace";
  }
  return "?";
}

ScheduleConfig sd15_schedule() {
  ScheduleConfig c;
  c.num_train_timesteps = 1000;
  c.beta_start = 0.00085;
  c.beta_end = 0.012;
  c.beta_schedule = "scaled_linear";
  c.set_alpha_to_one = false;
  c.steps_offset = 1;
  c.clip_sample = false;
  c.source = "SD 1.5's scheduler_config.json";
  return c;
}

ResolvedSchedule resolve_schedule(const ScheduleConfig& c, SchedulerKind kind) {
  ResolvedSchedule r;  // the defaults most classes share
  r.source = c.source;
  switch (kind) {
    case SchedulerKind::Ddim:
      r.set_alpha_to_one = true;
      r.clip_sample = true;
      r.spacing = TimestepSpacing::Leading;
      break;
    case SchedulerKind::Pndm: r.spacing = TimestepSpacing::Leading; break;
    case SchedulerKind::Ddpm:
      r.clip_sample = true;
      r.spacing = TimestepSpacing::Leading;
      break;
    case SchedulerKind::Heun:
      r.beta_start = 0.00085;
      r.beta_end = 0.012;
      r.spacing = TimestepSpacing::Linspace;
      break;
    default: r.spacing = TimestepSpacing::Linspace; break;
  }
  auto field = [&](const char* name) { return r.source + ": " + name; };
  if (c.num_train_timesteps) r.num_train_timesteps = *c.num_train_timesteps;
  if (c.beta_start) r.beta_start = *c.beta_start;
  if (c.beta_end) r.beta_end = *c.beta_end;
  if (c.beta_schedule) r.beta_schedule = *c.beta_schedule;
  if (c.set_alpha_to_one) r.set_alpha_to_one = *c.set_alpha_to_one;
  if (c.steps_offset) r.steps_offset = *c.steps_offset;
  if (c.spacing) r.spacing = *c.spacing;
  if (c.clip_sample) r.clip_sample = *c.clip_sample;
  if (c.clip_sample_range) r.clip_sample_range = *c.clip_sample_range;
  if (c.use_karras_sigmas) r.karras = *c.use_karras_sigmas;
  r.sigma_min = c.sigma_min;
  r.sigma_max = c.sigma_max;
  if (c.variance_type) r.variance_type = *c.variance_type;
  if (c.prediction_type && *c.prediction_type != "epsilon")
    invalid(field("prediction_type") + " is '" + *c.prediction_type + "'; only 'epsilon' is supported (SD 1.x predicts epsilon)");
  if (r.num_train_timesteps < 2 || r.num_train_timesteps > 100000)
    invalid(field("num_train_timesteps") + " must be an integer in [2, 100000], got " + std::to_string(r.num_train_timesteps));
  if (r.steps_offset < 0 || r.steps_offset >= r.num_train_timesteps)
    invalid(field("steps_offset") + " must be in [0, num_train_timesteps), got " + std::to_string(r.steps_offset));
  if (!(r.beta_start > 0 && r.beta_start < 1)) invalid(field("beta_start") + " must be in (0, 1), got " + num(r.beta_start));
  if (!(r.beta_end > 0 && r.beta_end < 1)) invalid(field("beta_end") + " must be in (0, 1), got " + num(r.beta_end));
  if (r.beta_schedule != "linear" && r.beta_schedule != "scaled_linear" && r.beta_schedule != "squaredcos_cap_v2")
    invalid(field("beta_schedule") + " is '" + r.beta_schedule + "': expected linear, scaled_linear or squaredcos_cap_v2");
  if (!(r.clip_sample_range > 0)) invalid(field("clip_sample_range") + " must be > 0, got " + num(r.clip_sample_range));
  if (r.variance_type != "fixed_small" && r.variance_type != "fixed_small_log" && r.variance_type != "fixed_large")
    invalid(field("variance_type") + " is '" + r.variance_type + "': expected fixed_small, fixed_small_log or fixed_large");
  for (const auto* s : {&r.sigma_min, &r.sigma_max})
    if (*s && !(**s > 0 && std::isfinite(**s))) invalid(field(s == &r.sigma_min ? "sigma_min" : "sigma_max") + " must be > 0");
  if (r.karras && !scheduler_has_karras(kind))
    invalid(std::string("Karras sigmas (use_karras_sigmas) are not defined for ") + scheduler_class_name(kind) +
            ": they apply to euler, heun, lms, dpmpp2m, dpmpp2m-sde and unipc");
  return r;
}

std::vector<double> alphas_cumprod(const ResolvedSchedule& c) {
  const int T = c.num_train_timesteps;
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
    invalid(c.source + ": beta_schedule '" + c.beta_schedule + "' is not linear, scaled_linear or squaredcos_cap_v2");
  }
  std::vector<double> ac(betas.size());
  double prod = 1.0;
  for (std::size_t t = 0; t < betas.size(); ++t) {
    if (!(betas[t] > 0 && betas[t] < 1))
      invalid(c.source + ": beta_start " + num(c.beta_start) + " and beta_end " + num(c.beta_end) + " (" + c.beta_schedule +
              ") give beta[" + std::to_string(t) + "] = " + num(betas[t]) +
              ", outside (0, 1): alphas_cumprod would not decrease strictly in (0, 1)");
    ac[t] = (prod *= 1.0 - betas[t]);
  }
  if (!(ac.back() > 0)) invalid(c.source + ": alphas_cumprod underflows to 0 before the last timestep");
  return ac;
}

std::vector<double> inference_timesteps(const ResolvedSchedule& c, SchedulerKind kind, int N) {
  if (N < 1) invalid("steps must be >= 1, got " + std::to_string(N));
  if (N > c.num_train_timesteps)
    invalid("steps (" + std::to_string(N) + ") cannot exceed num_train_timesteps (" + std::to_string(c.num_train_timesteps) + ")");
  return make_lists(c, kind, N, alphas_cumprod(c)).timesteps;
}

SamplerPlan make_sampler_plan(const ScheduleConfig& config, SchedulerKind kind, int N, double strength, double eta,
                              Img2ImgRule rule) {
  if (!(strength > 0.0 && strength <= 1.0)) invalid("strength must be in (0, 1], got " + num(strength));
  if (N < 1) invalid("steps must be >= 1, got " + std::to_string(N));
  if (!(eta >= 0.0)) invalid("eta must be >= 0, got " + num(eta));
  if (eta > 0.0 && kind != SchedulerKind::Ddim) invalid("eta > 0 is only defined for the ddim scheduler");
  const ResolvedSchedule c = resolve_schedule(config, kind);
  if (N > c.num_train_timesteps)
    invalid("steps (" + std::to_string(N) + ") cannot exceed num_train_timesteps (" + std::to_string(c.num_train_timesteps) + ")");
  const std::vector<double> ac = alphas_cumprod(c);
  const Lists lists = make_lists(c, kind, N, ac);
  const std::vector<double>& ts = lists.timesteps;
  const std::vector<double>& sg = lists.sigmas;
  const int T = c.num_train_timesteps;
  const int init = std::min(static_cast<int>(static_cast<double>(N) * strength), N);
  const int t_start = std::max(N - init, 0);
  const int order = scheduler_order(kind);
  const int begin = t_start * order;
  const int count = static_cast<int>(ts.size());
  // diffusers' get_timesteps runs timesteps[t_start·order:]: with init 0 that is nothing, except for PNDM at 2 or
  // more steps, whose N + 1 timesteps leave the last one (t_0) alone: one PLMS call there, as diffusers makes
  if (begin >= count)
    invalid("strength " + num(strength) + " with " + std::to_string(N) + " steps runs no denoising step (needs strength >= 1/steps)");

  SamplerPlan plan;
  plan.kind = kind;
  plan.num_inference_steps = N;
  plan.strength = strength;
  plan.eta = eta;
  plan.karras = c.karras;
  plan.spacing = c.spacing;
  plan.t_start = t_start;
  plan.begin_index = begin;
  plan.timesteps = ts;

  auto ac_at = [&](double t) { return ac[static_cast<std::size_t>(t)]; };
  const Family fam = family_of(kind);
  const double final_alpha = c.set_alpha_to_one ? 1.0 : ac[0];

  // DDIM's noise σ_t = eta·√variance must leave 1 − ᾱ_prev − σ_t² >= 0 at every step that runs, so eta is bounded
  // by min √((1 − ᾱ_prev) / variance) = min √((1 − ᾱ_t)·ᾱ_prev / (ᾱ_prev − ᾱ_t)) over those steps (> 1 always,
  // 1 at a last step to ᾱ = 1). The other schedulers take eta 0 only.
  plan.max_eta = 0.0;
  if (kind == SchedulerKind::Ddim) {
    plan.max_eta = std::numeric_limits<double>::infinity();
    double bound_t = 0;
    for (int i = begin; i < count; ++i) {
      const int t = static_cast<int>(ts[static_cast<std::size_t>(i)]);
      const int prev = t - T / N;
      const double a_t = ac_at(t), a_p = prev >= 0 ? ac_at(prev) : final_alpha;
      if (!(a_p > a_t)) continue;  // (no variance: any eta leaves the step as it is)
      const double bound = std::sqrt((1 - a_t) * a_p / (a_p - a_t));
      if (bound < plan.max_eta) {
        plan.max_eta = bound;
        bound_t = t;
      }
    }
    if (eta > plan.max_eta)
      invalid("eta " + num(eta) + " is too large for this schedule: the largest that keeps every DDIM step valid (its noise eta·σ_t " +
              "within 1 − ᾱ_prev) is " + num(plan.max_eta) + ", set by the step at timestep " + num(bound_t) + "; eta is usually in [0, 1]");
  }

  // The noise level of the input latent.
  int noise_index = begin;
  if (rule == Img2ImgRule::CompVis) {
    if (kind != SchedulerKind::Ddim) invalid("the compvis img2img rule is only defined for the ddim scheduler");
    if (t_start == 0) invalid("the compvis img2img rule needs strength·steps < steps (CompVis indexes past the schedule)");
    noise_index = t_start - 1;
  }
  plan.noise_timestep = ts[static_cast<std::size_t>(noise_index)];
  if (fam == Family::AlphaIndexed) {
    const double a = ac_at(plan.noise_timestep);
    plan.noise_alpha_cumprod = a;
    plan.init_x_scale = std::sqrt(a);
    plan.init_noise_scale = std::sqrt(1.0 - a);
  } else if (fam == Family::SigmaFloat) {
    const double s0 = sg[static_cast<std::size_t>(begin)];
    plan.noise_alpha_cumprod = 1.0 / (1.0 + s0 * s0);
    plan.init_x_scale = 1.0;
    plan.init_noise_scale = s0;
  } else {
    const Vp v = vp(sg[static_cast<std::size_t>(begin)]);
    plan.noise_alpha_cumprod = v.alpha * v.alpha;
    plan.init_x_scale = v.alpha;
    plan.init_noise_scale = v.sigma;
  }

  const std::uint8_t X = kRegX, E = kRegE, Nz = kRegN, H0 = kRegH0, H1 = kRegH1, H2 = kRegH2, H3 = kRegH3, T0 = kRegT0,
                     T1 = kRegT1;
  const bool clip = c.clip_sample;
  const double range = c.clip_sample_range;
  int unipc_prev_order = 0;
  for (int i = begin; i < count; ++i) {
    const int k = i - begin;  // calls made before this one
    PlannedStep s;
    s.step_index = i;
    s.timestep = ts[static_cast<std::size_t>(i)];
    StepProgram& p = s.program;
    p.noise_stream = static_cast<std::uint32_t>(1 + i);
    if (fam == Family::AlphaIndexed) {
      s.alpha_cumprod = ac_at(s.timestep);
      s.sigma = std::sqrt((1 - s.alpha_cumprod) / s.alpha_cumprod);
    } else {
      s.sigma = sg[static_cast<std::size_t>(i)];
      // ᾱ of the σ this call uses (σ is float32, as diffusers keeps it), so it agrees with sigma and noise_alpha_cumprod
      s.alpha_cumprod = 1.0 / (1.0 + s.sigma * s.sigma);
      if (fam == Family::SigmaFloat) s.model_in_scale = 1.0 / std::sqrt(s.sigma * s.sigma + 1.0);
    }
    switch (kind) {
      case SchedulerKind::Ddim: {
        const int t = static_cast<int>(s.timestep);
        const int prev = t - T / N;
        const double a_t = ac_at(t), a_p = prev >= 0 ? ac_at(prev) : final_alpha;
        const double variance = ((1 - a_p) / (1 - a_t)) * (1 - a_t / a_p);
        const double sd = eta * std::sqrt(variance);
        // (eta <= max_eta: only rounding can take it below 0, at eta = max_eta)
        const double dir2 = std::max(1 - a_p - sd * sd, 0.0);
        p.assign(T0, {{X, 1.0 / std::sqrt(a_t)}, {E, -std::sqrt(1 - a_t) / std::sqrt(a_t)}}, clip, range);
        p.assign(X, {{T0, std::sqrt(a_p)}, {E, std::sqrt(dir2)}, {Nz, sd}});
        p.noisy = sd != 0.0;
        break;
      }
      case SchedulerKind::Ddpm: {
        const int t = static_cast<int>(s.timestep);
        const int prev = i + 1 < count ? static_cast<int>(ts[static_cast<std::size_t>(i) + 1]) : -1;
        const double a_t = ac_at(t), a_p = prev >= 0 ? ac_at(prev) : 1.0;
        const double b_t = 1 - a_t, b_p = 1 - a_p, cur_a = a_t / a_p, cur_b = 1 - cur_a;
        double sd = 0;
        if (t > 0) {
          const double var = std::max((1 - a_p) / (1 - a_t) * cur_b, 1e-20);
          sd = c.variance_type == "fixed_large" ? std::sqrt(cur_b) : std::sqrt(var);
        }
        p.assign(T0, {{X, 1.0 / std::sqrt(a_t)}, {E, -std::sqrt(b_t) / std::sqrt(a_t)}}, clip, range);
        p.assign(X, {{T0, std::sqrt(a_p) * cur_b / b_t}, {X, std::sqrt(cur_a) * b_p / b_t}, {Nz, sd}});
        p.noisy = sd != 0.0;
        break;
      }
      case SchedulerKind::Pndm: {
        // PLMS with skip_prk_steps; ets newest first in H0..H2, cur_sample in H3, counter = k
        const int r = T / N;
        auto prev_coeffs = [&](int t_cur, int t_prev, double& sc, double& mc) {
          const double a_t = ac_at(t_cur), a_p = t_prev >= 0 ? ac_at(t_prev) : final_alpha;
          sc = std::sqrt(a_p / a_t);
          const double denom = a_t * std::sqrt(1 - a_p) + std::sqrt(a_t * (1 - a_t) * a_p);
          mc = -(a_p - a_t) / denom;
        };
        const int t = static_cast<int>(s.timestep);
        double sc, mc;
        if (k == 0) {
          prev_coeffs(t, t - r, sc, mc);
          p.assign(H3, {{X, 1.0}});
          p.assign(X, {{H3, sc}, {E, mc}});
          p.assign(H0, {{E, 1.0}});
        } else if (k == 1) {
          prev_coeffs(t + r, t, sc, mc);  // the warm-up redoes the first step with the averaged ε
          p.assign(X, {{H3, sc}, {E, 0.5 * mc}, {H0, 0.5 * mc}});
        } else {
          prev_coeffs(t, t - r, sc, mc);
          const int len = std::min(k, 4);
          if (len == 2) p.assign(X, {{X, sc}, {E, mc * 1.5}, {H0, mc * -0.5}});
          else if (len == 3) p.assign(X, {{X, sc}, {E, mc * 23 / 12}, {H0, mc * -16 / 12}, {H1, mc * 5 / 12}});
          else p.assign(X, {{X, sc}, {E, mc * 55 / 24}, {H0, mc * -59 / 24}, {H1, mc * 37 / 24}, {H2, mc * -9 / 24}});
          p.assign(H2, {{H1, 1.0}});
          p.assign(H1, {{H0, 1.0}});
          p.assign(H0, {{E, 1.0}});
        }
        break;
      }
      case SchedulerKind::Lms: {
        const int order = std::min(i + 1, 4);
        const int stored = std::min(k + 1, 4);
        const int used = std::min(order, stored);
        double co[4] = {0, 0, 0, 0};
        for (int j = 0; j < used; ++j) co[j] = lms_coefficient(sg, order, i, j);
        p.assign(X, {{X, 1.0}, {E, co[0]}, {H0, co[1]}, {H1, co[2]}, {H2, co[3]}});
        p.assign(H2, {{H1, 1.0}});
        p.assign(H1, {{H0, 1.0}});
        p.assign(H0, {{E, 1.0}});
        break;
      }
      case SchedulerKind::Euler: {
        const double sn = sg[static_cast<std::size_t>(i) + 1];
        p.assign(X, {{X, 1.0}, {E, sn - s.sigma}});
        break;
      }
      case SchedulerKind::EulerAncestral: {
        const double sf = s.sigma, st = sg[static_cast<std::size_t>(i) + 1];
        const double up = std::sqrt(st * st * (sf * sf - st * st) / (sf * sf));
        const double down = std::sqrt(st * st - up * up);
        p.assign(X, {{X, 1.0}, {E, down - sf}, {Nz, up}});
        p.noisy = up != 0.0;
        break;
      }
      case SchedulerKind::Heun: {
        // derivative in H0, the step's starting sample in H1 (diffusers' prev_derivative, sample)
        const bool first = (k % 2) == 0;
        if (first) {
          const double sgm = sg[static_cast<std::size_t>(i)], sn = sg[static_cast<std::size_t>(i) + 1];
          const double dt = sn - sgm;
          p.assign(H1, {{X, 1.0}});
          if (clip) {
            p.assign(T0, {{X, 1.0}, {E, -sgm}}, true, range);
            p.assign(H0, {{X, 1.0 / sgm}, {T0, -1.0 / sgm}});
          } else {
            p.assign(H0, {{E, 1.0}});
          }
          p.assign(X, {{X, 1.0}, {H0, dt}});
        } else {
          const double sgm = sg[static_cast<std::size_t>(i) - 1], sn = sg[static_cast<std::size_t>(i)];
          const double dt = sn - sgm;
          if (clip) {
            p.assign(T0, {{X, 1.0}, {E, -sn}}, true, range);
            p.assign(T1, {{X, 1.0 / sn}, {T0, -1.0 / sn}});
            p.assign(X, {{H1, 1.0}, {H0, 0.5 * dt}, {T1, 0.5 * dt}});
          } else {
            p.assign(X, {{H1, 1.0}, {H0, 0.5 * dt}, {E, 0.5 * dt}});
          }
        }
        break;
      }
      case SchedulerKind::DpmSolverPP2M:
      case SchedulerKind::DpmSolverPP2MSde: {
        const bool sde = kind == SchedulerKind::DpmSolverPP2MSde;
        const Vp vs = vp(sg[static_cast<std::size_t>(i)]);
        const double st_sigma = sg[static_cast<std::size_t>(i) + 1];
        p.assign(T0, {{X, 1.0 / vs.alpha}, {E, -vs.sigma / vs.alpha}});  // x̂0 (data prediction)
        const bool first_order = k == 0 || i == count - 1;
        if (st_sigma == 0.0) {
          p.assign(X, {{T0, 1.0}});  // σ_t = 0: h = ∞, the update is x̂0 (and the SDE's noise term is 0)
        } else {
          const Vp vt = vp(st_sigma);
          const double h = vt.lambda - vs.lambda;
          double cx, cd, cn = 0;
          if (!sde) {
            cx = vt.sigma / vs.sigma;
            cd = -vt.alpha * (std::exp(-h) - 1.0);
          } else {
            cx = vt.sigma / vs.sigma * std::exp(-h);
            cd = vt.alpha * (1.0 - std::exp(-2.0 * h));
            cn = vt.sigma * std::sqrt(1.0 - std::exp(-2.0 * h));
          }
          if (first_order) {
            p.assign(X, {{X, cx}, {T0, cd}, {Nz, cn}});
          } else {
            const Vp v1 = vp(sg[static_cast<std::size_t>(i) - 1]);
            const double r0 = (vs.lambda - v1.lambda) / h;
            const double c1 = 0.5 * cd / r0;  // 0.5·cd·D1 with D1 = (m0 − m1)/r0
            p.assign(X, {{X, cx}, {T0, cd + c1}, {H0, -c1}, {Nz, cn}});
          }
          p.noisy = cn != 0.0;
        }
        p.assign(H0, {{T0, 1.0}});
        break;
      }
      case SchedulerKind::UniPC: {
        // model_outputs newest first in H0, H1; last_sample in H2
        const Vp vs = vp(sg[static_cast<std::size_t>(i)]);
        p.assign(T0, {{X, 1.0 / vs.alpha}, {E, -vs.sigma / vs.alpha}});  // m_t
        if (k >= 1) {
          // corrector UniC-bh2 of the previous step's order, from last_sample
          const Vp vs0 = vp(sg[static_cast<std::size_t>(i) - 1]);
          const double h = vs.lambda - vs0.lambda, hh = -h;
          const double h1 = std::expm1(hh), B = std::expm1(hh);
          const double a = vs.sigma / vs0.sigma, at = vs.alpha;
          if (unipc_prev_order == 1) {
            p.assign(X, {{H2, a}, {H0, -at * h1 + at * B * 0.5}, {T0, -at * B * 0.5}});
          } else {
            const Vp vs1 = vp(sg[static_cast<std::size_t>(i) - 2]);
            const double r1 = (vs1.lambda - vs0.lambda) / h;
            double hpk = h1 / hh - 1.0;
            const double b1 = hpk * 1.0 / B;
            hpk = hpk / hh - 1.0 / 2.0;
            const double b2 = hpk * 2.0 / B;
            const double det = 1.0 - r1;  // R = [[1, 1], [r1, 1]]
            const double rho0 = (b1 - b2) / det, rho1 = (b2 - r1 * b1) / det;
            // x = a·last − α h1 m0 − α B (ρ0 (m1 − m0)/r1 + ρ1 (m_t − m0))
            p.assign(X, {{H2, a}, {H0, -at * h1 + at * B * (rho0 / r1 + rho1)}, {H1, -at * B * rho0 / r1}, {T0, -at * B * rho1}});
          }
        }
        p.assign(H1, {{H0, 1.0}});
        p.assign(H0, {{T0, 1.0}});
        p.assign(H2, {{X, 1.0}});
        const int this_order = std::min({2, count - i, std::min(k, 2) + 1});
        unipc_prev_order = this_order;
        const double st_sigma = sg[static_cast<std::size_t>(i) + 1];
        if (st_sigma == 0.0) {
          p.assign(X, {{T0, 1.0}});  // σ_t = 0: order 1 (lower_order_final), the update is m_t
        } else {
          const Vp vt = vp(st_sigma);
          const double h = vt.lambda - vs.lambda, hh = -h;
          const double h1 = std::expm1(hh), B = std::expm1(hh);
          const double a = vt.sigma / vs.sigma, at = vt.alpha;
          if (this_order == 1) {
            p.assign(X, {{X, a}, {T0, -at * h1}});
          } else {
            const Vp v1 = vp(sg[static_cast<std::size_t>(i) - 1]);
            const double r1 = (v1.lambda - vs.lambda) / h;
            // x = a·x − α h1 m0 − α B · 0.5 · (m1 − m0)/r1, m1 the previous m (now H1)
            p.assign(X, {{X, a}, {T0, -at * h1 + at * B * 0.5 / r1}, {H1, -at * B * 0.5 / r1}});
          }
        }
        break;
      }
    }
    plan.steps.push_back(s);
  }
  // each call's program ends by writing the next call's U-Net input
  for (std::size_t j = 0; j < plan.steps.size(); ++j)
    plan.steps[j].program.next_in_scale = j + 1 < plan.steps.size() ? plan.steps[j + 1].model_in_scale : 1.0;
  int hist = 0;
  for (const auto& s : plan.steps) {
    const std::uint32_t used = s.program.reads() | s.program.writes();
    for (int r = 0; r < kHistorySlots; ++r)
      if (used & (1u << (kRegH0 + r))) hist = std::max(hist, r + 1);
    plan.stochastic = plan.stochastic || s.program.noisy;
  }
  plan.history = hist;
  return plan;
}

}  // namespace brainlatent
