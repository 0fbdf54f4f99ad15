// Node-API surface of OnnxModel (brainlatent/ort_model.h): any ONNX model on the engine's ONNX
// Runtime (from a file, or from its bytes with external weights in a folder), loaded as a handle and
// run off the main thread on named inputs, returning named float32 outputs without a copy. Inputs are
// read in place (the worker holds references to their arrays).
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "addon_modules.h"
#include "brainlatent/error.h"
#include "brainlatent/ort_model.h"
#include "kit.h"
#include "ort_options.h"

namespace brainlatent::addon {
namespace {

struct ModelHolder {
  std::shared_ptr<OnnxModel> model;
};

std::shared_ptr<OnnxModel> model_of(const Napi::Value& v) {
  if (!v.IsExternal()) throw Napi::TypeError::New(v.Env(), "expected an ONNX model handle");
  auto* h = v.As<Napi::External<ModelHolder>>().Data();
  if (!h->model) throw Napi::Error::New(v.Env(), "this OnnxModel was disposed");
  return h->model;
}

Napi::Array infos(Napi::Env env, const std::vector<OnnxTensorInfo>& list) {
  Napi::Array a = Napi::Array::New(env, list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto& t = list[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", t.name);
    o.Set("dtype", t.dtype);
    Napi::Array shape = Napi::Array::New(env, t.shape.size());
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
      if (t.shape[d] >= 0) shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, static_cast<double>(t.shape[d])));
      else shape.Set(static_cast<uint32_t>(d), Napi::String::New(env, t.dims[d].empty() ? "?" : t.dims[d]));
    }
    o.Set("shape", shape);
    a.Set(static_cast<uint32_t>(i), o);
  }
  return a;
}

// onnxLoad({path, ortLibrary, ...session options (ort_options.h)})
// onnxLoad({bytes: Uint8Array, name, externalDataFolder, ortLibrary, ...session options}): a model from its
//   serialized bytes (read in place: the worker holds the array until the load settles), its external
//   weights read from externalDataFolder; `name` stands for it in messages. With `files` (a service's checked
//   files, checked_files_of) instead, its external data comes from those files, opened and mapped by the engine.
//   -> Promise<{handle, inputs, outputs, provider}>
Napi::Value OnnxLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "onnxLoad(options): options must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  const std::string lib = attr_string(o, "ortLibrary", "");
  const OrtSessionConfig cfg = session_config_of(o);
  auto result = std::make_shared<std::shared_ptr<OnnxModel>>();
  auto done = [result](Napi::Env e) -> Napi::Value {
    auto* holder = new ModelHolder{*result};
    Napi::Object out = Napi::Object::New(e);
    out.Set("handle", Napi::External<ModelHolder>::New(e, holder, [](Napi::Env, ModelHolder* h) { delete h; }));
    out.Set("inputs", infos(e, holder->model->inputs()));
    out.Set("outputs", infos(e, holder->model->outputs()));
    out.Set("provider", holder->model->provider());
    return out;
  };
  if (has(o, "bytes")) {
    const Napi::Value b = o.Get("bytes");
    if (!b.IsTypedArray() || b.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(env, "onnxLoad(options): bytes must be a Uint8Array");
    void* data = nullptr;
    std::size_t length = 0;
    if (napi_get_typedarray_info(env, b, nullptr, &length, &data, nullptr, nullptr) != napi_ok)
      throw Napi::TypeError::New(env, "onnxLoad(options): the model bytes could not be read");
    const std::string name = attr_string(o, "name", "(model in memory)");
    const std::string folder = attr_string(o, "externalDataFolder", "");
    if (has(o, "files")) {  // a service's checked files: the engine opens and maps them, ONNX Runtime no path
      const std::vector<CheckedFile> files = checked_files_of(o.Get("files"), "onnxLoad(options): files");
      return run_job(
          env, "brainlatent.onnxLoad",
          [data, length, name, files, lib, cfg, result](JobContext&) {
            *result = OnnxModel::load_checked(data, length, name, files, lib, cfg);
          },
          done, {Napi::Function(), nullptr, {b}});
    }
    return run_job(
        env, "brainlatent.onnxLoad",
        [data, length, name, folder, lib, cfg, result](JobContext&) {
          *result = OnnxModel::load_bytes(data, length, name, folder, lib, cfg);
        },
        done, {Napi::Function(), nullptr, {b}});
  }
  const std::string path = attr_string(o, "path", "");
  return run_job(
      env, "brainlatent.onnxLoad", [path, lib, cfg, result](JobContext&) { *result = OnnxModel::load(path, lib, cfg); }, done);
}

Napi::Value OnnxDispose(const Napi::CallbackInfo& info) {
  if (info[0].IsExternal()) info[0].As<Napi::External<ModelHolder>>().Data()->model.reset();
  return info.Env().Undefined();
}

// onnxRun(handle, inputs: {name, data: Float32Array|Float64Array|Int32Array|BigInt64Array, shape}[],
//         outputNames: string[], cancelToken?) -> Promise<{name, data: Float32Array, shape}[]>
// Cancelling the token stops a run in flight (ONNX Runtime's terminate flag), as do the environment's end and the
// process's exit.
Napi::Value OnnxRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<OnnxModel> model = model_of(info[0]);
  if (!info[1].IsArray() || !info[2].IsArray())
    throw Napi::TypeError::New(env, "onnxRun(handle, inputs, outputNames): inputs and outputNames must be arrays");
  Napi::Array ins = info[1].As<Napi::Array>();
  Napi::Array outs = info[2].As<Napi::Array>();
  auto inputs = std::make_shared<std::vector<OnnxInput>>();
  std::vector<Napi::Value> keep;
  for (uint32_t i = 0; i < ins.Length(); ++i) {
    Napi::Object o = ins.Get(i).As<Napi::Object>();
    OnnxInput in;
    in.name = attr_string(o, "name", "");
    Napi::Value d = o.Get("data");
    if (!d.IsTypedArray()) throw Napi::TypeError::New(env, "input '" + in.name + "': data must be a typed array");
    Napi::TypedArray ta = d.As<Napi::TypedArray>();
    switch (ta.TypedArrayType()) {
      case napi_float32_array: in.dtype = "float32"; break;
      case napi_float64_array: in.dtype = "float64"; break;
      case napi_int32_array: in.dtype = "int32"; break;
      case napi_bigint64_array: in.dtype = "int64"; break;
      default: throw Napi::TypeError::New(env, "input '" + in.name + "': data must be a Float32Array, Float64Array, Int32Array or BigInt64Array");
    }
    // (the view's own data pointer, offset included: ta.ArrayBuffer() fails on a SharedArrayBuffer's view)
    void* view_data = nullptr;
    if (napi_get_typedarray_info(env, ta, nullptr, nullptr, &view_data, nullptr, nullptr) != napi_ok)
      throw Napi::TypeError::New(env, "input '" + in.name + "': its data could not be read");
    in.data = static_cast<const unsigned char*>(view_data);
    Napi::Array shape = o.Get("shape").As<Napi::Array>();
    std::int64_t n = 1;
    for (uint32_t k = 0; k < shape.Length(); ++k) {
      const double v = shape.Get(k).As<Napi::Number>().DoubleValue();
      in.shape.push_back(static_cast<std::int64_t>(v));
      n *= static_cast<std::int64_t>(v);
    }
    if (n != static_cast<std::int64_t>(ta.ElementLength()))
      throw Napi::RangeError::New(env, "input '" + in.name + "' has " + std::to_string(ta.ElementLength()) +
                                           " elements but its shape needs " + std::to_string(n));
    inputs->push_back(std::move(in));
    keep.push_back(d);
  }
  auto names = std::make_shared<std::vector<std::string>>();
  for (uint32_t i = 0; i < outs.Length(); ++i) names->push_back(outs.Get(i).As<Napi::String>().Utf8Value());
  auto token = guarded(env, "onnxRun", [] { return std::make_shared<OnnxRunToken>(); });
  const CancelTokenPtr cancel = Args(info, "onnxRun").cancel_token(3);
  auto result = std::make_shared<std::vector<OnnxOutput>>();
  return run_job(
      env, "brainlatent.onnxRun",
      [model, inputs, names, token, result](JobContext& ctx) {
        // (the job's own cancellation — the caller's token, its environment's end at worker.terminate(), the process's
        // exit — interrupts the run in flight: linked to the caller's token only, an exit waited for the whole run)
        ctx.on_cancel([token] { token->cancel(); });
        *result = model->run(*inputs, *names, token.get());
      },
      [result](Napi::Env e) -> Napi::Value {
        Napi::Array a = Napi::Array::New(e, result->size());
        for (std::size_t i = 0; i < result->size(); ++i) {
          OnnxOutput& out = (*result)[i];
          auto* owner = new std::shared_ptr<void>(out.owner);
          Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(e, out.data, out.count * sizeof(float),
                                                         [](Napi::Env, void*, std::shared_ptr<void>* h) { delete h; }, owner);
          Napi::Object o = Napi::Object::New(e);
          o.Set("name", out.name);
          o.Set("data", Napi::Float32Array::New(e, out.count, buf, 0));
          Napi::Array shape = Napi::Array::New(e, out.shape.size());
          for (std::size_t d = 0; d < out.shape.size(); ++d)
            shape.Set(static_cast<uint32_t>(d), Napi::Number::New(e, static_cast<double>(out.shape[d])));
          o.Set("shape", shape);
          a.Set(static_cast<uint32_t>(i), o);
        }
        result->clear();
        return a;
      },
      {Napi::Function(), cancel, std::move(keep)});
}

}  // namespace

void init_onnx_model(Napi::Env env, Napi::Object exports) {
  exports.Set("onnxLoad", Napi::Function::New(env, OnnxLoad, "onnxLoad"));
  exports.Set("onnxDispose", Napi::Function::New(env, OnnxDispose, "onnxDispose"));
  exports.Set("onnxRun", Napi::Function::New(env, OnnxRun, "onnxRun"));
}

}  // namespace brainlatent::addon
