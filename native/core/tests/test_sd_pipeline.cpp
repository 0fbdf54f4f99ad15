// The SD pipeline on ONNX Runtime with the tiny random-weight model folders that the vitest
// setup writes (build/sd-fixtures, or BRAINLATENT_SD_FIXTURES): signature adaptation for each
// export variant, text/image encoding, the fused loop's batch independence, and clear errors
// for bad folders and bad shapes. Skips (exit 77, which ctest reports as skipped, saying why)
// without ORT or fixtures.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "brainlatent/error.h"
#include "brainlatent/sd_pipeline.h"
#include "sd_test_util.h"

using namespace brainlatent;

using sdtest::contains;
using sdtest::error_of;
using sdtest::exists;

namespace {
std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}
}  // namespace

int main() {
  const std::string lib = env_or("BRAINLATENT_ORT_LIB", BRAINLATENT_TEST_ORT_LIB);
  const std::string fixtures = env_or("BRAINLATENT_SD_FIXTURES", BRAINLATENT_TEST_SD_FIXTURES);
  if (!exists(lib)) {
    std::printf("test_sd_pipeline: SKIPPED, no ONNX Runtime library at %s (npm install, or set BRAINLATENT_ORT_LIB)\n", lib.c_str());
    return 77;
  }
  if (!exists(fixtures + "/optimum-1.24/unet/model.onnx")) {
    std::printf("test_sd_pipeline: SKIPPED, no fixture models in %s (run `npx vitest run test/sd` or "
                "`brainlatent sd fixture --variants --out %s` first)\n", fixtures.c_str(), fixtures.c_str());
    return 77;
  }
  auto info = ort_load(lib);
  std::printf("ONNX Runtime %s (API %d), providers:", info.version.c_str(), info.api_version);
  for (const auto& p : info.providers) std::printf(" %s", p.c_str());
  std::printf("\n");
  SD_CHECK(!info.version.empty());
  SD_CHECK(ort_load("").library_path == lib);
  error_of([&] { ort_load("/nonexistent/libonnxruntime.so"); }, ErrorCode::InvalidArgument);

  struct Variant { const char* name; const char* ids; const char* ts; int rank; const char* vae; };
  const Variant variants[] = {{"optimum-1.24", "int64", "float32", 0, "latent_parameters"},
                              {"optimum-1.23", "int32", "int64", 1, "latent_parameters"},
                              {"diffusers-script", "int32", "float32", 1, "latent_sample"},
                              {"diffusers-int64", "int32", "int64", 1, "latent_sample"}};
  std::vector<float> first_out;
  for (const Variant& v : variants) {
    SdLoadOptions o;
    o.dir = fixtures + "/" + v.name;
    o.session.intra_threads = 1;
    auto sd = SdPipeline::load(o);
    const auto& s = sd->summary();
    SD_CHECK(s.input_ids_dtype == v.ids);
    SD_CHECK(s.timestep_dtype == v.ts);
    SD_CHECK(s.timestep_rank == v.rank);
    SD_CHECK(s.vae_encoder_output == v.vae);
    SD_CHECK(s.cond_dim == 32 && s.models.size() == 4);

    // text: 2 rows
    std::vector<std::int64_t> ids(2 * 77, 520);
    ids[0] = ids[77] = 519;
    ids[1] = 300;
    std::int64_t dim = 0;
    auto c = sd->encode_text(ids.data(), 2, 77, dim);
    SD_CHECK(dim == 32 && c.size() == 2 * 77 * 32);
    auto u = sd->encode_text(ids.data() + 77, 1, 77, dim);
    // the text encoder's run is interruptible as the VAE's are (it was a plain run: a cancelled job waited for it):
    // a fired relay sets its terminate flag (the cancel flag clear, the interruption shows as ONNX Runtime's
    // failure), and with the flag set the job is Cancelled before the run
    {
      CancelRelay relay;
      relay.fire();
      std::int64_t d = 0;
      SD_CHECK(contains(error_of([&] { sd->encode_text(ids.data(), 2, 77, d, nullptr, &relay); }, ErrorCode::OrtFailure), "terminate"));
      const std::atomic<bool> cancelled{true};
      SD_CHECK(error_of([&] { sd->encode_text(ids.data(), 2, 77, d, &cancelled, &relay); }, ErrorCode::Cancelled) ==
               "encode_text of 2 captions cancelled before its run");
      SD_CHECK(d == 0);
    }

    // images -> z (mean where available)
    const std::int64_t H = 64, W = 48;
    std::vector<std::uint8_t> rgb(2 * H * W * 3);
    for (std::size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<std::uint8_t>((i * 37) % 251);
    std::vector<float> x(2 * 3 * H * W);
    rgb8_to_model_input(rgb.data(), 2, H, W, x.data());
    std::vector<NoiseKey> keys{{1, 0}, {1, 1}};
    std::int64_t C = 0, h = 0, w = 0;
    auto z = sd->encode_images(x.data(), 2, H, W, LatentMode::Auto, keys.data(), 0.18215f, 1, C, h, w);
    SD_CHECK(C == 4 && h == 8 && w == 6 && z.size() == static_cast<std::size_t>(2 * C * h * w));
    // uint8 images, converted a chunk at a time on the encoding thread, give the same bits as the batch converted first
    // (the same chunk size both ways: a run over 2 images need not give the bits of two runs over 1)
    for (std::int64_t chunk : {1, 2, 0}) {
      const auto zf = sd->encode_images(x.data(), 2, H, W, LatentMode::Auto, keys.data(), 0.18215f, chunk, C, h, w);
      const auto z8 = sd->encode_images(rgb.data(), 2, H, W, LatentMode::Auto, keys.data(), 0.18215f, chunk, C, h, w);
      SD_CHECK(z8.size() == zf.size() && std::memcmp(z8.data(), zf.data(), zf.size() * sizeof(float)) == 0);
    }
    if (std::string(v.vae) == "latent_parameters") {
      auto zs = sd->encode_images(x.data(), 2, H, W, LatentMode::Sample, keys.data(), 0.18215f, 2, C, h, w);
      SD_CHECK(zs != z);
      const auto zs8 = sd->encode_images(rgb.data(), 2, H, W, LatentMode::Sample, keys.data(), 0.18215f, 2, C, h, w);
      SD_CHECK(zs8 == zs);
    } else {
      error_of([&] { sd->encode_images(x.data(), 2, H, W, LatentMode::Mean, keys.data(), 0.18215f, 2, C, h, w); },
               ErrorCode::InvalidArgument);
    }

    // img2img: batch 1 and batch 2 give identical latents; guidance on
    Img2ImgJob job;
    job.plan = make_sampler_plan(sd15_schedule(), SchedulerKind::Ddim, 10, 0.8);
    job.guidance = 5;
    job.count = 2; job.channels = C; job.height = h; job.width = w; job.seq = 77; job.dim = 32;
    job.z = z.data(); job.cond = c.data(); job.uncond = u.data(); job.uncond_rows = 1;
    job.keys = keys;
    std::vector<float> o1(z.size()), o2(z.size());
    job.batch_size = 1;
    job.out = o1.data();
    auto st = sd->img2img(job);
    SD_CHECK(st.unet_calls == 16);
    job.batch_size = 2;
    job.out = o2.data();
    st = sd->img2img(job);
    SD_CHECK(st.unet_calls == 8);
    double maxdiff = 0;
    for (std::size_t i = 0; i < o1.size(); ++i) maxdiff = std::max(maxdiff, static_cast<double>(std::fabs(o1[i] - o2[i])));
    std::printf("%s: batch 1 vs 2 max |diff| %.3g, loop %.4fs, unet %.4fs, overhead %.4f\n", v.name, maxdiff,
                st.loop_seconds, st.unet_seconds, st.loop_seconds / st.unet_seconds);
    SD_CHECK(maxdiff < 1e-6);
    bool finite = true;
    for (float f : o1) finite = finite && std::isfinite(f);
    SD_CHECK(finite);

    std::int64_t OH = 0, OW = 0;
    auto img = sd->decode(o1.data(), 2, C, h, w, 0.18215f, 1, OH, OW);
    SD_CHECK(OH == 64 && OW == 48 && img.size() == static_cast<std::size_t>(2 * 3 * OH * OW));
    // a VAE run is interruptible: a fired relay sets the run's terminate flag (with the job's cancel flag set, the
    // interrupted run is Cancelled, as img2img's U-Net call in test_sd_fused_loop; here the flag stays clear, so the
    // interruption itself shows, as ONNX Runtime's failure)
    {
      CancelRelay relay;
      relay.fire();
      std::int64_t IH = 0, IW = 0, IC = 0, ih = 0, iw = 0;
      const std::string dm = error_of([&] { sd->decode(o1.data(), 2, C, h, w, 0.18215f, 1, IH, IW, nullptr, &relay); },
                                      ErrorCode::OrtFailure);
      SD_CHECK(contains(dm, "terminate"));
      const std::string em = error_of([&] { sd->encode_images(x.data(), 2, H, W, LatentMode::Auto, keys.data(), 0.18215f, 1, IC, ih, iw, nullptr, &relay); },
                                      ErrorCode::OrtFailure);
      SD_CHECK(contains(em, "terminate"));
    }

    // bad shapes
    Img2ImgJob bad = job;
    bad.dim = 16;
    auto msg = error_of([&] { sd->img2img(bad); }, ErrorCode::ShapeMismatch);
    SD_CHECK(contains(msg, "encoder_hidden_states") && contains(msg, "32"));
    bad = job;
    bad.channels = 3;
    msg = error_of([&] { sd->img2img(bad); }, ErrorCode::ShapeMismatch);
    SD_CHECK(contains(msg, "sample"));
    if (v.rank == 0) first_out = o1;
  }

  // bad folders
  SdLoadOptions o;
  o.dir = fixtures + "/does-not-exist";
  auto msg = error_of([&] { SdPipeline::load(o); }, ErrorCode::InvalidArgument);
  SD_CHECK(contains(msg, "does not exist"));
  const std::string broken = fixtures + "/broken-ctest";
  ::mkdir(broken.c_str(), 0755);
  for (const char* c : {"text_encoder", "unet", "vae_encoder", "vae_decoder"}) ::mkdir((broken + "/" + c).c_str(), 0755);
  std::remove((broken + "/unet/model.onnx").c_str());
  for (const char* c : {"text_encoder", "vae_encoder", "vae_decoder"}) std::ofstream(broken + "/" + c + "/model.onnx") << "not onnx";
  o.dir = broken;
  msg = error_of([&] { SdPipeline::load(o); }, ErrorCode::InvalidArgument);
  SD_CHECK(contains(msg, "unet/model.onnx") && contains(msg, "found"));
  std::ofstream(broken + "/unet/model.onnx") << "corrupt";
  msg = error_of([&] { SdPipeline::load(o); }, ErrorCode::InvalidModel);
  SD_CHECK(contains(msg, "model.onnx") && contains(msg, "not a valid ONNX model"));
  // a folder whose unet is the text encoder: listed signature in the error
  o.dir = fixtures + "/optimum-1.24";
  o.components = {"unet"};
  auto unet_only = SdPipeline::load(o);
  SD_CHECK(unet_only->has("unet") && !unet_only->has("text_encoder"));
  std::int64_t d = 0;
  std::vector<std::int64_t> ids(77, 1);
  error_of([&] { unet_only->encode_text(ids.data(), 1, 77, d); }, ErrorCode::InvalidArgument);
  // An fp16 export (float16 inputs and outputs around the fixture's float32 graph, Cast at the
  // boundaries): converted where the engine hands tensors over, the same results as the float32
  // folder to float16 rounding of those tensors (the loop itself stays float32).
  if (exists(fixtures + "/optimum-fp16-io/unet/model.onnx")) {
    SdLoadOptions o32, o16;
    o32.dir = fixtures + "/optimum-1.24";
    o16.dir = fixtures + "/optimum-fp16-io";
    auto p32 = SdPipeline::load(o32);
    auto p16 = SdPipeline::load(o16);
    bool half_seen = false;
    for (const auto& m : p16->summary().models)
      for (const auto& t : m.inputs) half_seen = half_seen || t.dtype == "float16";
    SD_CHECK(half_seen);
    std::vector<std::int64_t> ids(3 * 77, 49407);
    for (int r = 0; r < 3; ++r) ids[r * 77] = 49406;
    ids[1] = 320;
    std::int64_t d32 = 0, d16 = 0;
    const auto c32 = p32->encode_text(ids.data(), 3, 77, d32), c16 = p16->encode_text(ids.data(), 3, 77, d16);
    auto rel = [](const std::vector<float>& a, const std::vector<float>& b) {
      double diff = 0, scale = 0;
      for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
        diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
        scale = std::max(scale, static_cast<double>(std::fabs(a[i])));
      }
      return a.size() == b.size() ? diff / std::max(1e-12, scale) : 1e9;
    };
    SD_CHECK(d16 == d32 && rel(c32, c16) < 2e-3);
    std::vector<std::uint8_t> rgb(2 * 64 * 48 * 3);
    for (std::size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<std::uint8_t>((i * 31) % 253);
    std::vector<float> x(2 * 3 * 64 * 48);
    rgb8_to_model_input(rgb.data(), 2, 64, 48, x.data());
    std::vector<NoiseKey> keys{{3, 0}, {3, 1}};
    std::int64_t C = 0, h = 0, w = 0;
    const auto z32 = p32->encode_images(x.data(), 2, 64, 48, LatentMode::Mean, keys.data(), 0.18215f, 2, C, h, w);
    const auto z16 = p16->encode_images(x.data(), 2, 64, 48, LatentMode::Mean, keys.data(), 0.18215f, 2, C, h, w);
    SD_CHECK(rel(z32, z16) < 2e-3);
    auto loop = [&](SdPipeline& p, const std::vector<float>& c) {
      Img2ImgJob job;
      job.plan = make_sampler_plan(sd15_schedule(), SchedulerKind::Ddim, 8, 0.8);
      job.guidance = 5;
      job.count = 2; job.channels = C; job.height = h; job.width = w; job.seq = 77; job.dim = d32;
      job.z = z32.data(); job.cond = c.data(); job.uncond = c.data() + 2 * 77 * d32; job.uncond_rows = 1;
      job.keys = keys;
      job.batch_size = 2;
      std::vector<float> out(z32.size());
      job.out = out.data();
      const auto st = p.img2img(job);
      SD_CHECK(st.backend == "cpu" && st.unet_calls == 6);
      return out;
    };
    const auto l32 = loop(*p32, c32), l16 = loop(*p16, c32);
    const double rl = rel(l32, l16);
    std::printf("fp16 boundaries: text %.2g, latents %.2g, img2img %.2g (max |Δ| / max |x|)\n", rel(c32, c16), rel(z32, z16), rl);
    SD_CHECK(rl < 1e-2);
    std::int64_t OH = 0, OW = 0;
    const auto i32 = p32->decode(l32.data(), 2, C, h, w, 0.18215f, 2, OH, OW), i16 = p16->decode(l32.data(), 2, C, h, w, 0.18215f, 2, OH, OW);
    SD_CHECK(rel(i32, i16) < 5e-3);
  } else {
    std::printf("fp16 boundaries: no optimum-fp16-io fixture in %s (written by the vitest setup)\n", fixtures.c_str());
    SD_CHECK(!"the optimum-fp16-io fixture is missing");
  }
  return sdtest::finish("test_sd_pipeline");
}
