// Which backends this engine was built with, and how to get one by name. A backend is registered
// here when its sources are compiled (BRAINLATENT_HAVE_<NAME>, set by native/core/CMakeLists.txt);
// a missing one is listed with the reason CMake recorded (BRAINLATENT_CUDA_REASON).
#include <algorithm>
#include <string>

#include "brainlatent/backend.h"
#include "cpu/cpu_backend.h"

#ifndef BRAINLATENT_CUDA_REASON
#define BRAINLATENT_CUDA_REASON "not searched (node-gyp builds are CPU-only)"
#endif

namespace brainlatent {

#ifdef BRAINLATENT_HAVE_CUDA
// src/cuda/cuda_backend.cpp: the device found (or why none is usable) and the factory; device −1
// is BRAINLATENT_CUDA_DEVICE's (default 0).
BackendInfo cuda_backend_info(int device);
std::unique_ptr<Backend> make_cuda_backend(int device);
#endif

namespace {
// "cuda" → −1 (the default device), "cuda:N" → N; anything else → −2.
int cuda_device_of(const std::string& name) {
  if (name == "cuda") return -1;
  if (name.rfind("cuda:", 0) != 0 || name.size() == 5 || name.size() > 9) return -2;
  int d = 0;
  for (std::size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -2;
    d = d * 10 + (name[i] - '0');
  }
  return d;
}
}  // namespace

std::vector<BackendInfo> list_backends() {
  std::vector<BackendInfo> out;
#ifdef BRAINLATENT_HAVE_CUDA
  out.push_back(cuda_backend_info(-1));
#else
  out.push_back({"cuda", false, false, std::string("the engine was built without CUDA: ") + BRAINLATENT_CUDA_REASON});
#endif
  out.push_back({"cpu", true, true, cpu_backend_description()});
  return out;
}

std::unique_ptr<Backend> make_backend(const std::string& name) {
  const int device = cuda_device_of(name);
  if (name != "auto" && name != "cpu" && device == -2)
    throw Error(ErrorCode::InvalidArgument, "backend: expected 'auto', 'cpu', 'cuda' or 'cuda:N' (a device index), got '" + name + "'");
  if (name == "cpu") return make_cpu_backend();
#ifdef BRAINLATENT_HAVE_CUDA
  if (name != "auto") {
    const BackendInfo info = cuda_backend_info(device);
    if (!info.available) throw Error(ErrorCode::BackendUnavailable, "backend '" + name + "' requested but " + info.detail);
    return make_cuda_backend(device);
  }
  if (cuda_backend_info(-1).available) return make_cuda_backend(-1);
#else
  if (name != "auto") {
    const auto all = list_backends();
    const auto it = std::find_if(all.begin(), all.end(), [](const BackendInfo& b) { return b.name == "cuda"; });
    throw Error(ErrorCode::BackendUnavailable, "backend '" + name + "' requested but " + it->detail);
  }
#endif
  return make_cpu_backend();
}

}  // namespace brainlatent
