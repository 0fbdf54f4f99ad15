// The fused img2img denoising loop. The U-Net is reached through a small interface so the loop
// runs unchanged on ONNX Runtime (sd_pipeline.cpp, IoBinding) and on a fake in the ctests.
// Per batch the loop allocates its buffers once; per step it sets the timestep, calls the
// U-Net, and makes one fused pass over memory (sd_fused_step.h). Nothing else happens per step.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "brainlatent/backend.h"
#include "brainlatent/cancel_relay.h"
#include "brainlatent/philox.h"
#include "brainlatent/scheduler.h"

namespace brainlatent {

// One U-Net bound to preallocated buffers for a batch of `rows` rows (2B with guidance).
class UNetRunner {
 public:
  virtual ~UNetRunner() = default;
  // Allocates and binds the batch's tensors; cond is [rows, seq, dim] and stays bound.
  virtual void prepare(std::int64_t rows, std::int64_t channels, std::int64_t height, std::int64_t width,
                       const float* cond, std::int64_t seq, std::int64_t dim) = 0;
  virtual float* input() = 0;         // [rows, C, h, w], written by the loop
  virtual const float* output() = 0;  // [rows, C, h, w], the noise prediction
  // A runner that keeps its input and output on the job's device backend returns them here
  // (Device buffers of that backend, [rows, C, h, w] each, valid after prepare()); the loop then
  // never leaves the device. Null: input()/output() are host memory.
  virtual Buffer* input_buffer() { return nullptr; }
  virtual Buffer* output_buffer() { return nullptr; }
  virtual void run(double timestep) = 0;
  virtual void request_cancel() {}  // may be called from another thread
};

struct StepProgress {
  int step = 0;            // 1-based index among the steps that run
  int total = 0;
  std::int64_t batch_first = 0;   // index of the batch's first image in the job
  std::int64_t batch_images = 0;
  double timestep = 0;
  double unet_seconds = 0;  // this step's U-Net call
};

struct Img2ImgJob {
  SamplerPlan plan;
  float guidance = 1.0f;          // classifier-free guidance runs when guidance > 1 (diffusers' rule)
  std::int64_t count = 0;         // images
  std::int64_t channels = 4, height = 0, width = 0;  // latent shape
  std::int64_t seq = 77, dim = 0;  // conditioning shape
  const float* z = nullptr;        // [count, C, h, w] scaled latents
  const float* cond = nullptr;     // [count, seq, dim]
  const float* uncond = nullptr;   // [uncond_rows, seq, dim], uncond_rows 1 (shared) or count
  std::int64_t uncond_rows = 0;
  const float* noise = nullptr;    // optional [count, C, h, w] initial noise (else Philox stream 0)
  // optional [steps that run, count, C, h, w]: the noise each U-Net call's update consumes, in
  // order (a call that draws none ignores its slice), instead of Philox streams 1 + step index
  const float* step_noise = nullptr;
  std::vector<NoiseKey> keys;      // [count]
  std::int64_t batch_size = 1;
  float* out = nullptr;            // [count, C, h, w] final latents
  const std::atomic<bool>* cancel = nullptr;
  // Optional: fired with the cancel flag, it interrupts the U-Net call in flight (request_cancel()), which then
  // ends as Cancelled instead of running to its end.
  CancelRelayPtr relay;
  std::function<void(const StepProgress&)> on_step;
  // Where the latents, the history and the step kernel live (null: a CPU backend). The U-Net
  // runner's input and output must be usable by it (host memory for the CPU).
  Backend* backend = nullptr;
};

struct Img2ImgStats {
  double loop_seconds = 0;   // wall time of the denoising loops (init + steps), all batches
  double unet_seconds = 0;   // sum of the U-Net calls
  double update_seconds = 0; // sum of the fused passes
  std::int64_t unet_calls = 0;
  std::int64_t batches = 0;
  std::string backend;       // where the loop ran: "cpu", or "cuda" for a device-resident loop
};

// Validates the job (shapes, pointers, keys; z, cond, uncond and the noises finite, else NonFinite
// naming the input and the first bad index) and runs it batch by batch. Throws Cancelled when
// *cancel becomes true (checked before every U-Net call; a U-Net call that fails once it is true —
// interrupted through job.relay — is Cancelled too), NonFinite when the final latents are not
// finite (naming the image and element).
Img2ImgStats run_img2img(UNetRunner& unet, const Img2ImgJob& job);

}  // namespace brainlatent
