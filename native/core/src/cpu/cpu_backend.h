// Internal: the CPU backend's factory, for the registry (backend_registry.cpp).
#pragma once
#include <memory>
#include <string>

#include "brainlatent/backend.h"

namespace brainlatent {

std::unique_ptr<Backend> make_cpu_backend();
// The BLAS library and thread count, as list_backends() reports them.
std::string cpu_backend_description();

}  // namespace brainlatent
