// Scheduler reference values (sd-onnx.md §6) and diffusers' timestep / strength rules.
#include <cmath>

#include "brainlatent/error.h"
#include "brainlatent/scheduler.h"
#include "sd_test_util.h"

using namespace brainlatent;

int main() {
  ScheduleConfig cfg;  // SD 1.x defaults
  const auto ac = alphas_cumprod(cfg);
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
  auto t20 = inference_timesteps(cfg, SchedulerKind::Ddim, 20);
  SD_CHECK(t20.size() == 20 && t20.front() == 951 && t20[1] == 901 && t20.back() == 1);
  auto t50 = inference_timesteps(cfg, SchedulerKind::Ddim, 50);
  SD_CHECK(t50.size() == 50 && t50.front() == 981 && t50[1] == 961 && t50[48] == 21 && t50.back() == 1);
  auto e20 = inference_timesteps(cfg, SchedulerKind::Euler, 20);
  SD_CHECK(e20 == t20);
  // DPM-Solver uses steps + 1 points: ratio 1000 // 21 = 47
  auto d20 = inference_timesteps(cfg, SchedulerKind::DpmSolverPP2M, 20);
  SD_CHECK(d20.size() == 20 && d20.front() == 941 && d20.back() == 48);
  // trailing: round(arange(1000, 0, -1000/7)) - 1
  ScheduleConfig trailing = cfg;
  trailing.spacing = TimestepSpacing::Trailing;
  auto tt = inference_timesteps(trailing, SchedulerKind::Ddim, 7);
  const double tt_ref[] = {999, 856, 713, 570, 428, 285, 142};
  SD_CHECK(tt.size() == 7);
  for (int i = 0; i < 7 && i < static_cast<int>(tt.size()); ++i) SD_CHECK_NEAR(tt[static_cast<std::size_t>(i)], tt_ref[i], 0);
  // linspace: round(linspace(0, 999, 4))[::-1] = 999, 666, 333, 0
  ScheduleConfig lin = cfg;
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
  SD_CHECK(p.steps.back().coeffs.c_eps == static_cast<float>(-p.steps.back().sigma));  // last step to sigma 0

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
    const auto& k = s.coeffs;
    const double got = k.c_d * (k.p * x + k.q * eps) + k.c_eps * eps + k.c_noise * z;
    SD_CHECK_NEAR(got, ref, 2e-6);
    SD_CHECK(k.noise_stream == 11);
    // last step goes to alpha_0 (set_alpha_to_one false)
    const auto& last = p.steps.back();
    SD_CHECK_NEAR(last.coeffs.c_d, std::sqrt(ac[0]), 1e-7);
  }

  // Bad input
  SD_CHECK_THROWS(make_sampler_plan(cfg, SchedulerKind::Ddim, 0, 0.5), ErrorCode::InvalidArgument);
  SD_CHECK_THROWS(make_sampler_plan(cfg, SchedulerKind::Ddim, 20, 0.0), ErrorCode::InvalidArgument);
  SD_CHECK_THROWS(make_sampler_plan(cfg, SchedulerKind::Ddim, 20, 1.5), ErrorCode::InvalidArgument);
  SD_CHECK_THROWS(make_sampler_plan(cfg, SchedulerKind::Ddim, 20, 0.01), ErrorCode::InvalidArgument);
  SD_CHECK_THROWS(make_sampler_plan(cfg, SchedulerKind::Euler, 20, 0.5, 0.3), ErrorCode::InvalidArgument);
  SD_CHECK_THROWS(parse_scheduler_kind("pndm"), ErrorCode::InvalidArgument);
  return sdtest::finish("test_scheduler");
}
