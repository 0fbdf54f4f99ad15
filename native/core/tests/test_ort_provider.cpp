// Execution-provider selection on a CPU machine: the CUDA plugin route's errors (a provider library
// that is missing or not a plugin library → BackendUnavailable naming the path and ORT's message; the
// BRAINLATENT_ORT_PROVIDER_LIB fallback), contradictory settings refused, and the route each session
// reports. Skips (exit 77) without an ONNX Runtime library.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "brainlatent/error.h"
#include "brainlatent/ort_model.h"
#include "sd_test_util.h"

using namespace brainlatent;

using sdtest::contains;
using sdtest::error_of;
using sdtest::exists;

int main() {
  const char* env_lib = std::getenv("BRAINLATENT_ORT_LIB");
  const std::string lib = env_lib && *env_lib ? env_lib : BRAINLATENT_TEST_ORT_LIB;
  if (!exists(lib)) {
    std::printf("test_ort_provider: SKIPPED, no ONNX Runtime library at %s (npm install, or set BRAINLATENT_ORT_LIB)\n",
                lib.c_str());
    return 77;
  }
  const auto info = ort_load(lib);
  std::printf("ONNX Runtime %s at %s\n", info.version.c_str(), lib.c_str());
  ::unsetenv("BRAINLATENT_ORT_PROVIDER_LIB");
  // Any model path: the provider is appended before the model is read.
  const std::string model = "/nonexistent/model.onnx";

  // A provider library that does not exist: BackendUnavailable naming it, with ORT's reason.
  OrtSessionConfig c;
  c.provider = "cuda";
  c.provider_library = "/nonexistent/libonnxruntime_providers_cuda.so";
  c.provider_options = {{"use_tf32", "0"}};
  std::string msg = error_of([&] { OnnxModel::load(model, lib, c); }, ErrorCode::BackendUnavailable);
  std::printf("missing library: %s\n", msg.c_str());
  SD_CHECK(contains(msg, "/nonexistent/libonnxruntime_providers_cuda.so"));
  SD_CHECK(contains(msg, "cannot load the CUDA execution provider library"));
  // ... and the same from the environment when the config names none.
  ::setenv("BRAINLATENT_ORT_PROVIDER_LIB", "/nonexistent/from-env/libonnxruntime_providers_cuda.so", 1);
  c.provider_library.clear();
  msg = error_of([&] { OnnxModel::load(model, lib, c); }, ErrorCode::BackendUnavailable);
  SD_CHECK(contains(msg, "/nonexistent/from-env/libonnxruntime_providers_cuda.so"));
  ::unsetenv("BRAINLATENT_ORT_PROVIDER_LIB");

  // A library that exists but is no plugin library (the ONNX Runtime core itself: no CreateEpFactories).
  c.provider_library = lib;
  msg = error_of([&] { OnnxModel::load(model, lib, c); }, ErrorCode::BackendUnavailable);
  std::printf("not a plugin library: %s\n", msg.c_str());
  SD_CHECK(contains(msg, lib));

  // Neither failure left a registration behind: a later attempt reports its own library again.
  c.provider_library = "/nonexistent/second/libonnxruntime_providers_cuda.so";
  msg = error_of([&] { OnnxModel::load(model, lib, c); }, ErrorCode::BackendUnavailable);
  SD_CHECK(contains(msg, "/nonexistent/second/") && !contains(msg, "already registered"));

  // The classic route on a core without CUDA: unavailable, pointing at the plugin route.
  // (On a CUDA machine with a CUDA build the provider appends and the missing model is the error.)
  c.provider_library.clear();
  try {
    OnnxModel::load(model, lib, c);
    SD_CHECK(!"expected an error");
  } catch (const Error& e) {
    std::printf("classic route: %s\n", e.what());
    SD_CHECK((e.code() == ErrorCode::BackendUnavailable && contains(e.what(), "BRAINLATENT_ORT_PROVIDER_LIB")) ||
             (e.code() == ErrorCode::OrtFailure && contains(e.what(), model)));
  }

  // Contradictory settings are refused before ORT is asked.
  c.provider_options = {{"device_id", "1"}};
  msg = error_of([&] { OnnxModel::load(model, lib, c); }, ErrorCode::InvalidArgument);
  SD_CHECK(contains(msg, "device_id") && contains(msg, "deviceId"));
  c.provider_options = {{"", "1"}};
  msg = error_of([&] { OnnxModel::load(model, lib, c); }, ErrorCode::InvalidArgument);
  SD_CHECK(contains(msg, "empty key"));
  OrtSessionConfig cpu;
  cpu.provider_library = "/some/libonnxruntime_providers_cuda.so";
  msg = error_of([&] { OnnxModel::load(model, lib, cpu); }, ErrorCode::InvalidArgument);
  SD_CHECK(contains(msg, "'cuda'") && contains(msg, "'cpu'"));
  // The environment's library only concerns provider 'cuda': a CPU session ignores it.
  ::setenv("BRAINLATENT_ORT_PROVIDER_LIB", "/nonexistent/libonnxruntime_providers_cuda.so", 1);
  cpu.provider_library.clear();
  msg = error_of([&] { OnnxModel::load(model, lib, cpu); }, ErrorCode::OrtFailure);  // the model file, not the provider
  SD_CHECK(contains(msg, model));
  ::unsetenv("BRAINLATENT_ORT_PROVIDER_LIB");

  // The route a CPU session reports, on a real model when the SD fixtures exist.
  const char* fx = std::getenv("BRAINLATENT_SD_FIXTURES");
  const std::string unet = std::string(fx && *fx ? fx : BRAINLATENT_TEST_SD_FIXTURES) + "/optimum-1.24/unet/model.onnx";
  if (exists(unet)) {
    cpu.intra_threads = 1;
    auto m = OnnxModel::load(unet, lib, cpu);
    SD_CHECK(m->provider() == "cpu");
  } else {
    std::printf("no fixture at %s: the CPU route's report is not checked\n", unet.c_str());
  }
  return sdtest::finish("test_ort_provider");
}
