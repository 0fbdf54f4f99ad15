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
// src/cuda/cuda_backend.cpp: the device found (or why none is usable) and the factory.
BackendInfo cuda_backend_info();
std::unique_ptr<Backend> make_cuda_backend();
#endif

std::vector<BackendInfo> list_backends() {
  std::vector<BackendInfo> out;
#ifdef BRAINLATENT_HAVE_CUDA
  out.push_back(cuda_backend_info());
#else
  out.push_back({"cuda", false, false, std::string("the engine was built without CUDA: ") + BRAINLATENT_CUDA_REASON});
#endif
  out.push_back({"cpu", true, true, cpu_backend_description()});
  return out;
}

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name != "auto" && name != "cpu" && name != "cuda")
    throw Error(ErrorCode::InvalidArgument, "backend: expected 'auto', 'cpu' or 'cuda', got '" + name + "'");
  if (name == "cpu") return make_cpu_backend();
  const auto all = list_backends();
  if (name == "cuda") {
    const auto it = std::find_if(all.begin(), all.end(), [](const BackendInfo& b) { return b.name == "cuda"; });
    if (!it->available) throw Error(ErrorCode::BackendUnavailable, "backend 'cuda' requested but " + it->detail);
  }
#ifdef BRAINLATENT_HAVE_CUDA
  if (name == "cuda" || all.front().available) return make_cuda_backend();
#endif
  return make_cpu_backend();
}

}  // namespace brainlatent
