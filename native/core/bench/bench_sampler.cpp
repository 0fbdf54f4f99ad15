// bench_sampler: Takagi's sampling workload on an SD model folder in plain C++ (no Node), for the GPU
// machine: img2img from random latents (64×64 by default), DDIM with classifier-free guidance, then the
// VAE decode, through SdPipeline (ONNX Runtime on the CPU or CUDA provider). The model loads once; then
// for each batch size of --batch (a list: one session serves them all), after --warmup untimed short jobs
// of one batch (kernel selection and allocation happen per shape), it runs --images images in batches of
// that size and prints one JSON line: the provider route, seconds per image (loop + decode), the U-Net's own time and the loop's overhead ratio
// (loop ÷ U-Net, from Img2ImgStats), decode and load seconds, peak RSS (and device memory in use on a
// CUDA build). The conditioning is random (the text encoder is not part of the sampler's time).
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifdef BRAINLATENT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#include "bench_util.h"
#include "brainlatent/error.h"
#include "brainlatent/philox.h"
#include "brainlatent/scheduler.h"
#include "brainlatent/sd_pipeline.h"

using namespace brainlatent;
using namespace brainlatent::bench;
using i64 = std::int64_t;

namespace {

const char* kUsage = R"(bench_sampler: the sampler (img2img + decode) on an SD model folder, one JSON line on stdout.

Usage: bench_sampler --dir DIR [options]
  --dir DIR                 SD 1.x ONNX folder (e.g. `brainlatent sd fixture --arch sd1`; needs unet, vae_decoder)
  --provider cpu|cuda       ONNX Runtime execution provider (default cpu); the ORT library comes from
                            BRAINLATENT_ORT_LIB, a CUDA plugin provider library from BRAINLATENT_ORT_PROVIDER_LIB
  --device N                CUDA device ordinal (default 0)
  --provider-option K=V     passed to the provider (repeatable), e.g. use_tf32=0
  --batch B[,B2...]         images per U-Net batch (2B rows with guidance; default 1); a list runs each
                            size in turn on the one loaded model, one JSON line each
  --images N[,N2...]        images timed per batch size (default: B; a list pairs with --batch)
  --steps S                 DDIM inference steps (default 40)
  --strength X              img2img strength in (0, 1] (default 1.0: every one of the S steps runs)
  --guidance G              classifier-free guidance scale (default 7.5; <= 1 runs without guidance)
  --latent HxW              latent size (default 64x64, i.e. 512×512 images)
  --warmup K                untimed jobs of one batch before each timed run (default 1)
  --warmup-steps S          U-Net calls per warm-up job (default 2: the shapes are what matters)
  --threads N               ORT intra-op threads (default 0: ORT's default)
  --max-rows R              rows per U-Net run (OrtSessionConfig.max_rows_per_run; default 0: whole batch)
  --json-out FILE           append the JSON record to FILE too
  --tag TEXT                a label copied into the record (e.g. the git commit)
  --help                    this text
Environment: BRAINLATENT_SD_DEVICE_LOOP (0: keep the loop on the host with a CUDA U-Net) is recorded as
given; loop_backend in the record says where the loop ran.
)";

struct Args {
  std::string dir, provider = "cpu", json_out, tag;
  int device = 0, steps = 40, warmup = 1, warmup_steps = 2, threads = 0, max_rows = 0;
  std::vector<i64> batches{1}, images;
  i64 h = 64, w = 64;
  double strength = 1.0, guidance = 7.5;
  std::vector<std::pair<std::string, std::string>> options;
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "bench_sampler: %s (see --help)\n", msg.c_str());
  std::exit(64);
}

double parse_num(const std::string& opt, const std::string& v) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end || !std::isfinite(x)) usage_error(opt + ": expected a number, got '" + v + "'");
  return x;
}
i64 parse_int(const std::string& opt, const std::string& v, i64 lo, i64 hi) {
  const double x = parse_num(opt, v);
  if (x != std::floor(x) || x < static_cast<double>(lo) || x > static_cast<double>(hi))
    usage_error(opt + ": expected a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + v + "'");
  return static_cast<i64>(x);
}

std::vector<i64> parse_list(const std::string& opt, const std::string& v, i64 hi) {
  std::vector<i64> out;
  std::size_t at = 0;
  while (true) {
    const std::size_t comma = v.find(',', at);
    out.push_back(parse_int(opt, v.substr(at, comma == std::string::npos ? std::string::npos : comma - at), 1, hi));
    if (comma == std::string::npos) return out;
    at = comma + 1;
  }
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string opt = argv[i];
    if (opt == "--help" || opt == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) usage_error(opt + " needs a value");
    const std::string v = argv[++i];
    if (opt == "--dir") a.dir = v;
    else if (opt == "--provider") {
      if (v != "cpu" && v != "cuda") usage_error("--provider: expected cpu or cuda, got '" + v + "'");
      a.provider = v;
    } else if (opt == "--device") a.device = static_cast<int>(parse_int(opt, v, 0, 1023));
    else if (opt == "--provider-option") {
      const auto eq = v.find('=');
      if (eq == std::string::npos || eq == 0) usage_error("--provider-option: expected KEY=VALUE, got '" + v + "'");
      a.options.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (opt == "--batch") a.batches = parse_list(opt, v, 4096);
    else if (opt == "--images") a.images = parse_list(opt, v, 1 << 20);
    else if (opt == "--steps") a.steps = static_cast<int>(parse_int(opt, v, 1, 1000));
    else if (opt == "--strength") a.strength = parse_num(opt, v);
    else if (opt == "--guidance") a.guidance = parse_num(opt, v);
    else if (opt == "--latent") {
      const auto x = v.find('x');
      if (x == std::string::npos) usage_error("--latent: expected HxW, got '" + v + "'");
      a.h = parse_int(opt, v.substr(0, x), 1, 1024);
      a.w = parse_int(opt, v.substr(x + 1), 1, 1024);
    } else if (opt == "--warmup") a.warmup = static_cast<int>(parse_int(opt, v, 0, 100));
    else if (opt == "--warmup-steps") a.warmup_steps = static_cast<int>(parse_int(opt, v, 1, 1000));
    else if (opt == "--threads") a.threads = static_cast<int>(parse_int(opt, v, 0, 1024));
    else if (opt == "--max-rows") a.max_rows = static_cast<int>(parse_int(opt, v, 0, 1 << 20));
    else if (opt == "--json-out") a.json_out = v;
    else if (opt == "--tag") a.tag = v;
    else usage_error("unknown option '" + opt + "'");
  }
  if (a.dir.empty()) usage_error("--dir DIR is required");
  if (!(a.strength > 0 && a.strength <= 1)) usage_error("--strength must be in (0, 1]");
  if (a.images.empty()) a.images = a.batches;
  if (a.images.size() != a.batches.size())
    usage_error("--images lists " + std::to_string(a.images.size()) + " counts for " + std::to_string(a.batches.size()) + " batch sizes");
  return a;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Uniform-ish values in [-1, 1) from a counter hash (splitmix64), so inputs need no RNG state.
void fill(std::vector<float>& v, std::uint64_t key, float scale) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::uint64_t z = key * 0x9e3779b97f4a7c15ULL + i * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    v[i] = scale * (static_cast<float>(z >> 40) / 8388608.0f - 1.0f);
  }
}

struct Timed {
  Img2ImgStats stats;
  double decode_s = 0, wall_s = 0;
};

// img2img on `images` random latents in batches of `batch`, then the decode of the result.
Timed run(SdPipeline& sd, const Args& a, const SamplerPlan& plan, i64 batch, i64 images, i64 C, i64 dim,
          std::uint64_t seed) {
  const i64 per = C * a.h * a.w;
  std::vector<float> z(static_cast<std::size_t>(images * per)), cond(static_cast<std::size_t>(images * 77 * dim)),
      uncond(static_cast<std::size_t>(77 * dim)), out(z.size());
  fill(z, seed, 1.0f);
  fill(cond, seed + 1, 1.0f);
  fill(uncond, seed + 2, 1.0f);
  Img2ImgJob job;
  job.plan = plan;
  job.guidance = static_cast<float>(a.guidance);
  job.count = images;
  job.channels = C;
  job.height = a.h;
  job.width = a.w;
  job.seq = 77;
  job.dim = dim;
  job.z = z.data();
  job.cond = cond.data();
  job.uncond = uncond.data();
  job.uncond_rows = 1;
  for (i64 i = 0; i < images; ++i) job.keys.push_back({seed, static_cast<std::uint64_t>(i)});
  job.batch_size = batch;
  job.out = out.data();
  Timed t;
  const auto t0 = Clock::now();
  t.stats = sd.img2img(job);
  const auto t1 = Clock::now();
  i64 H = 0, W = 0;
  const auto img = sd.decode(out.data(), images, C, a.h, a.w, 0.18215f, batch, H, W);
  t.decode_s = seconds_since(t1);
  t.wall_s = seconds_since(t0);
  if (img.size() != static_cast<std::size_t>(images * 3 * H * W)) throw std::runtime_error("decode returned a wrong size");
  return t;
}

// Device memory in use on the current device (all processes), GiB; -1 where unknown.
double device_used_gib(int device) {
#ifdef BRAINLATENT_HAVE_CUDA
  std::size_t free_b = 0, total_b = 0;
  if (cudaSetDevice(device) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
    return static_cast<double>(total_b - free_b) / (1024.0 * 1024.0 * 1024.0);
#else
  (void)device;
#endif
  return -1;
}

// Emits one record: stdout and, with --json-out, appended to that file.
void emit(const Args& a, const Json& j) {
  const std::string line = j.done();
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (a.json_out.empty()) return;
  std::FILE* f = std::fopen(a.json_out.c_str(), "a");
  if (!f || std::fprintf(f, "%s\n", line.c_str()) < 0 || std::fclose(f) != 0)
    std::fprintf(stderr, "bench_sampler: could not append to %s\n", a.json_out.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  std::string opts;
  for (const auto& [k, v] : a.options) opts += (opts.empty() ? "" : ",") + k + "=" + v;
  // The fields every record starts with; `batch` and `images` are added per run.
  auto record = [&](i64 batch, i64 images) {
    Json j;
    j.str("bench", "bench_sampler").str("time", utc_now()).str("host", host);
    if (!a.tag.empty()) j.str("tag", a.tag);
    j.str("dir", a.dir).str("provider", a.provider).str("provider_options", opts)
        .str("device_loop_env", env("BRAINLATENT_SD_DEVICE_LOOP"))
        .num("batch", static_cast<double>(batch)).num("images", static_cast<double>(images)).num("steps", a.steps)
        .num("strength", a.strength).num("guidance", a.guidance).str("latent", std::to_string(a.h) + "x" + std::to_string(a.w))
        .str("scheduler", "ddim").num("warmup", a.warmup).num("warmup_steps", a.warmup_steps)
        .num("max_rows_per_run", a.max_rows).str("loadavg", load_average());
    return j;
  };
  std::size_t done = 0;  // batch sizes reported
  std::string route, ort_version;
  double load_s = 0;
  try {
    ort_version = ort_load("").version;
    SdLoadOptions o;
    o.dir = a.dir;
    o.components = {"unet", "vae_decoder"};
    o.session.provider = a.provider;
    o.session.device_id = a.device;
    o.session.provider_options = a.options;
    o.session.intra_threads = a.threads;
    o.session.max_rows_per_run = a.max_rows;
    auto t0 = Clock::now();
    auto sd = SdPipeline::load(o);
    load_s = seconds_since(t0);
    const SdSummary& s = sd->summary();
    route = s.provider;
    if (s.cond_dim <= 0) throw std::runtime_error("the U-Net's encoder_hidden_states width is symbolic; this bench needs it fixed");
    const SamplerPlan plan = make_sampler_plan(sd15_schedule(), SchedulerKind::Ddim, a.steps, a.strength);
    const SamplerPlan warm = make_sampler_plan(sd15_schedule(), SchedulerKind::Ddim, std::min(a.warmup_steps, a.steps), 1.0);
    std::fprintf(stderr, "bench_sampler: %s loaded in %.1f s (%s); %zu U-Net calls per batch\n", a.dir.c_str(), load_s,
                 s.provider.c_str(), plan.steps.size());
    for (; done < a.batches.size(); ++done) {
      const i64 batch = a.batches[done], images = a.images[done];
      double warm_s = 0;
      for (int i = 0; i < a.warmup; ++i)
        warm_s += run(*sd, a, warm, batch, batch, s.latent_channels, s.cond_dim, 100 + i).wall_s;
      const Timed t = run(*sd, a, plan, batch, images, s.latent_channels, s.cond_dim, 1);
      const double loop = t.stats.loop_seconds, unet = t.stats.unet_seconds;
      const double per_image = (loop + t.decode_s) / static_cast<double>(images);
      Json j = record(batch, images);
      j.str("ort_version", ort_version).str("route", route).num("load_s", load_s)
          .num("unet_calls_per_batch", static_cast<double>(plan.steps.size())).num("warmup_s", warm_s)
          .num("s_per_image", per_image).num("loop_s", loop).num("unet_s", unet).num("update_s", t.stats.update_seconds)
          .num("overhead_ratio", unet > 0 ? loop / unet : NAN)
          .num("unet_calls", static_cast<double>(t.stats.unet_calls)).num("batches", static_cast<double>(t.stats.batches))
          .num("unet_ms_per_call", t.stats.unet_calls ? 1e3 * unet / static_cast<double>(t.stats.unet_calls) : NAN)
          .num("decode_s", t.decode_s).num("wall_s", t.wall_s).str("loop_backend", t.stats.backend);
      if (a.provider == "cuda") j.num("device_used_gib", device_used_gib(a.device));
      j.num("peak_rss_gib", peak_rss_gib()).str("status", "ok");
      std::fprintf(stderr, "bench_sampler: batch %lld: %.4f s/image (loop %.3f s, U-Net %.3f s, ratio %.4f, decode %.3f s; warm-up %.1f s)\n",
                   static_cast<long long>(batch), per_image, loop, unet, unet > 0 ? loop / unet : NAN, t.decode_s, warm_s);
      emit(a, j);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sampler: %s\n", e.what());
    Json j = done < a.batches.size() ? record(a.batches[done], a.images[done]) : record(0, 0);
    j.str("ort_version", ort_version).str("route", route).num("load_s", load_s).num("peak_rss_gib", peak_rss_gib())
        .str("status", "error").str("error", e.what());
    emit(a, j);
    return 1;
  }
  return 0;
}
