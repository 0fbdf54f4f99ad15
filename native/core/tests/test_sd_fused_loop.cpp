// Philox known-answer vectors, and the fused loop on a fake U-Net checked against diffusers'
// step functions written out literally here in float64 (DDIM eta 0 and 0.5, Euler,
// DPM-Solver++(2M)), with and without guidance; batch-size and order independence; cancel.
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "brainlatent/error.h"
#include "brainlatent/philox.h"
#include "brainlatent/sd_sampler.h"
#include "sd_test_util.h"

using namespace brainlatent;

namespace {

// eps = tanh(0.5·in + 0.001·t) + 0.1·mean(cond row)
double fake_eps(double in, double t, double cond_mean) { return std::tanh(0.5 * in + 0.001 * t) + 0.1 * cond_mean; }

class FakeUNet : public UNetRunner {
 public:
  void prepare(std::int64_t rows, std::int64_t c, std::int64_t h, std::int64_t w, const float* cond, std::int64_t seq,
               std::int64_t dim) override {
    rows_ = rows;
    n_ = c * h * w;
    in_.assign(static_cast<std::size_t>(rows * n_), 0.f);
    out_.assign(in_.size(), 0.f);
    means_.assign(static_cast<std::size_t>(rows), 0.0);
    for (std::int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (std::int64_t k = 0; k < seq * dim; ++k) s += cond[r * seq * dim + k];
      means_[static_cast<std::size_t>(r)] = s / static_cast<double>(seq * dim);
    }
  }
  float* input() override { return in_.data(); }
  const float* output() override { return out_.data(); }
  void run(double t) override {
    ++calls;
    for (std::int64_t r = 0; r < rows_; ++r)
      for (std::int64_t j = 0; j < n_; ++j)
        out_[static_cast<std::size_t>(r * n_ + j)] =
            static_cast<float>(fake_eps(in_[static_cast<std::size_t>(r * n_ + j)], t, means_[static_cast<std::size_t>(r)]));
    if (cancel_after > 0 && calls == cancel_after && flag) flag->store(true);
    if (interrupt_at > 0 && calls == interrupt_at) {
      // a cancel arriving during this call: the flag, then the relay, as the addon's cancel token fires them; the call
      // then fails as ONNX Runtime's run does when its terminate flag is set
      flag->store(true);
      relay->fire();
      if (interrupted) throw Error(ErrorCode::Internal, "running unet.onnx: Exiting due to terminate flag being set to true.");
    }
  }
  void request_cancel() override { interrupted = true; }
  int interrupt_at = 0;
  CancelRelayPtr relay;
  bool interrupted = false;
  int calls = 0;
  int cancel_after = 0;
  std::atomic<bool>* flag = nullptr;

 private:
  std::int64_t rows_ = 0, n_ = 0;
  std::vector<float> in_, out_;
  std::vector<double> means_;
};

// diffusers, literally, in float64, one element at a time
std::vector<double> reference(const ScheduleConfig& cfg, SchedulerKind kind, int N, double strength, double eta,
                              double g, const std::vector<double>& z, const std::vector<double>& n0, double cm, double um,
                              const NoiseKey& key) {
  const ResolvedSchedule rc = resolve_schedule(cfg, kind);
  const auto ac = alphas_cumprod(rc);
  const auto ts = inference_timesteps(rc, kind, N);
  const int init = std::min(static_cast<int>(N * strength), N), t_start = N - init;
  const bool cfg_on = g > 1;
  auto eps_of = [&](double in, double t) {
    const double c = fake_eps(static_cast<float>(in), t, cm);
    if (!cfg_on) return c;
    const double u = fake_eps(static_cast<float>(in), t, um);
    return u + g * (c - u);
  };
  std::vector<double> sig(ts.size() + 1, 0.0);
  for (std::size_t i = 0; i < ts.size(); ++i) {
    const double a = ac[static_cast<std::size_t>(ts[i])];
    sig[i] = static_cast<float>(std::sqrt((1 - a) / a));
  }
  std::vector<double> x(z.size()), prev_x0(z.size());
  for (std::size_t j = 0; j < z.size(); ++j) {
    const double t0 = ts[static_cast<std::size_t>(t_start)];
    if (kind == SchedulerKind::Ddim) {
      const double a = ac[static_cast<std::size_t>(t0)];
      x[j] = std::sqrt(a) * z[j] + std::sqrt(1 - a) * n0[j];
    } else if (kind == SchedulerKind::Euler) {
      x[j] = z[j] + sig[static_cast<std::size_t>(t_start)] * n0[j];
    } else {
      const double s = sig[static_cast<std::size_t>(t_start)], a = 1 / std::sqrt(s * s + 1);
      x[j] = a * z[j] + s * a * n0[j];
    }
  }
  for (int i = t_start; i < N; ++i) {
    const double t = ts[static_cast<std::size_t>(i)];
    for (std::size_t j = 0; j < x.size(); ++j) {
      if (kind == SchedulerKind::Ddim) {
        const int prev = static_cast<int>(t) - rc.num_train_timesteps / N;
        const double a_t = ac[static_cast<std::size_t>(t)], a_p = prev >= 0 ? ac[static_cast<std::size_t>(prev)] : ac[0];
        const double e = eps_of(x[j], t);
        const double x0 = (x[j] - std::sqrt(1 - a_t) * e) / std::sqrt(a_t);
        const double var = (1 - a_p) / (1 - a_t) * (1 - a_t / a_p);
        const double sd = eta * std::sqrt(var);
        double xn = std::sqrt(a_p) * x0 + std::sqrt(1 - a_p - sd * sd) * e;
        if (eta > 0) xn += sd * philox_normal(key, static_cast<std::uint32_t>(1 + i), j);
        x[j] = xn;
      } else if (kind == SchedulerKind::Euler) {
        const double s = sig[static_cast<std::size_t>(i)], sn = sig[static_cast<std::size_t>(i) + 1];
        const double e = eps_of(x[j] / std::sqrt(s * s + 1), t);
        const double x0 = x[j] - s * e;
        x[j] = x[j] + (x[j] - x0) / s * (sn - s);
      } else {
        auto as = [](double s, double& a, double& sg) { a = 1 / std::sqrt(s * s + 1); sg = s * a; };
        double a_s, s_s, a_t, s_t;
        as(sig[static_cast<std::size_t>(i)], a_s, s_s);
        as(sig[static_cast<std::size_t>(i) + 1], a_t, s_t);
        const double e = eps_of(x[j], t);
        const double m0 = (x[j] - s_s * e) / a_s;
        const bool first = i == t_start || i == N - 1;
        double xn;
        if (s_t == 0) {
          xn = m0;
        } else {
          const double h = (std::log(a_t) - std::log(s_t)) - (std::log(a_s) - std::log(s_s));
          if (first) {
            xn = (s_t / s_s) * x[j] - a_t * (std::exp(-h) - 1) * m0;
          } else {
            double a_1, s_1;
            as(sig[static_cast<std::size_t>(i) - 1], a_1, s_1);
            const double h0 = (std::log(a_s) - std::log(s_s)) - (std::log(a_1) - std::log(s_1));
            const double r0 = h0 / h;
            const double D0 = m0, D1 = (1 / r0) * (m0 - prev_x0[j]);
            xn = (s_t / s_s) * x[j] - a_t * (std::exp(-h) - 1) * D0 - 0.5 * a_t * (std::exp(-h) - 1) * D1;
          }
        }
        prev_x0[j] = m0;
        x[j] = xn;
      }
    }
  }
  return x;
}

}  // namespace

int main() {
  // Random123 known-answer vectors for philox4x32-10
  {
    auto r = philox4x32_10({0, 0, 0, 0}, {0, 0});
    SD_CHECK(r[0] == 0x6627e8d5u && r[1] == 0xe169c58du && r[2] == 0xbc57ac4cu && r[3] == 0x9b00dbd8u);
    r = philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu});
    SD_CHECK(r[0] == 0x408f276du && r[1] == 0x41c83b0eu && r[2] == 0xa20bc7c6u && r[3] == 0x6d5451fdu);
    r = philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u});
    SD_CHECK(r[0] == 0xd16cfe09u && r[1] == 0x94fdccebu && r[2] == 0x5001e420u && r[3] == 0x24126ea1u);
    // normals: fill == pointwise, and roughly standard
    std::vector<float> v(10001);
    philox_normal_fill({42, 3}, 0, 1, v.data(), v.size());
    double m = 0, s2 = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      SD_CHECK(v[i] == philox_normal({42, 3}, 0, i + 1) || (std::fprintf(stderr, "i=%zu\n", i), false));
      m += v[i];
      s2 += v[i] * static_cast<double>(v[i]);
      if (sdtest::failures() > 3) break;
    }
    m /= static_cast<double>(v.size());
    SD_CHECK(std::fabs(m) < 0.05 && std::fabs(s2 / static_cast<double>(v.size()) - 1) < 0.05);
  }

  ScheduleConfig cfg = sd15_schedule();
  cfg.spacing = TimestepSpacing::Leading;  // the reference below indexes ᾱ by integer timesteps
  const std::int64_t count = 3, C = 4, H = 2, W = 3, n = C * H * W, seq = 2, dim = 3;
  std::vector<float> z(static_cast<std::size_t>(count * n)), cond(static_cast<std::size_t>(count * seq * dim)),
      uncond(static_cast<std::size_t>(seq * dim));
  for (std::size_t i = 0; i < z.size(); ++i) z[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)) * 1.5);
  for (std::size_t i = 0; i < cond.size(); ++i) cond[i] = static_cast<float>(std::cos(0.11 * static_cast<double>(i)));
  for (std::size_t i = 0; i < uncond.size(); ++i) uncond[i] = static_cast<float>(0.05 * static_cast<double>(i) - 0.1);

  struct Case { SchedulerKind kind; double eta; int steps; double strength; };
  const Case cases[] = {{SchedulerKind::Ddim, 0.0, 10, 0.8}, {SchedulerKind::Ddim, 0.5, 10, 0.8},
                        {SchedulerKind::Euler, 0.0, 12, 0.75}, {SchedulerKind::DpmSolverPP2M, 0.0, 12, 0.75},
                        {SchedulerKind::DpmSolverPP2M, 0.0, 20, 1.0}};
  for (const Case& cs : cases) {
    for (float g : {1.0f, 5.0f}) {
      Img2ImgJob job;
      job.plan = make_sampler_plan(cfg, cs.kind, cs.steps, cs.strength, cs.eta);
      job.guidance = g;
      job.count = count;
      job.channels = C;
      job.height = H;
      job.width = W;
      job.seq = seq;
      job.dim = dim;
      job.z = z.data();
      job.cond = cond.data();
      job.uncond = uncond.data();
      job.uncond_rows = 1;
      for (std::int64_t i = 0; i < count; ++i) job.keys.push_back({7, static_cast<std::uint64_t>(i)});
      std::vector<float> out_b1(z.size()), out_b3(z.size()), out_b2(z.size());
      job.batch_size = 1;
      job.out = out_b1.data();
      FakeUNet u1;
      int steps_seen = 0;
      job.on_step = [&](const StepProgress& p) { steps_seen = p.step > steps_seen ? p.step : steps_seen; };
      auto st = run_img2img(u1, job);
      SD_CHECK(st.unet_calls == static_cast<std::int64_t>(job.plan.steps.size()) * count);
      SD_CHECK(steps_seen == static_cast<int>(job.plan.steps.size()));
      job.batch_size = 3;
      job.out = out_b3.data();
      FakeUNet u3;
      run_img2img(u3, job);
      job.batch_size = 2;
      job.out = out_b2.data();
      FakeUNet u2;
      run_img2img(u2, job);
      SD_CHECK(std::memcmp(out_b1.data(), out_b3.data(), sizeof(float) * z.size()) == 0);
      SD_CHECK(std::memcmp(out_b1.data(), out_b2.data(), sizeof(float) * z.size()) == 0);

      double worst = 0;
      for (std::int64_t img = 0; img < count; ++img) {
        std::vector<double> zi(static_cast<std::size_t>(n)), ni(static_cast<std::size_t>(n));
        for (std::int64_t j = 0; j < n; ++j) {
          zi[static_cast<std::size_t>(j)] = z[static_cast<std::size_t>(img * n + j)];
          ni[static_cast<std::size_t>(j)] = philox_normal(job.keys[static_cast<std::size_t>(img)], 0, static_cast<std::uint64_t>(j));
        }
        double cm = 0, um = 0;
        for (std::int64_t k = 0; k < seq * dim; ++k) {
          cm += cond[static_cast<std::size_t>(img * seq * dim + k)];
          um += uncond[static_cast<std::size_t>(k)];
        }
        cm /= static_cast<double>(seq * dim);
        um /= static_cast<double>(seq * dim);
        auto ref = reference(cfg, cs.kind, cs.steps, cs.strength, cs.eta, g, zi, ni, cm, um,
                             job.keys[static_cast<std::size_t>(img)]);
        for (std::int64_t j = 0; j < n; ++j)
          worst = std::max(worst, std::fabs(ref[static_cast<std::size_t>(j)] - out_b1[static_cast<std::size_t>(img * n + j)]));
      }
      std::printf("%-8s eta %.1f guidance %.0f: max |native - float64 reference| = %.3g\n", scheduler_kind_name(cs.kind),
                  cs.eta, static_cast<double>(g), worst);
      SD_CHECK(worst < 2e-5);
    }
  }

  // explicit initial noise equal to Philox stream 0 gives identical latents
  {
    Img2ImgJob job;
    job.plan = make_sampler_plan(cfg, SchedulerKind::Ddim, 10, 0.6);
    job.count = count; job.channels = C; job.height = H; job.width = W; job.seq = seq; job.dim = dim;
    job.z = z.data(); job.cond = cond.data();
    for (std::int64_t i = 0; i < count; ++i) job.keys.push_back({9, static_cast<std::uint64_t>(i)});
    std::vector<float> a(z.size()), b(z.size()), nz(z.size());
    for (std::int64_t i = 0; i < count; ++i) philox_normal_fill(job.keys[static_cast<std::size_t>(i)], 0, 0, nz.data() + i * n, static_cast<std::size_t>(n));
    job.out = a.data();
    FakeUNet u;
    run_img2img(u, job);
    job.noise = nz.data();
    job.out = b.data();
    run_img2img(u, job);
    SD_CHECK(std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0);

    // explicit step noise equal to Philox streams 1 + step index reproduces the default (DDIM eta 1)
    {
      Img2ImgJob sj = job;
      sj.noise = nullptr;
      sj.plan = make_sampler_plan(cfg, SchedulerKind::Ddim, 10, 0.6, 1.0);
      const std::size_t runs = sj.plan.steps.size();
      std::vector<float> steps_noise(runs * z.size()), c1(z.size()), c2(z.size());
      for (std::size_t k = 0; k < runs; ++k)
        for (std::int64_t i = 0; i < count; ++i)
          philox_normal_fill(sj.keys[static_cast<std::size_t>(i)], sj.plan.steps[k].program.noise_stream, 0,
                             steps_noise.data() + (k * static_cast<std::size_t>(count) + static_cast<std::size_t>(i)) * n,
                             static_cast<std::size_t>(n));
      sj.out = c1.data();
      sj.batch_size = 2;
      run_img2img(u, sj);
      sj.step_noise = steps_noise.data();
      sj.out = c2.data();
      run_img2img(u, sj);
      SD_CHECK(std::memcmp(c1.data(), c2.data(), sizeof(float) * c1.size()) == 0);
      steps_noise[5] = 0.0f;  // a different noise value changes the result
      run_img2img(u, sj);
      SD_CHECK(std::memcmp(c1.data(), c2.data(), sizeof(float) * c1.size()) != 0);
      steps_noise[3 * static_cast<std::size_t>(n) + 7] = std::nanf("");
      SD_CHECK_THROWS(run_img2img(u, sj), ErrorCode::NonFinite);
    }
    // non-finite inputs are refused, naming the input
    {
      Img2ImgJob nj = job;
      nj.noise = nullptr;
      std::vector<float> zb = z;
      zb[5] = std::numeric_limits<float>::infinity();
      nj.z = zb.data();
      bool named = false;
      try {
        run_img2img(u, nj);
      } catch (const Error& e) {
        named = e.code() == ErrorCode::NonFinite && std::string(e.what()).find("z (the initial latents) has a non-finite value (Inf) at index 5") != std::string::npos;
      }
      SD_CHECK(named);
    }

    // cancel: the flag set during step 2 stops the loop before step 3
    std::atomic<bool> flag{false};
    FakeUNet uc;
    uc.cancel_after = 2;
    uc.flag = &flag;
    job.cancel = &flag;
    SD_CHECK_THROWS(run_img2img(uc, job), ErrorCode::Cancelled);
    SD_CHECK(uc.calls == 2);
    // cancel during a U-Net call: the relay interrupts the call, and the interrupted call is Cancelled, not a failure
    {
      std::atomic<bool> f2{false};
      FakeUNet ui;
      ui.interrupt_at = 2;
      ui.flag = &f2;
      ui.relay = std::make_shared<CancelRelay>();
      Img2ImgJob ij = job;
      ij.cancel = &f2;
      ij.relay = ui.relay;
      SD_CHECK_THROWS(run_img2img(ui, ij), ErrorCode::Cancelled);
      SD_CHECK(ui.interrupted);
      SD_CHECK(ui.calls == 2);
    }
    // bad job
    Img2ImgJob bad = job;
    bad.cancel = nullptr;
    bad.keys.pop_back();
    SD_CHECK_THROWS(run_img2img(u, bad), ErrorCode::InvalidArgument);
    bad = job;
    bad.cancel = nullptr;
    bad.guidance = 3;
    bad.uncond = nullptr;
    SD_CHECK_THROWS(run_img2img(u, bad), ErrorCode::InvalidArgument);
  }
  return sdtest::finish("test_sd_fused_loop");
}
