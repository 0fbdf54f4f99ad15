#include "brainlatent/sd_sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>

#include "brainlatent/backend.h"
#include "brainlatent/error.h"
#include "brainlatent/sd_fused_step.h"

namespace brainlatent {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The guidance scale as a user typed it (7.5, 1e+30), for the message of latents that overflowed.
std::string guidance_text(float g) {
  std::ostringstream o;
  o << g;
  return o.str();
}

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
  // (the job's cancellation interrupts the U-Net call in flight, for as long as this loop runs it)
  const CancelRelay::Attached interrupts = job.relay ? job.relay->attach([&unet] { unet.request_cancel(); }) : CancelRelay::Attached();
  const bool cfg = job.guidance > 1.0f;
  const int groups = cfg ? 2 : 1;
  const std::int64_t n = job.channels * job.height * job.width;
  const std::int64_t cond_n = job.seq * job.dim;
  const std::int64_t B = std::min(job.batch_size, job.count);
  const int total = static_cast<int>(job.plan.steps.size());
  // Each step's program composed once for this guidance (a few hundred flops per step, not per batch).
  std::vector<CompiledStep> compiled;
  compiled.reserve(job.plan.steps.size());
  for (const PlannedStep& st : job.plan.steps) compiled.push_back(compile_step(st.program, groups, job.guidance));

  // The step runs on a backend (the job's, else the CPU): the latents and the history live in its
  // buffers for the whole job; the U-Net's input and output are wrapped where the runner keeps them
  // (host memory on the CPU backend: zero-copy). A device backend gets Device buffers from a runner
  // bound on that device, and the loop then never leaves it.
  std::unique_ptr<Backend> own;
  Backend* be = job.backend;
  if (!be) {
    own = make_backend("cpu");
    be = own.get();
  }
  stats.backend = be->name();
  auto host = [&](const float* p, std::int64_t rows) {
    return be->wrap_host(const_cast<float*>(p), DType::F32, static_cast<std::size_t>(rows * n));
  };
  // Host input rows where the backend can read them: wrapped in place on a host backend, else
  // copied into a device buffer (the latents, the initial and per-step noise).
  const bool on_device = !be->host_visible();
  auto operand = [&](const float* p, std::int64_t rows) {
    BufferPtr h = host(p, rows);
    if (!on_device) return h;
    BufferPtr d = be->alloc(DType::F32, static_cast<std::size_t>(rows * n));
    be->copy(view<float>(*h, rows, n), view<float>(*d, rows, n));
    return d;
  };
  // Per-job buffers sized for the largest batch, reused by every batch.
  BufferPtr x_buf = be->alloc(DType::F32, static_cast<std::size_t>(B * n));
  std::vector<BufferPtr> hist;
  for (int h = 0; h < job.plan.history; ++h) {
    hist.push_back(be->alloc(DType::F32, static_cast<std::size_t>(B * n)));
    be->fill(view<float>(*hist.back(), B, n), 0.0f);
  }
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
    SamplerBatch sb;
    sb.images = nb;
    sb.per_image = n;
    sb.groups = groups;
    sb.x = view<float>(*x_buf, nb, n);
    for (std::size_t h = 0; h < hist.size(); ++h) sb.history[h] = view<float>(*hist[h], nb, n);
    // The U-Net's input and output: the runner's device buffers when it keeps them on the job's
    // backend, else its host memory wrapped (zero-copy on the CPU backend).
    BufferPtr in_host, out_host;
    Buffer* in_buf = unet.input_buffer();
    Buffer* out_buf = unet.output_buffer();
    if (!in_buf || !out_buf) {
      if (on_device)
        throw Error(ErrorCode::InvalidArgument, "img2img: the step runs on the " + be->name() +
                                                    " backend but the U-Net runner keeps its tensors in host memory");
      in_host = host(unet.input(), groups * nb);
      out_host = host(unet.output(), groups * nb);
      in_buf = in_host.get();
      out_buf = out_host.get();
    }
    sb.unet_in = view<float>(*in_buf, groups * nb, n);
    sb.eps = view<float>(*out_buf, groups * nb, n);
    sb.keys.assign(job.keys.begin() + first, job.keys.begin() + first + nb);
    BufferPtr z_buf = operand(job.z + first * n, nb), noise_buf = job.noise ? operand(job.noise + first * n, nb) : nullptr;
    be->sampler_init(sb, view<float>(*z_buf, nb, n), noise_buf ? view<float>(*noise_buf, nb, n) : ViewF{}, job.plan.init_x_scale,
                     job.plan.init_noise_scale, job.plan.steps.front().model_in_scale);

    for (int s = 0; s < total; ++s) {
      if (job.cancel && job.cancel->load(std::memory_order_relaxed))
        throw Error(ErrorCode::Cancelled, "img2img cancelled before step " + std::to_string(s + 1) + " of " +
                                              std::to_string(total));
      const PlannedStep& step = job.plan.steps[static_cast<std::size_t>(s)];
      const auto t0 = Clock::now();
      if (on_device) be->synchronize();  // the step kernel's U-Net input is written before the U-Net reads it
      try {
        unet.run(step.timestep);
      } catch (...) {
        // (a call interrupted by the job's cancellation — ONNX Runtime's terminate flag — failed because it was cancelled)
        if (job.cancel && job.cancel->load())
          throw Error(ErrorCode::Cancelled, "img2img cancelled during step " + std::to_string(s + 1) + " of " +
                                                std::to_string(total) + " (its U-Net call was interrupted)");
        throw;
      }
      const double unet_s = seconds_since(t0);
      stats.unet_seconds += unet_s;
      ++stats.unet_calls;
      const auto t1 = Clock::now();
      BufferPtr sn_buf;
      if (job.step_noise) {
        sn_buf = operand(job.step_noise + (static_cast<std::int64_t>(s) * job.count + first) * n, nb);
        sb.step_noise = view<float>(*sn_buf, nb, n);
      }
      be->sampler_step(compiled[static_cast<std::size_t>(s)], sb);
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
    const std::int64_t bad = be->first_nonfinite(sb.x);
    if (bad >= 0)
      throw Error(ErrorCode::NonFinite, "img2img: the final latents of image " + std::to_string(first + bad / n) +
                                            " are not finite (element " + std::to_string(bad % n) +
                                            "): the U-Net returned NaN/Inf, or " + (cfg ? "guidance " + guidance_text(job.guidance) + " × (cond − uncond) or " : std::string()) +
                                            "the schedule's update overflowed float32");
    BufferPtr dst = host(job.out + first * n, nb);
    be->copy(sb.x, view<float>(*dst, nb, n));
    be->synchronize();
    stats.loop_seconds += seconds_since(loop_t0);
  }
  return stats;
}

}  // namespace brainlatent
