// Streaming gunzip on ISA-L (core: gzip_inflate.h) for the readers' .nii.gz streams (ts/io/gunzip.ts).
//   gunzipInfo() -> {available, library, version, reason}
//   createGunzipInflater() -> inflater (an External)
//   gunzipStep(inflater, input: Uint8Array, inputEnds: boolean, output: Uint8Array)
//     -> Promise<{consumed, produced, ended}>; a failure rejects with an Error whose code is zlib's:
//        Z_DATA_ERROR (corrupt data, a bad header, a CRC or length mismatch) or Z_BUF_ERROR (the file ends inside a
//        member); `coarse` is true where the message names one of ISA-L's three coarse kinds of corrupt deflate data.
// A step is short I/O-sized work (at most the output's size, a MiB from the readers), so it runs on libuv's pool
// like node:zlib's own, not in the engine's job queue (run_job), where it would wait behind fits.
#include <memory>
#include <string>

#include "addon_modules.h"
#include "brainlatent/gzip_inflate.h"
#include "kit.h"

namespace brainlatent::addon {
namespace {

struct InflaterHandle {
  gzip::Inflater inflater;
  bool busy = false;  // a step is in flight (one at a time: each continues the stream where the last ended)
};
using HandlePtr = std::shared_ptr<InflaterHandle>;

Napi::Value GunzipInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const gzip::InflaterInfo& i = gzip::inflater_info();
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", i.available);
  o.Set("library", i.library);
  o.Set("version", i.version);
  o.Set("reason", i.reason);
  return o;
}

Napi::Value CreateGunzipInflater(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto handle = guarded(env, "createGunzipInflater", [] { return std::make_shared<InflaterHandle>(); });
  return Napi::External<HandlePtr>::New(env, new HandlePtr(std::move(handle)), [](Napi::Env, HandlePtr* h) { delete h; });
}

class StepWorker : public Napi::AsyncWorker {
 public:
  StepWorker(Napi::Env env, HandlePtr handle, Napi::Uint8Array input, bool input_ends, Napi::Uint8Array output)
      : Napi::AsyncWorker(env, "brainlatent:gunzip"),
        deferred_(Napi::Promise::Deferred::New(env)),
        handle_(std::move(handle)),
        in_(input.Data()),
        in_len_(input.ByteLength()),
        out_(output.Data()),
        out_len_(output.ByteLength()),
        input_ends_(input_ends) {
    input_ref_ = Napi::Persistent(input.As<Napi::Object>());
    output_ref_ = Napi::Persistent(output.As<Napi::Object>());
    handle_->busy = true;
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      result_ = handle_->inflater.step(in_, in_len_, out_, out_len_, input_ends_);
    } catch (...) {
      failure_ = current_failure("gunzip");
      threw_ = true;
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    handle_->busy = false;
    if (threw_) {
      deferred_.Reject(to_js_error(env, failure_.code, failure_.message, failure_.reason).Value());
      return;
    }
    if (!result_.failure.empty()) {
      Napi::Error e = Napi::Error::New(env, result_.message);
      e.Set("code", result_.failure == "truncated" ? "Z_BUF_ERROR" : "Z_DATA_ERROR");
      e.Set("consumed", Napi::Number::New(env, static_cast<double>(result_.consumed)));
      e.Set("produced", Napi::Number::New(env, static_cast<double>(result_.produced)));
      e.Set("coarse", Napi::Boolean::New(env, result_.coarse));
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("consumed", Napi::Number::New(env, static_cast<double>(result_.consumed)));
    o.Set("produced", Napi::Number::New(env, static_cast<double>(result_.produced)));
    o.Set("ended", Napi::Boolean::New(env, result_.ended));
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override {
    handle_->busy = false;
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  HandlePtr handle_;
  Napi::ObjectReference input_ref_, output_ref_;  // (the arrays stay alive while the pool thread uses them)
  const std::uint8_t* in_;
  std::size_t in_len_;
  std::uint8_t* out_;
  std::size_t out_len_;
  bool input_ends_;
  gzip::StepResult result_;
  Failure failure_;
  bool threw_ = false;
};

Napi::Value GunzipStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "gunzipStep");
  if (!info[0].IsExternal()) throw Napi::TypeError::New(env, "gunzipStep: inflater must come from createGunzipInflater()");
  HandlePtr handle = *info[0].As<Napi::External<HandlePtr>>().Data();
  if (handle->busy) throw Napi::Error::New(env, "gunzipStep: the inflater's previous step has not finished");
  Napi::Uint8Array input = args.array<Napi::Uint8Array>(1, "input");
  if (!info[2].IsBoolean()) throw Napi::TypeError::New(env, "gunzipStep: inputEnds must be a boolean");
  Napi::Uint8Array output = args.array<Napi::Uint8Array>(3, "output");
  if (output.ByteLength() == 0) throw Napi::RangeError::New(env, "gunzipStep: output must hold at least one byte");
  auto* worker = new StepWorker(env, std::move(handle), input, info[2].As<Napi::Boolean>().Value(), output);
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace

void init_gunzip(Napi::Env env, Napi::Object exports) {
  exports.Set("gunzipInfo", Napi::Function::New(env, GunzipInfo, "gunzipInfo"));
  exports.Set("createGunzipInflater", Napi::Function::New(env, CreateGunzipInflater, "createGunzipInflater"));
  exports.Set("gunzipStep", Napi::Function::New(env, GunzipStep, "gunzipStep"));
}

}  // namespace brainlatent::addon
