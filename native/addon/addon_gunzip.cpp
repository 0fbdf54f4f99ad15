// Streaming gunzip on ISA-L (core: gzip_file_inflater.h) for the readers' .nii.gz streams (ts/io/gunzip.ts).
//   gunzipInfo() -> {available, library, version, reason}
//   createGunzipFileReader(fd, end, readBytes) -> reader (an External): the file behind `fd` (the caller's, open
//     until the reader's last step has settled) from its start to `end` bytes (or its end), read `readBytes` at a time
//   gunzipFileStep(reader, output: Uint8Array) -> Promise<{produced, ended}>: fills the output's start; a failure
//     rejects with an Error whose code is zlib's: Z_DATA_ERROR (corrupt data, a bad header, a CRC or length mismatch)
//     or Z_BUF_ERROR (the file ends inside a member), with `coarse` true where the message names one of ISA-L's
//     three coarse kinds of corrupt deflate data; or, where a read failed, with Node's fields of an fs error
//     (`errno` negative, as Node's are; `syscall` 'read'). Either kind has `produced`: the bytes this step wrote
//     before it failed.
// The engine reads the file itself (pread on the step's thread): JavaScript hands over only output buffers.
// A step is short I/O-sized work (a read and at most the output's size, 4 MiB from the readers), so it runs on
// libuv's pool like node:zlib's own, not in the engine's job queue (run_job), where it would wait behind fits.
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "addon_modules.h"
#include "brainlatent/gzip_file_inflater.h"
#include "kit.h"

namespace brainlatent::addon {
namespace {

struct ReaderHandle {
  ReaderHandle(int fd, std::uint64_t end, std::size_t read_bytes) : reader(fd, end, read_bytes) {}
  gzip::FileInflater reader;
  bool busy = false;  // a step is in flight (one at a time: each continues the stream where the last ended)
};
using HandlePtr = std::shared_ptr<ReaderHandle>;

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

Napi::Value CreateGunzipFileReader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "createGunzipFileReader");
  const std::int64_t fd = args.count(0, "fd"), read_bytes = args.count(2, "readBytes");
  // (`end` may be past 2^53: Infinity, or any number of bytes, reads to the file's end)
  const double end = args.number(1, "end");
  if (fd > std::numeric_limits<int>::max()) throw Napi::RangeError::New(env, "createGunzipFileReader: fd is not a file descriptor");
  if (!(end >= 0) || (std::isfinite(end) && end != std::floor(end)))
    throw Napi::RangeError::New(env, "createGunzipFileReader: end must be a whole number of bytes >= 0, or Infinity");
  if (read_bytes < 1 || read_bytes > (std::int64_t{1} << 30))
    throw Napi::RangeError::New(env, "createGunzipFileReader: readBytes must be in 1..2^30");
  const std::uint64_t end_bytes = !std::isfinite(end) || end >= 1.8e19 ? std::numeric_limits<std::uint64_t>::max() : static_cast<std::uint64_t>(end);
  auto handle = guarded(env, "createGunzipFileReader",
                        [&] { return std::make_shared<ReaderHandle>(static_cast<int>(fd), end_bytes, static_cast<std::size_t>(read_bytes)); });
  return Napi::External<HandlePtr>::New(env, new HandlePtr(std::move(handle)), [](Napi::Env, HandlePtr* h) { delete h; });
}

class StepWorker : public Napi::AsyncWorker {
 public:
  StepWorker(Napi::Env env, HandlePtr handle, Napi::Uint8Array output)
      : Napi::AsyncWorker(env, "brainlatent:gunzip"),
        deferred_(Napi::Promise::Deferred::New(env)),
        handle_(std::move(handle)),
        out_(output.Data()),
        out_len_(output.ByteLength()) {
    output_ref_ = Napi::Persistent(output.As<Napi::Object>());
    handle_->busy = true;
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      result_ = handle_->reader.step(out_, out_len_);
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
    if (result_.failure == "read") {
      // (as Node's fs errors: the code and message the JS side completes from errno, util.getSystemErrorName)
      Napi::Error e = Napi::Error::New(env, result_.message);
      e.Set("errno", Napi::Number::New(env, -handle_->reader.read_errno()));
      e.Set("syscall", "read");
      e.Set("produced", Napi::Number::New(env, static_cast<double>(result_.produced)));
      deferred_.Reject(e.Value());
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
  Napi::ObjectReference output_ref_;  // (the array stays alive while the pool thread writes it)
  std::uint8_t* out_;
  std::size_t out_len_;
  gzip::StepResult result_;
  Failure failure_;
  bool threw_ = false;
};

Napi::Value GunzipFileStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args args(info, "gunzipFileStep");
  if (!info[0].IsExternal()) throw Napi::TypeError::New(env, "gunzipFileStep: reader must come from createGunzipFileReader()");
  HandlePtr handle = *info[0].As<Napi::External<HandlePtr>>().Data();
  if (handle->busy) throw Napi::Error::New(env, "gunzipFileStep: the reader's previous step has not finished");
  Napi::Uint8Array output = args.array<Napi::Uint8Array>(1, "output");
  if (output.ByteLength() == 0) throw Napi::RangeError::New(env, "gunzipFileStep: output must hold at least one byte");
  auto* worker = new StepWorker(env, std::move(handle), output);
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace

void init_gunzip(Napi::Env env, Napi::Object exports) {
  exports.Set("gunzipInfo", Napi::Function::New(env, GunzipInfo, "gunzipInfo"));
  exports.Set("createGunzipFileReader", Napi::Function::New(env, CreateGunzipFileReader, "createGunzipFileReader"));
  exports.Set("gunzipFileStep", Napi::Function::New(env, GunzipFileStep, "gunzipFileStep"));
}

}  // namespace brainlatent::addon
