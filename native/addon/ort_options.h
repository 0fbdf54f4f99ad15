// ONNX Runtime session options from a JS options object, shared by the SD pipeline and OnnxModel.
#pragma once
#include <napi.h>

#include "brainlatent/ort_runtime.h"
#include "kit.h"

namespace brainlatent::addon {

// {intraOpThreads, interOpThreads, provider, deviceId, spinning, optimization, memory: 'default' | 'lean',
//  memoryArena, memoryPattern, prepacking, initializersMalloc}; 'lean' turns the four memory options to
// their low-peak values, and an explicit option overrides it.
inline OrtSessionConfig session_config_of(const Napi::Object& o) {
  OrtSessionConfig c;
  c.intra_threads = static_cast<int>(attr_number(o, "intraOpThreads", 0));
  c.inter_threads = static_cast<int>(attr_number(o, "interOpThreads", 0));
  c.provider = attr_string(o, "provider", "cpu");
  c.device_id = static_cast<int>(attr_number(o, "deviceId", 0));
  c.spinning = attr_bool(o, "spinning", true);
  c.optimization = attr_string(o, "optimization", "all");
  const std::string memory = attr_string(o, "memory", "default");
  if (memory != "default" && memory != "lean")
    throw Napi::RangeError::New(o.Env(), "option 'memory' must be 'default' or 'lean', got '" + memory + "'");
  const bool lean = memory == "lean";
  c.memory_arena = attr_bool(o, "memoryArena", !lean);
  c.memory_pattern = attr_bool(o, "memoryPattern", !lean);
  c.prepacking = attr_bool(o, "prepacking", !lean);
  c.initializers_malloc = attr_bool(o, "initializersMalloc", lean);
  return c;
}

}  // namespace brainlatent::addon
