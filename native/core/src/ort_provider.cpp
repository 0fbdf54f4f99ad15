// Execution providers for a session: the CPU default, the CUDA provider the classic way
// (SessionOptionsAppendExecutionProvider_CUDA_V2, in a core built with CUDA) or through a plugin
// execution-provider library (RegisterExecutionProviderLibrary, GetEpDevices, then
// SessionOptionsAppendExecutionProvider_V2 — how ORT 1.29's CPU core loads its CUDA 13 provider,
// whose classic append is not enabled), and any other provider by name.
// Reference: onnxruntime.ai/docs/execution-providers/plugin-ep-libraries/usage.html and the API-29
// header (native/third_party/onnxruntime/include/onnxruntime_c_api.h).
#include <cctype>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <sstream>

#include "brainlatent/error.h"
#include "ort_api.h"

namespace brainlatent::ort {
namespace {

// The name ORT's CUDA plugin factory gives its OrtEpDevices (kCudaExecutionProvider).
constexpr const char* kCudaEpName = "CUDAExecutionProvider";
constexpr const char* kRegistrationName = "brainlatent-cuda";

struct Registry {
  std::mutex mutex;
  std::string path;  // the registered library (its real path when it resolves), "" before
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed, like the OrtEnv it belongs to
  return *r;
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

std::string take_message(OrtStatus* st) {
  const std::string msg = api().GetErrorMessage(st);
  api().ReleaseStatus(st);
  return msg;
}

// Registers `path` once per process; the same library again is a no-op, another one an error.
void register_library(const std::string& path) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const std::string real = real_path(path);
  if (!r.path.empty()) {
    if (r.path == real) return;
    throw Error(ErrorCode::InvalidArgument, "the CUDA provider library " + r.path +
                                                " is already registered; cannot register a second one (" + path +
                                                ") in one process");
  }
  if (OrtStatus* st = api().RegisterExecutionProviderLibrary(env(), kRegistrationName, path.c_str()))
    throw Error(ErrorCode::BackendUnavailable,
                "cannot load the CUDA execution provider library " + path + ": " + take_message(st));
  r.path = real;
}

const char* value_of(const OrtKeyValuePairs* kv, const char* key) {
  return kv ? api().GetKeyValue(kv, key) : nullptr;
}

// The CUDA ordinal of an EP device: the factory puts it in its EP options ("device_id") and, in newer
// releases, its metadata ("cuda_device_id"); HardwareDevice_DeviceId is the PCI device id, not the ordinal.
int cuda_ordinal(const OrtEpDevice* d, int position) {
  const OrtApi& a = api();
  const char* v = value_of(a.EpDevice_EpOptions(d), "device_id");
  if (!v) v = value_of(a.EpDevice_EpMetadata(d), "cuda_device_id");
  if (!v) return position;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return end != v && *end == '\0' ? static_cast<int>(n) : position;
}

const char* device_type_name(OrtHardwareDeviceType t) {
  switch (t) {
    case OrtHardwareDeviceType_CPU: return "CPU";
    case OrtHardwareDeviceType_GPU: return "GPU";
    case OrtHardwareDeviceType_NPU: return "NPU";
  }
  return "?";
}

const OrtEpDevice* select_cuda_device(const std::string& library, int device_id) {
  const OrtApi& a = api();
  const OrtEpDevice* const* devices = nullptr;
  std::size_t count = 0;
  if (OrtStatus* st = a.GetEpDevices(env(), &devices, &count))
    throw Error(ErrorCode::BackendUnavailable, "ONNX Runtime GetEpDevices failed: " + take_message(st));
  std::ostringstream found, ordinals;
  int cuda_count = 0;
  const OrtEpDevice* chosen = nullptr;
  for (std::size_t i = 0; i < count; ++i) {
    const char* name = a.EpDevice_EpName(devices[i]);
    const OrtHardwareDevice* hw = a.EpDevice_Device(devices[i]);
    found << (i ? ", " : "") << (name ? name : "?") << " (" << (hw ? device_type_name(a.HardwareDevice_Type(hw)) : "?")
          << ')';
    if (!name || std::string(name) != kCudaEpName) continue;
    const int ordinal = cuda_ordinal(devices[i], cuda_count);
    ordinals << (cuda_count ? ", " : "") << ordinal;
    ++cuda_count;
    if (ordinal == device_id && !chosen) chosen = devices[i];
  }
  if (cuda_count == 0)
    throw Error(ErrorCode::BackendUnavailable,
                "the CUDA provider library " + library + " registered but offers no CUDA device (" + kCudaEpName +
                    "); the EP devices found: " + (count ? found.str() : "none") +
                    " (no NVIDIA GPU visible, or CUDA/cuDNN libraries missing from LD_LIBRARY_PATH?)");
  if (!chosen)
    throw Error(ErrorCode::BackendUnavailable,
                "CUDA device " + std::to_string(device_id) + " does not exist: the CUDA provider offers " +
                    std::to_string(cuda_count) + " device" + (cuda_count == 1 ? "" : "s") + " (ids " + ordinals.str() +
                    ")");
  return chosen;
}

void check_options(const OrtSessionConfig& c) {
  for (const auto& [key, value] : c.provider_options) {
    if (key.empty()) throw Error(ErrorCode::InvalidArgument, "provider option with an empty key (value '" + value + "')");
    if (key == "device_id")
      throw Error(ErrorCode::InvalidArgument,
                  "provider option 'device_id' is not taken: give the device as the session's device id (deviceId)");
  }
}

}  // namespace

std::string provider_library_of(const OrtSessionConfig& c) {
  if (!c.provider_library.empty()) return c.provider_library;
  const char* e = std::getenv("BRAINLATENT_ORT_PROVIDER_LIB");
  return e && *e ? e : "";
}

namespace {

// What to do when the classic CUDA append fails. A core with the CUDA provider compiled in but without its libraries
// (onnxruntime-node's, and the copy shipped with the prebuilt engine) needs a CUDA build of ONNX Runtime; a core
// without it (a CPU build) takes either that or a plugin provider library.
std::string cuda_hint() {
  const OrtRuntimeInfo* info = ort_loaded_info();
  const std::string build =
      "load a CUDA build of ONNX Runtime: BRAINLATENT_ORT_LIB=<its libonnxruntime.so> (--ort-lib, ortLibrary); "
      "see docs/cuda.md";
  if (info)
    for (const auto& [provider, missing] : info->providers_without_library)
      if (provider == kCudaEpName)
        return "the ONNX Runtime at " + info->library_path + " has the CUDA provider compiled in but not its libraries (" +
               missing + " not found): " + build;
  return "this ONNX Runtime cannot run the CUDA provider as it is: " + build +
         "; a core without the classic CUDA provider loads it as a plugin: BRAINLATENT_ORT_PROVIDER_LIB=" +
         "<libonnxruntime_providers_cuda.so> (--provider-lib, providerLibrary)";
}

}  // namespace

std::string append_provider(OrtSessionOptions* so, const OrtSessionConfig& c) {
  const OrtApi& a = api();
  if (c.provider.empty() || c.provider == "cpu") {
    if (!c.provider_library.empty())
      throw Error(ErrorCode::InvalidArgument, "a provider library (" + c.provider_library +
                                                  ") is for provider 'cuda', but the provider is '" +
                                                  (c.provider.empty() ? "cpu" : c.provider) + "'");
    return "cpu";
  }
  check_options(c);
  std::vector<const char*> keys, vals;
  for (const auto& [key, value] : c.provider_options) {
    keys.push_back(key.c_str());
    vals.push_back(value.c_str());
  }
  if (c.provider == "cuda") {
    const std::string library = provider_library_of(c);
    if (!library.empty()) {
      register_library(library);
      const OrtEpDevice* device = select_cuda_device(library, c.device_id);
      if (OrtStatus* st = a.SessionOptionsAppendExecutionProvider_V2(so, env(), &device, 1, keys.data(), vals.data(),
                                                                      keys.size()))
        throw Error(ErrorCode::BackendUnavailable,
                    "the CUDA execution provider from " + library + " is unavailable: " + take_message(st));
      return "cuda (plugin: " + library + ")";
    }
    OrtCUDAProviderOptionsV2* cuda = nullptr;
    check(a.CreateCUDAProviderOptions(&cuda), "CreateCUDAProviderOptions");
    const std::string dev = std::to_string(c.device_id);
    keys.insert(keys.begin(), "device_id");
    vals.insert(vals.begin(), dev.c_str());
    OrtStatus* st = a.UpdateCUDAProviderOptions(cuda, keys.data(), vals.data(), keys.size());
    if (!st) st = a.SessionOptionsAppendExecutionProvider_CUDA_V2(so, cuda);
    a.ReleaseCUDAProviderOptions(cuda);
    if (st) {
      std::string why = take_message(st);
      while (!why.empty() && std::isspace(static_cast<unsigned char>(why.back()))) why.pop_back();
      throw Error(ErrorCode::BackendUnavailable, "the CUDA execution provider is unavailable: " + why + " (" + cuda_hint() + ")");
    }
    return "cuda (built-in)";
  }
  if (!c.provider_library.empty())
    throw Error(ErrorCode::InvalidArgument, "a provider library (" + c.provider_library +
                                                ") is for provider 'cuda', but the provider is '" + c.provider + "'");
  if (OrtStatus* st = a.SessionOptionsAppendExecutionProvider(so, c.provider.c_str(), keys.data(), vals.data(),
                                                              keys.size()))
    throw Error(ErrorCode::BackendUnavailable,
                "execution provider '" + c.provider + "' is unavailable: " + take_message(st));
  return c.provider;
}

}  // namespace brainlatent::ort
