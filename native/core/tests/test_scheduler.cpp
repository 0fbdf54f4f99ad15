// Scheduler reference values (sd-onnx.md §6) and diffusers' timestep / strength rules.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "brainlatent/error.h"
#include "brainlatent/scheduler.h"
#include "sd_test_util.h"

using namespace brainlatent;

namespace {

// Evaluates a step program on one element in float64 (registers as sd_fused_step.h defines them).
double run_program(const StepProgram& p, double x, double eps, double noise, std::vector<double> hist,
                   std::vector<double>* hist_out = nullptr) {
  double r[kRegCount] = {};
  r[kRegX] = x;
  r[kRegE] = eps;
  r[kRegN] = noise;
  hist.resize(kHistorySlots, 0.0);
  for (int h = 0; h < kHistorySlots; ++h) r[kRegH0 + h] = hist[static_cast<std::size_t>(h)];
  for (int i = 0; i < p.ops; ++i) {
    double acc = 0;
    for (int k = 0; k < p.op[i].terms; ++k) acc += p.op[i].term[k].coeff * r[p.op[i].term[k].reg];
    if (p.op[i].clamp) acc = std::min(p.op[i].clamp_range, std::max(-p.op[i].clamp_range, acc));
    r[p.op[i].dst] = acc;
  }
  if (hist_out) {
    hist_out->assign(kHistorySlots, 0.0);
    for (int h = 0; h < kHistorySlots; ++h) (*hist_out)[static_cast<std::size_t>(h)] = r[kRegH0 + h];
  }
  return r[kRegX];
}

// The details of diffusers that are easy to get wrong, each as its source has it.
void easy_to_get_wrong(const ScheduleConfig& leading, const std::vector<double>& ac) {
  const ScheduleConfig sd = sd15_schedule();  // names no timestep_spacing: each class's default applies
  // class defaults: DDIM, PNDM, DDPM leading; the others linspace
  SD_CHECK(resolve_schedule(sd, SchedulerKind::Ddim).spacing == TimestepSpacing::Leading);
  SD_CHECK(resolve_schedule(sd, SchedulerKind::Pndm).spacing == TimestepSpacing::Leading);
  SD_CHECK(resolve_schedule(sd, SchedulerKind::Ddpm).spacing == TimestepSpacing::Leading);
  for (auto k : {SchedulerKind::Euler, SchedulerKind::EulerAncestral, SchedulerKind::Lms, SchedulerKind::Heun,
                 SchedulerKind::DpmSolverPP2M, SchedulerKind::DpmSolverPP2MSde, SchedulerKind::UniPC})
    SD_CHECK(resolve_schedule(sd, k).spacing == TimestepSpacing::Linspace);
  // a config without set_alpha_to_one/clip_sample gets DDIM's own defaults (true, true)
  ScheduleConfig bare;
  SD_CHECK(resolve_schedule(bare, SchedulerKind::Ddim).set_alpha_to_one && resolve_schedule(bare, SchedulerKind::Ddim).clip_sample);
  SD_CHECK(!resolve_schedule(bare, SchedulerKind::Pndm).set_alpha_to_one);

  // leading spacing with steps_offset 1: 999 steps end at timestep 999, 1000 would pass it (diffusers
  // indexes past alphas_cumprod there): refused, never read out of range
  SD_CHECK(make_sampler_plan(sd, SchedulerKind::Pndm, 999, 1.0).steps.front().timestep == 999);
  SD_CHECK_THROWS(make_sampler_plan(sd, SchedulerKind::Pndm, 1000, 1.0), ErrorCode::InvalidArgument);
  SD_CHECK_THROWS(make_sampler_plan(sd, SchedulerKind::Ddim, 1000, 1.0), ErrorCode::InvalidArgument);
  // PNDM (skip_prk_steps): N+1 timesteps, the second doubled; N=10, s=0.8 starts at 801 with 9 calls,
  // the PLMS warm-up redoing 801 -> 701 from the saved sample with the averaged eps.
  auto pn = make_sampler_plan(sd, SchedulerKind::Pndm, 10, 0.8);
  const std::vector<double> pts{901, 801, 801, 701, 601, 501, 401, 301, 201, 101, 1};
  SD_CHECK(pn.timesteps == pts);
  SD_CHECK(pn.steps.size() == 9 && pn.steps.front().timestep == 801 && pn.noise_timestep == 801);
  SD_CHECK(pn.steps[1].timestep == 701);
  {
    auto prev = [&](int t, int tp, double x, double e) {
      const double at = ac[static_cast<std::size_t>(t)], ap = ac[static_cast<std::size_t>(tp)];
      return std::sqrt(ap / at) * x - (ap - at) * e / (at * std::sqrt(1 - ap) + std::sqrt(at * (1 - at) * ap));
    };
    std::vector<double> h;
    const double x1 = run_program(pn.steps[0].program, 0.9, 0.2, 0, {}, &h);
    SD_CHECK_NEAR(x1, prev(801, 701, 0.9, 0.2), 1e-14);
    const double x2 = run_program(pn.steps[1].program, x1, -0.4, 0, h, &h);
    SD_CHECK_NEAR(x2, prev(801, 701, 0.9, 0.5 * (0.2 - 0.4)), 1e-14);
    const double x3 = run_program(pn.steps[2].program, x2, 0.3, 0, h, &h);  // t = 601 -> 501, (3·e2 − e0)/2
    SD_CHECK_NEAR(x3, prev(601, 501, x2, (3 * 0.3 - 0.2) / 2), 1e-14);
  }
  SD_CHECK(make_sampler_plan(sd, SchedulerKind::Pndm, 10, 1.0).steps.size() == 11);
  // strength·steps < 1: diffusers' timesteps[N:] is PNDM's last timestep alone (it has N + 1), one call from the
  // sample noised at t_0 to the final ᾱ; at one step PNDM has one timestep, and nothing is left
  {
    auto one = make_sampler_plan(sd, SchedulerKind::Pndm, 3, 0.3);
    SD_CHECK(one.steps.size() == 1 && one.steps.front().timestep == 1 && one.noise_timestep == 1 && one.t_start == 3);
    const double a1 = ac[1], a0 = ac[0];  // SD's set_alpha_to_one false: the final ᾱ is ᾱ_0
    const double want = std::sqrt(a0 / a1) * 0.9 - (a0 - a1) * 0.2 / (a1 * std::sqrt(1 - a0) + std::sqrt(a1 * (1 - a1) * a0));
    SD_CHECK_NEAR(run_program(one.steps.front().program, 0.9, 0.2, 0, {}, nullptr), want, 1e-14);
    SD_CHECK_THROWS(make_sampler_plan(sd, SchedulerKind::Pndm, 1, 0.3), ErrorCode::InvalidArgument);
    SD_CHECK_THROWS(make_sampler_plan(sd, SchedulerKind::Ddim, 3, 0.3), ErrorCode::InvalidArgument);
  }

  // Heun: 2N-1 timesteps, order 2: N=10, s=0.8 -> timesteps[4:] = 15 calls, begin index 4
  auto he = make_sampler_plan(sd, SchedulerKind::Heun, 10, 0.8);
  SD_CHECK(he.timesteps.size() == 19 && he.steps.size() == 15 && he.begin_index == 4 && he.t_start == 2);
  SD_CHECK(he.timesteps[1] == he.timesteps[2] && he.timesteps[3] == he.timesteps[4]);
  SD_CHECK(he.noise_timestep == he.timesteps[4]);

  // DPM-Solver and UniPC with leading spacing use N+1 points: 901, 811, 721, … -> start at 721
  for (auto k : {SchedulerKind::DpmSolverPP2M, SchedulerKind::DpmSolverPP2MSde, SchedulerKind::UniPC}) {
    auto d = make_sampler_plan(leading, k, 10, 0.8);
    SD_CHECK(d.timesteps.front() == 901 && d.timesteps[1] == 811 && d.steps.front().timestep == 721 && d.steps.size() == 8);
  }

  // LMS: order min(step_index + 1, 4) from the absolute index, only as many coefficients as stored
  // derivatives: at N=10, s=0.5 the first call (index 5) uses the first basis polynomial of order 4.
  {
    auto lm = make_sampler_plan(sd, SchedulerKind::Lms, 10, 0.5);
    SD_CHECK(lm.begin_index == 5 && lm.steps.size() == 5);
    const auto& p0 = lm.steps[0].program;
    // x + c0·eps only (H slots are empty but not used)
    SD_CHECK(p0.op[0].terms == 2);
    // the textbook first step (order 1: Euler) differs: c0 != σ_{i+1} − σ_i
    const double euler = lm.steps[1].sigma - lm.steps[0].sigma;
    const double c0 = p0.op[0].term[1].coeff;
    std::printf("LMS first img2img coefficient %.6f vs Euler's %.6f (relative difference %.2e)\n", c0, euler,
                std::fabs(c0 - euler) / std::fabs(euler));
    SD_CHECK(std::fabs(c0 - euler) > 1e-3 * std::fabs(euler));
    // the second call uses 2 derivatives of the order-4 polynomial
    SD_CHECK(lm.steps[1].program.op[0].terms == 3);
    SD_CHECK(lm.steps[3].program.op[0].terms == 5);
  }

  // Karras: Euler spans the leading schedule's sigmas with fractional timesteps; DPM-Solver spans
  // σ(0)…σ(999) with rounded ones.
  {
    ScheduleConfig k = leading;
    k.use_karras_sigmas = true;
    auto eu = make_sampler_plan(k, SchedulerKind::Euler, 10, 1.0);
    const double smax = std::sqrt((1 - ac[901]) / ac[901]), smin = std::sqrt((1 - ac[1]) / ac[1]);
    SD_CHECK_NEAR(eu.steps.front().sigma, smax, 1e-6 * smax);
    SD_CHECK_NEAR(eu.steps.back().sigma, smin, 1e-6 * smin);
    SD_CHECK(eu.steps[3].timestep != std::floor(eu.steps[3].timestep));
    auto dk = make_sampler_plan(k, SchedulerKind::DpmSolverPP2M, 10, 1.0);
    const double dmax = std::sqrt((1 - ac[999]) / ac[999]), dmin = std::sqrt((1 - ac[0]) / ac[0]);
    SD_CHECK_NEAR(dk.steps.front().sigma, dmax, 1e-6 * dmax);
    SD_CHECK_NEAR(dk.steps.back().sigma, dmin, 1e-6 * dmin);
    SD_CHECK(dk.steps.front().timestep == 999 && dk.steps.back().timestep == 0);
    for (const auto& st : dk.steps) SD_CHECK(st.timestep == std::floor(st.timestep));
    SD_CHECK_THROWS(make_sampler_plan(k, SchedulerKind::EulerAncestral, 10, 1.0), ErrorCode::InvalidArgument);
    SD_CHECK_THROWS(make_sampler_plan(k, SchedulerKind::Ddim, 10, 1.0), ErrorCode::InvalidArgument);
  }
}

// Config validation: betas in (0, 1), known enumerations, errors naming the file and the field.
void config_checks() {
  auto message = [](const ScheduleConfig& c) {
    try {
      make_sampler_plan(c, SchedulerKind::Ddim, 10, 0.5);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  ScheduleConfig c = sd15_schedule();
  c.source = "m/scheduler/scheduler_config.json";
  c.beta_start = -1;
  SD_CHECK(message(c).find("m/scheduler/scheduler_config.json: beta_start must be in (0, 1), got -1") != std::string::npos);
  c = sd15_schedule();
  c.beta_end = 1.5;
  SD_CHECK(message(c).find("beta_end must be in (0, 1)") != std::string::npos);
  c = sd15_schedule();
  c.beta_schedule = "cosine";
  SD_CHECK(message(c).find("beta_schedule is 'cosine'") != std::string::npos);
  c = sd15_schedule();
  c.prediction_type = "v_prediction";
  SD_CHECK(message(c).find("prediction_type is 'v_prediction'") != std::string::npos);
  c = sd15_schedule();
  c.num_train_timesteps = 1;
  SD_CHECK(message(c).find("num_train_timesteps") != std::string::npos);
  // betas in (0, 1) whose product underflows leave no usable schedule
  c = sd15_schedule();
  c.beta_schedule = "linear";
  c.beta_start = 0.5;
  c.beta_end = 0.999999;
  SD_CHECK(message(c).find("underflows") != std::string::npos);
}

}  // namespace


int main() {
  ScheduleConfig cfg = sd15_schedule();
  cfg.spacing = TimestepSpacing::Leading;  // SD 1.x as DDIM/PNDM run it
  const ResolvedSchedule rcfg = resolve_schedule(cfg, SchedulerKind::Ddim);
  const auto ac = alphas_cumprod(rcfg);
  SD_CHECK(ac.size() == 1000);
  const int ts_ref[] = {0, 1, 21, 261, 501, 701, 781, 801, 951, 981, 999};
  const double ac_ref[] = {0.999150, 0.998296, 0.980381, 0.655669, 0.274999, 0.0819167,
                           0.0434560, 0.0365465, 0.00815500, 0.00577550, 0.00466010};
  const double sig_ref[] = {0.029167, 0.041314, 0.14146, 0.72468, 1.6237, 3.3478, 4.6917, 5.1344, 11.028, 13.120, 14.615};
  for (int i = 0; i < 11; ++i) {
    const double a = ac[static_cast<std::size_t>(ts_ref[i])];
    SD_CHECK_NEAR(a, ac_ref[i], 6e-7 + 5e-6 * ac_ref[i]);
    SD_CHECK_NEAR(std::sqrt((1 - a) / a), sig_ref[i], 5e-5 * sig_ref[i]);
  }

  // leading spacing, steps_offset 1
  auto t20 = inference_timesteps(rcfg, SchedulerKind::Ddim, 20);
  SD_CHECK(t20.size() == 20 && t20.front() == 951 && t20[1] == 901 && t20.back() == 1);
  auto t50 = inference_timesteps(rcfg, SchedulerKind::Ddim, 50);
  SD_CHECK(t50.size() == 50 && t50.front() == 981 && t50[1] == 961 && t50[48] == 21 && t50.back() == 1);
  auto e20 = inference_timesteps(rcfg, SchedulerKind::Euler, 20);
  SD_CHECK(e20 == t20);
  // DPM-Solver uses steps + 1 points: ratio 1000 // 21 = 47
  auto d20 = inference_timesteps(rcfg, SchedulerKind::DpmSolverPP2M, 20);
  SD_CHECK(d20.size() == 20 && d20.front() == 941 && d20.back() == 48);
  // trailing: round(arange(1000, 0, -1000/7)) - 1
  ResolvedSchedule trailing = rcfg;
  trailing.spacing = TimestepSpacing::Trailing;
  auto tt = inference_timesteps(trailing, SchedulerKind::Ddim, 7);
  const double tt_ref[] = {999, 856, 713, 570, 428, 285, 142};
  SD_CHECK(tt.size() == 7);
  for (int i = 0; i < 7 && i < static_cast<int>(tt.size()); ++i) SD_CHECK_NEAR(tt[static_cast<std::size_t>(i)], tt_ref[i], 0);
  // linspace: round(linspace(0, 999, 4))[::-1] = 999, 666, 333, 0
  ResolvedSchedule lin = rcfg;
  lin.spacing = TimestepSpacing::Linspace;
  auto tl = inference_timesteps(lin, SchedulerKind::Ddim, 4);
  SD_CHECK(tl.size() == 4 && tl[0] == 999 && tl[1] == 666 && tl[2] == 333 && tl[3] == 0);

  // img2img strength (diffusers): N=20, s=0.75 -> 15 steps from 701, noised at 701
  auto p = make_sampler_plan(cfg, SchedulerKind::Ddim, 20, 0.75);
  SD_CHECK(p.steps.size() == 15 && p.t_start == 5 && p.steps.front().timestep == 701 && p.noise_timestep == 701);
  SD_CHECK_NEAR(p.init_x_scale, std::sqrt(ac[701]), 1e-12);
  SD_CHECK_NEAR(p.init_noise_scale, std::sqrt(1 - ac[701]), 1e-12);
  // N=50, s=0.8 -> 40 steps from 781
  p = make_sampler_plan(cfg, SchedulerKind::Ddim, 50, 0.8);
  SD_CHECK(p.steps.size() == 40 && p.steps.front().timestep == 781 && p.steps.back().timestep == 1);
  // N=50, s=0.75 -> int(37.5) = 37 steps
  p = make_sampler_plan(cfg, SchedulerKind::Ddim, 50, 0.75);
  SD_CHECK(p.steps.size() == 37);
  // CompVis rule: noised one DDIM step above, at 801 (alpha 0.0365465), then 781 ... 1
  p = make_sampler_plan(cfg, SchedulerKind::Ddim, 50, 0.8, 0.0, Img2ImgRule::CompVis);
  SD_CHECK(p.noise_timestep == 801 && p.steps.size() == 40 && p.steps.front().timestep == 781);
  SD_CHECK_NEAR(p.noise_alpha_cumprod, 0.0365465, 1e-6);

  // Euler: init_noise_sigma sqrt(sigma_max^2 + 1) = 11.0736 for N = 20
  p = make_sampler_plan(cfg, SchedulerKind::Euler, 20, 1.0);
  SD_CHECK_NEAR(p.steps.front().sigma, 11.0283, 2e-4);
  SD_CHECK_NEAR(std::sqrt(p.steps.front().sigma * p.steps.front().sigma + 1), 11.0736, 2e-4);
  SD_CHECK_NEAR(p.steps.front().model_in_scale, 1 / 11.0736, 1e-5);
  SD_CHECK_NEAR(p.init_noise_scale, p.steps.front().sigma, 0);
  {
    const auto& last = p.steps.back().program;  // last step to sigma 0: x + (0 - sigma)·eps
    SD_CHECK(last.ops == 1 && last.op[0].terms == 2 && last.op[0].term[1].reg == kRegE);
    SD_CHECK(last.op[0].term[1].coeff == -p.steps.back().sigma);
  }

  // One DDIM step (eta 0.5) against the formula written out here.
  p = make_sampler_plan(cfg, SchedulerKind::Ddim, 50, 1.0, 0.5);
  {
    const auto& s = p.steps[10];  // t = 781, prev = 761
    SD_CHECK(s.timestep == 781);
    const double a_t = ac[781], a_p = ac[761];
    const double x = 0.7, eps = -0.3, z = 1.25;
    const double x0 = (x - std::sqrt(1 - a_t) * eps) / std::sqrt(a_t);
    const double sd = 0.5 * std::sqrt((1 - a_p) / (1 - a_t) * (1 - a_t / a_p));
    const double ref = std::sqrt(a_p) * x0 + std::sqrt(1 - a_p - sd * sd) * eps + sd * z;
    const double got = run_program(s.program, x, eps, z, {});
    SD_CHECK_NEAR(got, ref, 1e-12);
    SD_CHECK(s.program.noise_stream == 11 && s.program.noisy);
    // last step goes to alpha_0 (set_alpha_to_one false)
    const auto& last = p.steps.back().program;
    SD_CHECK(last.op[1].term[0].reg == kRegT0);
    SD_CHECK_NEAR(last.op[1].term[0].coeff, std::sqrt(ac[0]), 1e-15);
  }

  // DDIM's largest eta: the smallest √((1 − ᾱ_t)·ᾱ_prev / (ᾱ_prev − ᾱ_t)) over the steps that run; at it the plan
  // is made, just above it refused naming the bound; 1 exactly when the last step ends at ᾱ = 1; 0 for the others.
  {
    p = make_sampler_plan(cfg, SchedulerKind::Ddim, 50, 0.8);
    double bound = 1e300;
    for (const auto& s : p.steps) {
      const int t = static_cast<int>(s.timestep), prev = t - 20;
      const double a_t = ac[static_cast<std::size_t>(t)], a_p = prev >= 0 ? ac[static_cast<std::size_t>(prev)] : ac[0];
      if (a_p > a_t) bound = std::min(bound, std::sqrt((1 - a_t) * a_p / (a_p - a_t)));
    }
    SD_CHECK_NEAR(p.max_eta, bound, 1e-15);
    SD_CHECK(p.max_eta > 1.0);
    SD_CHECK(make_sampler_plan(cfg, SchedulerKind::Ddim, 50, 0.8, p.max_eta).eta == p.max_eta);
    SD_CHECK_THROWS(make_sampler_plan(cfg, SchedulerKind::Ddim, 50, 0.8, p.max_eta * 1.000001), ErrorCode::InvalidArgument);
    ScheduleConfig to_one = cfg;
    to_one.set_alpha_to_one = true;
    SD_CHECK_NEAR(make_sampler_plan(to_one, SchedulerKind::Ddim, 50, 0.8).max_eta, 1.0, 1e-12);
    SD_CHECK(make_sampler_plan(cfg, SchedulerKind::Euler, 50, 0.8).max_eta == 0.0);
  }
  // A σ-based plan's ᾱ is 1/(1+σ²) of the float32 σ it runs, the same value for the noise and the first call.
  {
    p = make_sampler_plan(cfg, SchedulerKind::Euler, 3, 1.0);
    SD_CHECK(p.noise_alpha_cumprod == p.steps.front().alpha_cumprod);
    SD_CHECK(p.steps.front().alpha_cumprod == 1.0 / (1.0 + p.steps.front().sigma * p.steps.front().sigma));
  }

  // Bad input
  SD_CHECK_THROWS(make_sampler_plan(cfg, SchedulerKind::Ddim, 0, 0.5), ErrorCode::InvalidArgument);
  SD_CHECK_THROWS(make_sampler_plan(cfg, SchedulerKind::Ddim, 20, 0.0), ErrorCode::InvalidArgument);
  SD_CHECK_THROWS(make_sampler_plan(cfg, SchedulerKind::Ddim, 20, 1.5), ErrorCode::InvalidArgument);
  SD_CHECK_THROWS(make_sampler_plan(cfg, SchedulerKind::Ddim, 20, 0.01), ErrorCode::InvalidArgument);
  SD_CHECK_THROWS(make_sampler_plan(cfg, SchedulerKind::Euler, 20, 0.5, 0.3), ErrorCode::InvalidArgument);
  SD_CHECK_THROWS(parse_scheduler_kind("plms"), ErrorCode::InvalidArgument);
  easy_to_get_wrong(cfg, ac);
  config_checks();
  return sdtest::finish("test_scheduler");
}
