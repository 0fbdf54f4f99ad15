#include "brainlatent/sd_sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>

#include "brainlatent/error.h"
#include "brainlatent/sd_fused_step.h"

namespace brainlatent {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void check_job(const Img2ImgJob& j) {
  auto bad = [](const std::string& m) { throw Error(ErrorCode::InvalidArgument, "img2img: " + m); };
  if (j.count < 1) bad("no images (count " + std::to_string(j.count) + ")");
  if (j.channels < 1 || j.height < 1 || j.width < 1)
    throw Error(ErrorCode::ShapeMismatch, "img2img: latent shape [" + std::to_string(j.channels) + "," +
                                              std::to_string(j.height) + "," + std::to_string(j.width) + "] is empty");
  if (j.seq < 1 || j.dim < 1) throw Error(ErrorCode::ShapeMismatch, "img2img: conditioning shape is empty");
  if (!j.z || !j.cond || !j.out) bad("missing z, cond or out buffer");
  if (j.guidance > 1.0f && (!j.uncond || (j.uncond_rows != 1 && j.uncond_rows != j.count)))
    bad("guidance > 1 needs an unconditional embedding with 1 or count rows");
  if (static_cast<std::int64_t>(j.keys.size()) != j.count)
    bad("expected " + std::to_string(j.count) + " noise keys, got " + std::to_string(j.keys.size()));
  if (j.batch_size < 1) bad("batchSize must be >= 1, got " + std::to_string(j.batch_size));
  if (j.plan.steps.empty()) bad("the sampler plan has no steps");
}

// The first NaN/Inf of an input, as "name has a non-finite value (nan) at index i (row r, element e)".
void check_finite(const float* a, std::int64_t count, std::int64_t per_row, const char* name) {
  if (!a) return;
  for (std::int64_t i = 0; i < count; ++i)
    if (!std::isfinite(a[i]))
      throw Error(ErrorCode::NonFinite, std::string("img2img: ") + name + " has a non-finite value (" +
                                            (std::isnan(a[i]) ? "NaN" : "Inf") + ") at index " + std::to_string(i) + " (row " +
                                            std::to_string(i / per_row) + ", element " + std::to_string(i % per_row) + ")");
}

}  // namespace

Img2ImgStats run_img2img(UNetRunner& unet, const Img2ImgJob& job) {
  check_job(job);
  {
    const std::int64_t n = job.channels * job.height * job.width, cn = job.seq * job.dim;
    check_finite(job.z, job.count * n, n, "z (the initial latents)");
    check_finite(job.cond, job.count * cn, cn, "cond (the conditioning c)");
    check_finite(job.uncond, job.guidance > 1.0f ? job.uncond_rows * cn : 0, cn, "uncond (the unconditional embedding)");
    check_finite(job.noise, job.count * n, n, "noise (the initial noise)");
    check_finite(job.step_noise, static_cast<std::int64_t>(job.plan.steps.size()) * job.count * n, n,
                 "step noise (rows are step·count + image)");
  }
  Img2ImgStats stats;
  const bool cfg = job.guidance > 1.0f;
  const int groups = cfg ? 2 : 1;
  const std::int64_t n = job.channels * job.height * job.width;
  const std::int64_t cond_n = job.seq * job.dim;
  const std::int64_t B = std::min(job.batch_size, job.count);
  const int total = static_cast<int>(job.plan.steps.size());

  // Per-job buffers sized for the largest batch, reused by every batch.
  std::vector<float> x(static_cast<std::size_t>(B * n));
  std::vector<std::vector<float>> hist(static_cast<std::size_t>(job.plan.history));
  for (auto& h : hist) h.assign(static_cast<std::size_t>(B * n), 0.0f);
  std::vector<float> cond(static_cast<std::size_t>(groups * B * cond_n));

  for (std::int64_t first = 0; first < job.count; first += B) {
    const std::int64_t nb = std::min(B, job.count - first);
    // conditioning rows: [uncond × nb ; cond × nb] with guidance, else [cond × nb]
    float* c = cond.data();
    if (cfg) {
      for (std::int64_t i = 0; i < nb; ++i) {
        const float* u = job.uncond + (job.uncond_rows == 1 ? 0 : (first + i)) * cond_n;
        std::memcpy(c + i * cond_n, u, sizeof(float) * static_cast<std::size_t>(cond_n));
      }
      c += nb * cond_n;
    }
    std::memcpy(c, job.cond + first * cond_n, sizeof(float) * static_cast<std::size_t>(nb * cond_n));
    unet.prepare(groups * nb, job.channels, job.height, job.width, cond.data(), job.seq, job.dim);
    ++stats.batches;

    const auto loop_t0 = Clock::now();
    FusedBatch fb;
    fb.images = nb;
    fb.per_image = n;
    fb.groups = groups;
    fb.guidance = job.guidance;
    fb.x = x.data();
    for (std::size_t h = 0; h < hist.size(); ++h) fb.history[h] = hist[h].data();
    fb.unet_in = unet.input();
    fb.keys = job.keys.data() + first;
    init_latents_cpu(fb, job.z + first * n, job.noise ? job.noise + first * n : nullptr, job.plan.init_x_scale,
                     job.plan.init_noise_scale, job.plan.steps.front().model_in_scale);

    for (int s = 0; s < total; ++s) {
      if (job.cancel && job.cancel->load(std::memory_order_relaxed))
        throw Error(ErrorCode::Cancelled, "img2img cancelled before step " + std::to_string(s + 1) + " of " +
                                              std::to_string(total));
      const PlannedStep& step = job.plan.steps[static_cast<std::size_t>(s)];
      const auto t0 = Clock::now();
      unet.run(step.timestep);
      const double unet_s = seconds_since(t0);
      stats.unet_seconds += unet_s;
      ++stats.unet_calls;
      const auto t1 = Clock::now();
      fb.eps = unet.output();
      fb.step_noise = job.step_noise ? job.step_noise + (static_cast<std::int64_t>(s) * job.count + first) * n : nullptr;
      fused_step_cpu(step.program, fb);
      stats.update_seconds += seconds_since(t1);
      if (job.on_step) {
        StepProgress p;
        p.step = s + 1;
        p.total = total;
        p.batch_first = first;
        p.batch_images = nb;
        p.timestep = step.timestep;
        p.unet_seconds = unet_s;
        job.on_step(p);
      }
    }
    for (std::int64_t j = 0; j < nb * n; ++j)
      if (!std::isfinite(x[static_cast<std::size_t>(j)]))
        throw Error(ErrorCode::NonFinite, "img2img: the final latents of image " + std::to_string(first + j / n) +
                                              " are not finite (element " + std::to_string(j % n) +
                                              "): the U-Net returned NaN/Inf or the schedule overflowed");
    std::memcpy(job.out + first * n, x.data(), sizeof(float) * static_cast<std::size_t>(nb * n));
    stats.loop_seconds += seconds_since(loop_t0);
  }
  return stats;
}

}  // namespace brainlatent
