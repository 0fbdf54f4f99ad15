// The SD pipeline on ONNX Runtime's CUDA provider loaded as a plugin library, against the CPU run:
// the tiny fixture's text encoding, img2img loop (DDIM with guidance) and decode on the same inputs,
// with TF32 off (provider option use_tf32=0), agree within 1e-4 of the output's scale. Also: the
// library registered once serves every session, a second library or a missing device is a clean
// error. Needs BRAINLATENT_ORT_LIB (an ORT core, e.g. 1.29's CPU build), BRAINLATENT_ORT_PROVIDER_LIB
// (libonnxruntime_providers_cuda.so; cuBLAS/cuDNN on LD_LIBRARY_PATH) and a CUDA device; fixtures from
// BRAINLATENT_TEST_SD_FIXTURES, BRAINLATENT_SD_FIXTURES or build/sd-fixtures. Otherwise it says why and
// exits 77 (skipped).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "brainlatent/backend.h"
#include "brainlatent/error.h"
#include "brainlatent/sd_pipeline.h"
#include "sd_test_util.h"

using namespace brainlatent;

using sdtest::contains;
using sdtest::exists;

namespace {
std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : "";
}
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// max |a - b| and max |a|, printed; checks the difference against tol · max(1, max |a|).
void compare(const char* what, const std::vector<float>& a, const std::vector<float>& b, double tol) {
  SD_CHECK(a.size() == b.size());
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(a[i])));
  }
  std::printf("%s: max |cuda - cpu| %.3g, max |cpu| %.3g (tolerance %.3g)\n", what, diff, scale, tol * std::max(1.0, scale));
  SD_CHECK(diff <= tol * std::max(1.0, scale));
}

struct Run {
  std::vector<float> cond, latents, images;
  double load_s = 0, text_s = 0, loop_s = 0, unet_s = 0, decode_s = 0;
  std::string loop_backend;
};

// Encodes the captions, runs img2img on (z, the conditioning this pipeline computed) and decodes.
Run run(SdPipeline& sd, const std::vector<std::int64_t>& ids, const std::vector<float>& z, std::int64_t C,
        std::int64_t h, std::int64_t w) {
  Run r;
  std::int64_t dim = 0;
  auto t0 = std::chrono::steady_clock::now();
  r.cond = sd.encode_text(ids.data(), 3, 77, dim);  // rows 0, 1: captions; row 2: ""
  r.text_s = seconds_since(t0);
  Img2ImgJob job;
  job.plan = make_sampler_plan(sd15_schedule(), SchedulerKind::Ddim, 10, 0.8);
  job.guidance = 5;
  job.count = 2; job.channels = C; job.height = h; job.width = w; job.seq = 77; job.dim = dim;
  job.z = z.data(); job.cond = r.cond.data(); job.uncond = r.cond.data() + 2 * 77 * dim; job.uncond_rows = 1;
  job.keys = {{7, 0}, {7, 1}};
  job.batch_size = 2;
  r.latents.resize(z.size());
  job.out = r.latents.data();
  const auto st = sd.img2img(job);
  r.loop_s = st.loop_seconds;
  r.unet_s = st.unet_seconds;
  r.loop_backend = st.backend;
  std::int64_t H = 0, W = 0;
  t0 = std::chrono::steady_clock::now();
  r.images = sd.decode(r.latents.data(), 2, C, h, w, 0.18215f, 2, H, W);
  r.decode_s = seconds_since(t0);
  return r;
}
}  // namespace

int main() {
  const std::string lib = env("BRAINLATENT_ORT_LIB");
  const std::string provider_lib = env("BRAINLATENT_ORT_PROVIDER_LIB");
  std::string fixtures = env("BRAINLATENT_TEST_SD_FIXTURES");
  if (fixtures.empty()) fixtures = env("BRAINLATENT_SD_FIXTURES");
  if (fixtures.empty()) fixtures = BRAINLATENT_TEST_SD_FIXTURES;
  if (lib.empty() || provider_lib.empty()) {
    std::printf("test_sd_cuda_provider: SKIPPED, set BRAINLATENT_ORT_LIB (the ONNX Runtime core) and "
                "BRAINLATENT_ORT_PROVIDER_LIB (libonnxruntime_providers_cuda.so) to run it on a CUDA machine\n");
    return 77;
  }
  if (!exists(fixtures + "/optimum-1.24/unet/model.onnx")) {
    std::printf("test_sd_cuda_provider: SKIPPED, no fixture models in %s (set BRAINLATENT_TEST_SD_FIXTURES to a "
                "copy of build/sd-fixtures, written by `npx vitest run test/sd`)\n", fixtures.c_str());
    return 77;
  }
  const auto info = ort_load(lib);
  std::printf("ONNX Runtime %s at %s; provider library %s; fixtures %s\n", info.version.c_str(), lib.c_str(),
              provider_lib.c_str(), fixtures.c_str());

  SdLoadOptions cpu;
  cpu.dir = fixtures + "/optimum-1.24";
  SdLoadOptions cuda = cpu;
  cuda.session.provider = "cuda";
  cuda.session.provider_options = {{"use_tf32", "0"}};  // fp32 MatMul/Conv, for parity with the CPU
  // provider_library left empty: BRAINLATENT_ORT_PROVIDER_LIB is the route under test.

  auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<SdPipeline> gpu;
  try {
    gpu = SdPipeline::load(cuda);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::BackendUnavailable) throw;
    std::printf("test_sd_cuda_provider: SKIPPED, the CUDA provider is unavailable here: %s\n", e.what());
    return 77;
  }
  const double gpu_load_s = seconds_since(t0);
  std::printf("cuda route: %s\n", gpu->summary().provider.c_str());
  SD_CHECK(gpu->summary().provider == "cuda (plugin: " + provider_lib + ")");
  t0 = std::chrono::steady_clock::now();
  auto host = SdPipeline::load(cpu);
  const double cpu_load_s = seconds_since(t0);
  SD_CHECK(host->summary().provider == "cpu");

  // Inputs shared by both runs: token ids, and latents of two images encoded on the CPU.
  std::vector<std::int64_t> ids(3 * 77, 49407);
  for (int r = 0; r < 3; ++r) ids[r * 77] = 49406;
  ids[1] = 320; ids[2] = 1929; ids[77 + 1] = 550;
  const std::int64_t H = 64, W = 48;
  std::vector<std::uint8_t> rgb(2 * H * W * 3);
  for (std::size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<std::uint8_t>((i * 37) % 251);
  std::vector<float> x(2 * 3 * H * W);
  rgb8_to_model_input(rgb.data(), 2, H, W, x.data());
  std::vector<NoiseKey> keys{{1, 0}, {1, 1}};
  std::int64_t C = 0, h = 0, w = 0;
  const auto z = host->encode_images(x.data(), 2, H, W, LatentMode::Mean, keys.data(), 0.18215f, 2, C, h, w);
  const auto zg = gpu->encode_images(x.data(), 2, H, W, LatentMode::Mean, keys.data(), 0.18215f, 2, C, h, w);
  compare("vae_encoder (z)", z, zg, 1e-4);

  const Run a = run(*host, ids, z, C, h, w);
  // The loop on the host (the U-Net's tensors copied each call), then on the GPU (the latents, the
  // step kernel and Philox noise on the device, the U-Net bound to CUDA memory) when the engine has
  // its CUDA backend.
  setenv("BRAINLATENT_SD_DEVICE_LOOP", "0", 1);
  run(*gpu, ids, z, C, h, w);  // warm-up: the first CUDA run pays for kernel selection and allocation
  const Run b = run(*gpu, ids, z, C, h, w);
  SD_CHECK(b.loop_backend == "cpu");
  compare("text_encoder (c)", a.cond, b.cond, 1e-4);
  compare("img2img latents (host loop)", a.latents, b.latents, 1e-4);
  compare("vae_decoder images", a.images, b.images, 1e-4);
  unsetenv("BRAINLATENT_SD_DEVICE_LOOP");
  bool engine_cuda = false;
  for (const BackendInfo& bi : list_backends())
    if (bi.name == "cuda") engine_cuda = bi.available;
  Run d;
  if (engine_cuda) {
    run(*gpu, ids, z, C, h, w);
    d = run(*gpu, ids, z, C, h, w);
    SD_CHECK(d.loop_backend == "cuda");
    compare("img2img latents (device loop)", a.latents, d.latents, 1e-4);
    compare("vae_decoder images (device loop)", a.images, d.images, 1e-4);
  } else {
    std::printf("device loop: not run (the engine was built without its CUDA backend)\n");
  }
  std::printf("timings (s)      cpu       cuda  cuda device loop\n");
  std::printf("  load       %8.4f  %8.4f\n", cpu_load_s, gpu_load_s);
  std::printf("  text       %8.4f  %8.4f\n", a.text_s, b.text_s);
  std::printf("  img2img    %8.4f  %8.4f  %8.4f  (U-Net %.4f / %.4f / %.4f)\n", a.loop_s, b.loop_s, d.loop_s, a.unet_s, b.unet_s, d.unet_s);
  std::printf("  decode     %8.4f  %8.4f\n", a.decode_s, b.decode_s);

  // The registered library serves further sessions; another library or a missing device is refused.
  SdLoadOptions again = cuda;
  again.components = {"unet"};
  again.session.provider_library = provider_lib;
  SD_CHECK(SdPipeline::load(again)->summary().provider == "cuda (plugin: " + provider_lib + ")");
  again.session.provider_library = "/nonexistent/other/libonnxruntime_providers_cuda.so";
  try {
    SdPipeline::load(again);
    SD_CHECK(!"a second provider library was accepted");
  } catch (const Error& e) {
    std::printf("second library: %s\n", e.what());
    SD_CHECK(e.code() == ErrorCode::InvalidArgument && contains(e.what(), "/nonexistent/other/") &&
             contains(e.what(), "already registered"));
  }
  again.session.provider_library.clear();
  again.session.device_id = 99;
  try {
    SdPipeline::load(again);
    SD_CHECK(!"CUDA device 99 was accepted");
  } catch (const Error& e) {
    std::printf("device 99: %s\n", e.what());
    SD_CHECK(e.code() == ErrorCode::BackendUnavailable && contains(e.what(), "99") && contains(e.what(), "offers"));
  }
  return sdtest::finish("test_sd_cuda_provider");
}
