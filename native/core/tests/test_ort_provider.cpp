// Execution-provider selection on a CPU machine: the CUDA plugin route's errors (a provider library
// that is missing or not a plugin library → BackendUnavailable naming the path and ORT's message; the
// BRAINLATENT_ORT_PROVIDER_LIB fallback), contradictory settings refused, and the route each session
// reports. Skips (exit 77) without an ONNX Runtime library.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

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
  for (const auto& [provider, missing] : info.providers_without_library)
    std::printf("compiled in, library not found: %s (%s)\n", provider.c_str(), missing.c_str());
  // A provider whose library is missing is not listed as available; onnxruntime-node's core (the test's default)
  // has CUDA compiled in without libonnxruntime_providers_cuda.so.
  bool cuda_listed = false, cuda_missing = false;
  for (const auto& p : info.providers) cuda_listed |= p == "CUDAExecutionProvider";
  for (const auto& [provider, missing] : info.providers_without_library) cuda_missing |= provider == "CUDAExecutionProvider";
  SD_CHECK(!(cuda_listed && cuda_missing));
  const std::string folder = lib.substr(0, lib.find_last_of('/') + 1);
  SD_CHECK(!cuda_listed || exists(folder + "libonnxruntime_providers_cuda.so"));
  SD_CHECK(missing_provider_library(lib, "CPUExecutionProvider").empty());
  SD_CHECK(missing_provider_library(lib, "XnnpackExecutionProvider").empty());
  // The probe on a folder of empty files: the provider's own library first, then the shared bridge.
  {
    char tmpl[] = "/tmp/bl-provider-libs-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    const std::string core = dir + "/libonnxruntime.so.1";
    SD_CHECK(missing_provider_library(core, "CUDAExecutionProvider") == dir + "/libonnxruntime_providers_cuda.so");
    SD_CHECK(missing_provider_library(core, "TensorrtExecutionProvider") == dir + "/libonnxruntime_providers_tensorrt.so");
    std::fclose(std::fopen((dir + "/libonnxruntime_providers_cuda.so").c_str(), "w"));
    SD_CHECK(missing_provider_library(core, "CUDAExecutionProvider") == dir + "/libonnxruntime_providers_shared.so");
    std::fclose(std::fopen((dir + "/libonnxruntime_providers_shared.so").c_str(), "w"));
    SD_CHECK(missing_provider_library(core, "CUDAExecutionProvider").empty());
    for (const char* f : {"/libonnxruntime_providers_shared.so", "/libonnxruntime_providers_cuda.so"}) std::remove((dir + f).c_str());
    ::rmdir(dir.c_str());
  }
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

  // The classic route on a core without CUDA's libraries: unavailable, pointing at a CUDA build of ONNX Runtime
  // (BRAINLATENT_ORT_LIB, docs/cuda.md); on one with CUDA compiled in but its libraries missing (onnxruntime-node's),
  // naming the file not found rather than the plugin route. (On a CUDA machine with a CUDA build the provider
  // appends and the missing model is the error.)
  c.provider_library.clear();
  try {
    OnnxModel::load(model, lib, c);
    SD_CHECK(!"expected an error");
  } catch (const Error& e) {
    std::printf("classic route: %s\n", e.what());
    SD_CHECK((e.code() == ErrorCode::BackendUnavailable && contains(e.what(), "BRAINLATENT_ORT_LIB=") &&
              contains(e.what(), "docs/cuda.md")) ||
             (e.code() == ErrorCode::OrtFailure && contains(e.what(), model)));
    if (cuda_missing) {
      SD_CHECK(contains(e.what(), "compiled in but not its libraries"));
      SD_CHECK(!contains(e.what(), "BRAINLATENT_ORT_PROVIDER_LIB"));
    }
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
