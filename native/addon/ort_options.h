// ONNX Runtime session options from a JS options object, shared by the SD pipeline and OnnxModel.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "brainlatent/checked_file.h"
#include "brainlatent/ort_runtime.h"
#include "kit.h"

namespace brainlatent::addon {

// {intraOpThreads, interOpThreads, provider, deviceId, providerLibrary, providerOptions, spinning, optimization, memory: 'default' | 'lean',
//  memoryArena, memoryPattern, prepacking, initializersMalloc, maxRowsPerRun}; 'lean' turns the memory
// options to their low-peak values (one row per U-Net run), and an explicit option overrides it.
inline OrtSessionConfig session_config_of(const Napi::Object& o) {
  OrtSessionConfig c;
  c.intra_threads = static_cast<int>(attr_number(o, "intraOpThreads", 0));
  c.inter_threads = static_cast<int>(attr_number(o, "interOpThreads", 0));
  c.provider = attr_string(o, "provider", "cpu");
  c.device_id = static_cast<int>(attr_number(o, "deviceId", 0));
  c.provider_library = attr_string(o, "providerLibrary", "");
  // {key: value} strings (checked at the TS boundary), passed through to the provider
  if (has(o, "providerOptions")) {
    const Napi::Value v = o.Get("providerOptions");
    if (!v.IsObject()) throw Napi::TypeError::New(o.Env(), "option 'providerOptions' must be an object of strings");
    const Napi::Object po = v.As<Napi::Object>();
    const Napi::Array keys = po.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
      const Napi::Value val = po.Get(key);
      if (!val.IsString()) throw Napi::TypeError::New(o.Env(), "provider option '" + key + "' must be a string");
      c.provider_options.emplace_back(key, val.As<Napi::String>().Utf8Value());
    }
  }
  c.spinning = attr_bool(o, "spinning", true);
  const std::string memory = attr_string(o, "memory", "default");
  if (memory != "default" && memory != "lean")
    throw Napi::RangeError::New(o.Env(), "option 'memory' must be 'default' or 'lean', got '" + memory + "'");
  const bool lean = memory == "lean";
  // 'all' adds the NCHWc layout transform, which re-lays every Conv weight into a second copy at load
  // (SD 1.x: 2.4 GiB resident and ~1 min before the first step); 'extended' leaves the external weights
  // memory-mapped where they lie. On SD 1.x's U-Net, lean at 'extended' peaked at 1.46× the weights
  // against 1.53× at 'all', and its U-Net call was no slower.
  c.optimization = attr_string(o, "optimization", lean ? "extended" : "all");
  c.memory_arena = attr_bool(o, "memoryArena", !lean);
  c.memory_pattern = attr_bool(o, "memoryPattern", !lean);
  c.prepacking = attr_bool(o, "prepacking", !lean);
  c.initializers_malloc = attr_bool(o, "initializersMalloc", lean);
  c.max_rows_per_run = static_cast<int>(attr_number(o, "maxRowsPerRun", lean ? 1 : 0));
  return c;
}

// files: [{location, path, dev: bigint, ino: bigint, what?, furthest?: {tensor, where?, offset, length}}], a model's external
// data files as modelRoots.ts checked them (CheckedFile), with the tensor that needs a file's furthest bytes. `where` names the option in a TypeError.
inline std::vector<CheckedFile> checked_files_of(const Napi::Value& v, const std::string& where) {
  const Napi::Env env = v.Env();
  if (!v.IsArray()) throw Napi::TypeError::New(env, where + " must be an array");
  const Napi::Array a = v.As<Napi::Array>();
  std::vector<CheckedFile> files;
  const auto id = [&](const Napi::Object& o, const char* key) {
    const Napi::Value x = o.Get(key);
    bool lossless = false;
    const std::uint64_t n = x.IsBigInt() ? x.As<Napi::BigInt>().Uint64Value(&lossless) : 0;
    if (!x.IsBigInt() || !lossless) throw Napi::TypeError::New(env, where + "[]." + key + " must be a bigint (a file's " + key + ")");
    return n;
  };
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (!a.Get(i).IsObject()) throw Napi::TypeError::New(env, where + "[" + std::to_string(i) + "] must be an object");
    const Napi::Object o = a.Get(i).As<Napi::Object>();
    CheckedFile f;
    f.location = attr_string(o, "location", "");
    f.path = attr_string(o, "path", "");
    if (f.location.empty() || f.path.empty()) throw Napi::TypeError::New(env, where + "[" + std::to_string(i) + "] needs a location and a path");
    f.dev = id(o, "dev");
    f.ino = id(o, "ino");
    f.what = attr_string(o, "what", "");
    if (o.Get("furthest").IsObject()) {
      const Napi::Object t = o.Get("furthest").As<Napi::Object>();
      const double offset = attr_number(t, "offset", -1), length = attr_number(t, "length", -1);
      // (tensor "": an unnamed one, e.g. a Constant node's value moved to external data; `where` places it)
      f.furthest.tensor = attr_string(t, "tensor", "");
      f.furthest.where = attr_string(t, "where", "");
      if (!(offset >= 0) || !(length >= 0))
        throw Napi::TypeError::New(env, where + "[" + std::to_string(i) + "].furthest needs an offset and a length (numbers >= 0)");
      f.furthest.offset = static_cast<std::uint64_t>(offset);
      f.furthest.length = static_cast<std::uint64_t>(length);
    }
    files.push_back(std::move(f));
  }
  return files;
}

}  // namespace brainlatent::addon
