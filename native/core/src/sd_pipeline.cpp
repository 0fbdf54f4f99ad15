#include "brainlatent/sd_pipeline.h"

#include "brainlatent/backend.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <map>

#include "brainlatent/error.h"
#include "half.h"
#include "ort_api.h"

namespace brainlatent {
namespace {

const char* const kComponents[] = {"text_encoder", "unet", "vae_encoder", "vae_decoder"};

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool dir_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string list_found(const std::string& dir) {
  std::string found;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string entry = name;
      if (dir_exists(dir + "/" + name)) {
        entry += "/";
        if (file_exists(dir + "/" + name + "/model.onnx")) entry += "model.onnx";
      }
      found += (found.empty() ? "" : ", ") + entry;
    }
    ::closedir(d);
  }
  return found.empty() ? "nothing" : found;
}

// One run (a VAE chunk, the text encoder's batch) that the job's cancellation interrupts: `relay` sets the run's
// terminate flag, and a run that fails once *cancel is set is Cancelled with `cancelled` as its message (not ONNX
// Runtime's failure). Without a relay, a plain run.
std::vector<ort::Value> run_interruptible(const ort::Session& s, const std::vector<const char*>& input_names,
                                          const std::vector<const OrtValue*>& inputs, const std::vector<const char*>& output_names,
                                          const std::atomic<bool>* cancel, CancelRelay* relay, const std::string& cancelled) {
  if (!relay) return ort::run(s, input_names, inputs, output_names);
  OrtRunOptions* options = nullptr;
  ort::check(ort::api().CreateRunOptions(&options), "CreateRunOptions");
  const std::unique_ptr<OrtRunOptions, void (*)(OrtRunOptions*)> own(options, [](OrtRunOptions* o) { ort::api().ReleaseRunOptions(o); });
  const CancelRelay::Attached interrupts = relay->attach([options] {
    if (OrtStatus* st = ort::api().RunOptionsSetTerminate(options)) ort::api().ReleaseStatus(st);
  });
  try {
    return ort::run(s, input_names, inputs, output_names, options);
  } catch (...) {
    if (cancel && cancel->load()) throw Error(ErrorCode::Cancelled, cancelled);
    throw;
  }
}

// A VAE chunk's message when its run was interrupted: how far the job got.
std::string interrupted_after(const char* what, std::int64_t first, std::int64_t batch) {
  return std::string(what) + " cancelled after " + std::to_string(first) + " of " + std::to_string(batch) +
         " images (its run was interrupted)";
}

// Between chunks of a VAE job: Cancelled, saying how far it got.

void stop_if_cancelled(const std::atomic<bool>* cancel, const char* what, std::int64_t done, std::int64_t batch) {
  if (cancel && cancel->load(std::memory_order_relaxed))
    throw Error(ErrorCode::Cancelled, std::string(what) + " cancelled after " + std::to_string(done) + " of " +
                                          std::to_string(batch) + " images");
}

SdTensorInfo to_info(const ort::TensorSig& s) {
  return {s.name, ort::element_type_name(s.type), s.shape, s.dim_names};
}

[[noreturn]] void mismatch(const std::string& dir, const ort::Session& s, const std::string& component,
                           const std::string& expected, const std::string& problem) {
  throw Error(ErrorCode::ShapeMismatch, "model folder " + dir + " does not match the SD 1.x ONNX layout: " + component +
                                            "/model.onnx " + problem + ". Found " + s.describe() + ". Expected " +
                                            expected + ".");
}

bool is_float(const ort::TensorSig& s) { return s.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
// float32 or float16 (an fp16 export: converted at the boundary, the engine computes in float32)
bool is_real(const ort::TensorSig& s) { return is_float(s) || s.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16; }
bool is_half(const ort::TensorSig& s) { return s.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16; }
bool is_int(const ort::TensorSig& s) {
  return s.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 || s.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
}

std::string shape_str(const std::vector<std::int64_t>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// The U-Net bound once per batch through IoBinding over buffers owned here. With max_rows > 0 the
// batch runs as consecutive row slices of those buffers (one binding each, no copy): the peak of the
// activations follows the slice, not the batch.
class OrtUNetRunner : public UNetRunner {
 public:
  // device: the job's CUDA backend when the loop stays on the GPU — the sample, the noise
  // prediction and the conditioning then live in its device buffers, bound once as CUDA memory
  // (only the host timestep is re-bound per step); null: host buffers.
  OrtUNetRunner(const ort::Session& s, const ort::TensorSig& sample, const ort::TensorSig& timestep,
                const ort::TensorSig& cond, const ort::TensorSig& out, int max_rows, Backend* device = nullptr)
      : s_(s), sample_(sample), timestep_(timestep), cond_(cond), out_(out), max_rows_(max_rows), dev_(device) {
    ort::check(ort::api().CreateRunOptions(&run_options_), "CreateRunOptions");
    half_in_ = sample_.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    half_out_ = out_.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    half_cond_ = cond_.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    if (dev_ && (half_in_ || half_out_ || half_cond_ || timestep_.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16))
      throw Error(ErrorCode::InvalidArgument, "the device-resident loop takes float32 U-Nets; " + s.path() + " is float16");
  }
  ~OrtUNetRunner() override {
    release_bindings();
    if (run_options_) ort::api().ReleaseRunOptions(run_options_);
  }

  void prepare(std::int64_t rows, std::int64_t c, std::int64_t h, std::int64_t w, const float* cond, std::int64_t seq,
               std::int64_t dim) override {
    const bool same = rows == rows_ && c == c_ && h == h_ && w == w_;
    if (!same) {
      rows_ = rows; c_ = c; h_ = h; w_ = w;
      const std::size_t n = static_cast<std::size_t>(rows * c * h * w);
      if (dev_) {
        release_bindings();
        in_dev_ = dev_->alloc(DType::F32, n);
        out_dev_ = dev_->alloc(DType::F32, n);
        dev_->fill(view<float>(*in_dev_, 1, static_cast<std::int64_t>(n)), 0.0f);
      } else {
        in_.assign(n, 0.f);
        out_buf_.assign(n, 0.f);
        // an fp16 export: the loop's float32 buffers, converted into and out of these at each call
        in_h_.assign(half_in_ ? n : 0, 0);
        out_h_.assign(half_out_ ? n : 0, 0);
      }
      const std::size_t nt = timestep_.shape.empty() ? 1 : static_cast<std::size_t>(rows);
      ts_f_.assign(nt, 0.f);
      ts_i64_.assign(nt, 0);
      ts_i32_.assign(nt, 0);
      ts_h_.assign(nt, 0);
    }
    if (dev_) {  // the conditioning of this batch, on the device (its host rows change per batch)
      const std::int64_t cn = rows * seq * dim;
      if (!cond_dev_ || cond_dev_->count() != static_cast<std::size_t>(cn)) {
        release_bindings();
        cond_dev_ = dev_->alloc(DType::F32, static_cast<std::size_t>(cn));
        cond_ptr_ = nullptr;
      }
      BufferPtr h = dev_->wrap_host(const_cast<float*>(cond), DType::F32, static_cast<std::size_t>(cn));
      dev_->copy(view<float>(*h, 1, cn), view<float>(*cond_dev_, 1, cn));
      dev_->synchronize();
    }
    if (!dev_ && half_cond_) {  // the batch's conditioning as float16 (its host rows change per batch)
      const std::size_t cn = static_cast<std::size_t>(rows * seq * dim);
      if (cond_h_.size() != cn) {
        cond_h_.assign(cn, 0);
        cond_ptr_ = nullptr;  // new storage: bind again
      }
      floats_to_half(cond, cond_h_.data(), cn);
    }
    if (!same || cond != cond_ptr_ || seq != seq_ || dim != dim_ || slices_.empty()) {
      cond_ptr_ = cond; seq_ = seq; dim_ = dim;
      make_slices();
    }
  }
  float* input() override { return dev_ ? static_cast<float*>(in_dev_->data()) : in_.data(); }
  const float* output() override { return dev_ ? static_cast<const float*>(out_dev_->data()) : out_buf_.data(); }
  Buffer* input_buffer() override { return dev_ ? in_dev_.get() : nullptr; }
  Buffer* output_buffer() override { return dev_ ? out_dev_.get() : nullptr; }
  void run(double t) override {
    for (auto& v : ts_f_) v = static_cast<float>(t);
    // diffusers' ONNX pipelines pass np.array([t], dtype=int64): fractional timesteps truncate
    for (auto& v : ts_i64_) v = static_cast<std::int64_t>(std::trunc(t));
    for (auto& v : ts_i32_) v = static_cast<std::int32_t>(std::trunc(t));
    for (auto& v : ts_h_) v = half_from_float(static_cast<float>(t));
    if (half_in_) floats_to_half(in_.data(), in_h_.data(), in_.size());
    for (auto& sl : slices_) {
      // A non-CPU provider copies host inputs to the device when they are bound, so they are
      // re-bound every step there (with device-resident tensors, only the host timestep); on the
      // CPU the bound tensors are read in place.
      if (dev_)
        ort::check(ort::api().BindInput(sl.binding, timestep_.name.c_str(), sl.ts.get()), "BindInput timestep");
      else if (!s_.on_cpu())
        bind(sl);
      ort::check(ort::api().RunWithBinding(s_.get(), run_options_, sl.binding), "running " + s_.path());
    }
    if (half_out_) half_to_floats(out_h_.data(), out_buf_.data(), out_buf_.size());
  }
  void request_cancel() override {
    if (OrtStatus* st = ort::api().RunOptionsSetTerminate(run_options_)) ort::api().ReleaseStatus(st);
  }

 private:
  struct Slice {
    OrtIoBinding* binding = nullptr;
    ort::Value in, out, ts, cond;
  };

  void make_slices() {
    release_bindings();
    const std::int64_t per = max_rows_ > 0 ? std::min<std::int64_t>(max_rows_, rows_) : rows_;
    const std::int64_t img = c_ * h_ * w_;
    for (std::int64_t r0 = 0; r0 < rows_; r0 += per) {
      const std::int64_t r = std::min(per, rows_ - r0);
      Slice sl;
      const std::vector<std::int64_t> shape{r, c_, h_, w_};
      const std::size_t bytes = static_cast<std::size_t>(r * img) * sizeof(float);
      if (dev_) {
        const int d = s_.device_id();
        sl.in = ort::tensor_over_cuda(static_cast<float*>(in_dev_->data()) + r0 * img, bytes, shape, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, d);
        sl.out = ort::tensor_over_cuda(static_cast<float*>(out_dev_->data()) + r0 * img, bytes, shape, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, d);
      } else {
        const std::size_t hbytes = static_cast<std::size_t>(r * img) * sizeof(std::uint16_t);
        sl.in = half_in_ ? ort::tensor_over(in_h_.data() + r0 * img, hbytes, shape, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16)
                         : ort::tensor_over(in_.data() + r0 * img, bytes, shape, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
        sl.out = half_out_ ? ort::tensor_over(out_h_.data() + r0 * img, hbytes, shape, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16)
                           : ort::tensor_over(out_buf_.data() + r0 * img, bytes, shape, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
      }
      // a scalar timestep is shared by every row; a [rows] one is sliced with them
      const bool scalar = timestep_.shape.empty();
      const std::size_t nt = scalar ? 1 : static_cast<std::size_t>(r);
      const std::int64_t t0 = scalar ? 0 : r0;
      const std::vector<std::int64_t> tshape = scalar ? std::vector<std::int64_t>{} : std::vector<std::int64_t>{r};
      if (timestep_.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
        sl.ts = ort::tensor_over(ts_f_.data() + t0, nt * sizeof(float), tshape, timestep_.type);
      else if (timestep_.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16)
        sl.ts = ort::tensor_over(ts_h_.data() + t0, nt * sizeof(std::uint16_t), tshape, timestep_.type);
      else if (timestep_.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64)
        sl.ts = ort::tensor_over(ts_i64_.data() + t0, nt * sizeof(std::int64_t), tshape, timestep_.type);
      else
        sl.ts = ort::tensor_over(ts_i32_.data() + t0, nt * sizeof(std::int32_t), tshape, timestep_.type);
      if (dev_)
        sl.cond = ort::tensor_over_cuda(static_cast<float*>(cond_dev_->data()) + r0 * seq_ * dim_,
                                        static_cast<std::size_t>(r * seq_ * dim_) * sizeof(float), {r, seq_, dim_},
                                        ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, s_.device_id());
      else if (half_cond_)
        sl.cond = ort::tensor_over(cond_h_.data() + r0 * seq_ * dim_, static_cast<std::size_t>(r * seq_ * dim_) * sizeof(std::uint16_t),
                                   {r, seq_, dim_}, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16);
      else
        sl.cond = ort::tensor_over(const_cast<float*>(cond_ptr_) + r0 * seq_ * dim_,
                                   static_cast<std::size_t>(r * seq_ * dim_) * sizeof(float), {r, seq_, dim_},
                                   ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
      ort::check(ort::api().CreateIoBinding(s_.get(), &sl.binding), "CreateIoBinding");
      slices_.push_back(std::move(sl));
      bind(slices_.back());
    }
  }

  void bind(Slice& sl) {
    const OrtApi& a = ort::api();
    a.ClearBoundInputs(sl.binding);
    a.ClearBoundOutputs(sl.binding);
    ort::check(a.BindInput(sl.binding, sample_.name.c_str(), sl.in.get()), "BindInput sample");
    ort::check(a.BindInput(sl.binding, timestep_.name.c_str(), sl.ts.get()), "BindInput timestep");
    ort::check(a.BindInput(sl.binding, cond_.name.c_str(), sl.cond.get()), "BindInput encoder_hidden_states");
    ort::check(a.BindOutput(sl.binding, out_.name.c_str(), sl.out.get()), "BindOutput");
  }

  void release_bindings() {
    for (auto& sl : slices_)
      if (sl.binding) ort::api().ReleaseIoBinding(sl.binding);
    slices_.clear();
  }

  const ort::Session& s_;
  ort::TensorSig sample_, timestep_, cond_, out_;
  int max_rows_ = 0;
  OrtRunOptions* run_options_ = nullptr;
  std::int64_t rows_ = -1, c_ = 0, h_ = 0, w_ = 0, seq_ = 0, dim_ = 0;
  const float* cond_ptr_ = nullptr;
  Backend* dev_ = nullptr;
  BufferPtr in_dev_, out_dev_, cond_dev_;
  bool half_in_ = false, half_out_ = false, half_cond_ = false;
  std::vector<std::uint16_t> in_h_, out_h_, cond_h_, ts_h_;
  std::vector<float> in_, out_buf_, ts_f_;
  std::vector<std::int64_t> ts_i64_;
  std::vector<std::int32_t> ts_i32_;
  std::vector<Slice> slices_;
};

class OrtSdPipeline : public SdPipeline {
 public:
  explicit OrtSdPipeline(const SdLoadOptions& o) : dir_(o.dir), max_rows_per_run_(o.session.max_rows_per_run) {
    ort_load(o.ort_library);
    if (!dir_exists(o.dir)) throw Error(ErrorCode::InvalidArgument, "model folder " + o.dir + " does not exist");
    std::vector<std::string> wanted = o.components;
    if (wanted.empty()) wanted.assign(std::begin(kComponents), std::end(kComponents));
    for (const auto& c : wanted) {
      if (std::find(std::begin(kComponents), std::end(kComponents), c) == std::end(kComponents))
        throw Error(ErrorCode::InvalidArgument, "unknown component '" + c +
                                                    "': expected text_encoder, unet, vae_encoder or vae_decoder");
      const std::string path = o.dir + "/" + c + "/model.onnx";
      if (!file_exists(path))
        throw Error(ErrorCode::InvalidArgument, "model folder " + o.dir + " has no " + c +
                                                    "/model.onnx (an SD 1.x ONNX export has text_encoder, unet, "
                                                    "vae_encoder and vae_decoder); found: " + list_found(o.dir));
    }
    for (const auto& c : wanted) {
      const std::string path = o.dir + "/" + c + "/model.onnx";
      const auto mem = o.from_memory.find(c);
      sessions_[c] = mem == o.from_memory.end()
                         ? std::make_unique<ort::Session>(path, o.session)
                     : mem->second.checked ? std::make_unique<ort::Session>(mem->second.data, mem->second.size, path,
                                                                             mem->second.files, o.session)
                         : std::make_unique<ort::Session>(mem->second.data, mem->second.size, path,
                                                          mem->second.external_data_folder, o.session);
      summary_.provider = sessions_[c]->route();  // one config, so one route for every model
      summary_.models.push_back({c, path, {}, {}});
      for (const auto& s : sessions_[c]->inputs()) summary_.models.back().inputs.push_back(to_info(s));
      for (const auto& s : sessions_[c]->outputs()) summary_.models.back().outputs.push_back(to_info(s));
    }
    adapt();
  }

  const SdSummary& summary() const override { return summary_; }
  bool has(const std::string& c) const override { return sessions_.count(c) > 0; }

  std::vector<float> encode_text(const std::int64_t* ids, std::int64_t batch, std::int64_t seq, std::int64_t& dim,
                                 const std::atomic<bool>* cancel, CancelRelay* relay) override {
    const ort::Session& s = need("text_encoder");
    if (batch < 1) throw Error(ErrorCode::InvalidArgument, "encode_text: no token rows");
    const std::string rows = std::to_string(batch) + (batch == 1 ? " caption" : " captions");
    if (cancel && cancel->load(std::memory_order_relaxed))
      throw Error(ErrorCode::Cancelled, "encode_text of " + rows + " cancelled before its run");
    if (te_ids_.shape.size() == 2 && te_ids_.shape[1] > 0 && te_ids_.shape[1] != seq)
      throw Error(ErrorCode::ShapeMismatch, "encode_text: token rows have length " + std::to_string(seq) + " but " +
                                                s.path() + " expects " + te_ids_.describe());
    const std::size_t n = static_cast<std::size_t>(batch * seq);
    std::vector<std::int32_t> i32(n);
    std::vector<std::int64_t> i64(ids, ids + n);
    for (std::size_t i = 0; i < n; ++i) i32[i] = static_cast<std::int32_t>(ids[i]);
    std::vector<ort::Value> keep;
    std::vector<const char*> names;
    std::vector<const OrtValue*> values;
    for (const auto& in : s.inputs()) {
      // input_ids, plus an attention_mask of ones where an export has one (CLIP masks causally)
      const bool i64t = in.type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
      void* data = nullptr;
      if (in.name == te_ids_.name) {
        data = i64t ? static_cast<void*>(i64.data()) : static_cast<void*>(i32.data());
      } else {
        mask64_.assign(n, 1);
        mask32_.assign(n, 1);
        data = i64t ? static_cast<void*>(mask64_.data()) : static_cast<void*>(mask32_.data());
      }
      keep.push_back(ort::tensor_over(data, n * (i64t ? 8 : 4), {batch, seq}, in.type));
      names.push_back(in.name.c_str());
      values.push_back(keep.back().get());
    }
    const char* out_name = te_out_.c_str();
    auto outs = run_interruptible(s, names, values, {out_name}, cancel, relay,
                                  "encode_text of " + rows + " cancelled (its run was interrupted)");
    const auto shape = ort::shape_of(outs[0].get());
    if (shape.size() != 3 || shape[0] != batch || shape[1] != seq)
      throw Error(ErrorCode::ShapeMismatch, s.path() + " returned " + te_out_ + " of shape " + shape_str(shape) +
                                                ", expected [" + std::to_string(batch) + "," + std::to_string(seq) + ",D]");
    dim = shape[2];
    std::vector<float> scratch;
    const float* p = ort::float_output(outs[0].get(), scratch);
    return std::vector<float>(p, p + batch * seq * dim);
  }

  std::vector<float> encode_images(SdImages images, std::int64_t batch, std::int64_t height, std::int64_t width,
                                   LatentMode mode, const NoiseKey* keys, float scaling, std::int64_t chunk,
                                   std::int64_t& channels, std::int64_t& h, std::int64_t& w,
                                   const std::atomic<bool>* cancel, CancelRelay* relay) override {
    const ort::Session& s = need("vae_encoder");
    if (batch < 1) throw Error(ErrorCode::InvalidArgument, "encode_images: no images");
    const bool params = summary_.vae_encoder_output == "latent_parameters";
    if (mode == LatentMode::Mean && !params)
      throw Error(ErrorCode::InvalidArgument, s.path() + " outputs latent_sample (already sampled inside the model); "
                                                         "the posterior mean is not available from this export");
    if (mode == LatentMode::Sample && params && !keys)
      throw Error(ErrorCode::InvalidArgument, "encode_images: sampling needs noise keys");
    check_spatial(s, vae_in_, 3, height, width, "images");
    chunk = chunk < 1 ? batch : chunk;
    const std::size_t per = static_cast<std::size_t>(3 * height * width);
    // uint8 images become model input one chunk at a time: one chunk's floats at most
    std::vector<float> converted(images.model ? 0 : per * static_cast<std::size_t>(std::min(chunk, batch)));
    std::vector<float> result;
    for (std::int64_t first = 0; first < batch; first += chunk) {
      stop_if_cancelled(cancel, "encode_images", first, batch);
      const std::int64_t nb = std::min(chunk, batch - first);
      const float* x = images.model ? images.model + first * static_cast<std::int64_t>(per) : converted.data();
      if (!images.model) rgb8_to_model_input(images.rgb + first * static_cast<std::int64_t>(per), nb, height, width, converted.data());
      std::vector<std::uint16_t> in_half;
      auto v = ort::float_input(x, per * static_cast<std::size_t>(nb), {nb, 3, height, width}, vae_in_.type, in_half);
      const char* in_name = vae_in_.name.c_str();
      const char* out_name = summary_.vae_encoder_output.c_str();
      auto outs = run_interruptible(s, {in_name}, {v.get()}, {out_name}, cancel, relay,
                                    interrupted_after("encode_images", first, batch));
      const auto shape = ort::shape_of(outs[0].get());
      if (shape.size() != 4 || shape[0] != nb)
        throw Error(ErrorCode::ShapeMismatch, s.path() + " returned " + shape_str(shape));
      std::vector<float> out_scratch;
      const float* p = ort::float_output(outs[0].get(), out_scratch);
      channels = params ? shape[1] / 2 : shape[1];
      h = shape[2];
      w = shape[3];
      const std::int64_t n = channels * h * w;
      const std::size_t base = result.size();
      result.resize(base + static_cast<std::size_t>(nb * n));
      float* out = result.data() + base;
      std::vector<float> noise(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < nb; ++i) {
        const float* img = p + i * (params ? 2 * n : n);
        if (!params) {
          for (std::int64_t j = 0; j < n; ++j) out[i * n + j] = scaling * img[j];
          continue;
        }
        const bool sample = mode == LatentMode::Sample;
        if (sample) philox_normal_fill(keys[first + i], kEncodeStream, 0, noise.data(), noise.size());
        for (std::int64_t j = 0; j < n; ++j) {
          float z = img[j];
          if (sample) {
            const float logvar = std::min(20.0f, std::max(-30.0f, img[n + j]));
            z += std::exp(0.5f * logvar) * noise[static_cast<std::size_t>(j)];
          }
          out[i * n + j] = scaling * z;
        }
      }
    }
    return result;
  }

  std::vector<float> decode(const float* latents, std::int64_t batch, std::int64_t channels, std::int64_t h,
                            std::int64_t w, float scaling, std::int64_t chunk, std::int64_t& height,
                            std::int64_t& width, const std::atomic<bool>* cancel, CancelRelay* relay) override {
    const ort::Session& s = need("vae_decoder");
    if (batch < 1) throw Error(ErrorCode::InvalidArgument, "decode: no latents");
    check_spatial(s, dec_in_, channels, h, w, "latents");
    chunk = chunk < 1 ? batch : chunk;
    const std::int64_t n = channels * h * w;
    std::vector<float> scaled(static_cast<std::size_t>(std::min(chunk, batch) * n));
    std::vector<float> result;
    for (std::int64_t first = 0; first < batch; first += chunk) {
      stop_if_cancelled(cancel, "decode", first, batch);
      const std::int64_t nb = std::min(chunk, batch - first);
      for (std::int64_t j = 0; j < nb * n; ++j) scaled[static_cast<std::size_t>(j)] = latents[first * n + j] / scaling;
      std::vector<std::uint16_t> in_half;
      auto v = ort::float_input(scaled.data(), static_cast<std::size_t>(nb * n), {nb, channels, h, w}, dec_in_.type, in_half);
      const char* in_name = dec_in_.name.c_str();
      const char* out_name = dec_out_.c_str();
      auto outs = run_interruptible(s, {in_name}, {v.get()}, {out_name}, cancel, relay, interrupted_after("decode", first, batch));
      const auto shape = ort::shape_of(outs[0].get());
      if (shape.size() != 4 || shape[0] != nb || shape[1] != 3)
        throw Error(ErrorCode::ShapeMismatch, s.path() + " returned " + shape_str(shape) + ", expected [B,3,H,W]");
      height = shape[2];
      width = shape[3];
      std::vector<float> out_scratch;
      const float* p = ort::float_output(outs[0].get(), out_scratch);
      const std::size_t m = static_cast<std::size_t>(nb * 3 * height * width);
      const std::size_t base = result.size();
      result.resize(base + m);
      for (std::size_t j = 0; j < m; ++j) {
        if (!std::isfinite(p[j]))
          throw Error(ErrorCode::NonFinite, s.path() + " returned a non-finite pixel (image " +
                                                std::to_string(first + static_cast<std::int64_t>(j / (3 * height * width))) +
                                                ", element " + std::to_string(j % static_cast<std::size_t>(3 * height * width)) +
                                                "): the latents or the decoder are not finite");
        result[base + j] = std::min(1.0f, std::max(0.0f, p[j] / 2.0f + 0.5f));
      }
    }
    return result;
  }

  Img2ImgStats img2img(const Img2ImgJob& job) override {
    const ort::Session& s = need("unet");
    const auto& ss = unet_sample_.shape;
    auto fixed_mismatch = [](std::int64_t want, std::int64_t got) { return want > 0 && want != got; };
    if (fixed_mismatch(ss[1], job.channels) || fixed_mismatch(ss[2], job.height) || fixed_mismatch(ss[3], job.width))
      throw Error(ErrorCode::ShapeMismatch, "latents have shape [B," + std::to_string(job.channels) + "," +
                                                std::to_string(job.height) + "," + std::to_string(job.width) + "] but " +
                                                s.path() + " expects " + unet_sample_.describe());
    const auto& cs = unet_cond_.shape;
    if (fixed_mismatch(cs[2], job.dim) || fixed_mismatch(cs[1], job.seq))
      throw Error(ErrorCode::ShapeMismatch, "conditioning c has shape [B," + std::to_string(job.seq) + "," +
                                                std::to_string(job.dim) + "] but " + s.path() + " expects " +
                                                unet_cond_.describe());
    Backend* dev = device_backend(s);
    if (!dev) {
      OrtUNetRunner runner(s, unet_sample_, unet_t_, unet_cond_, unet_out_, max_rows_per_run_);
      return run_img2img(runner, job);
    }
    OrtUNetRunner runner(s, unet_sample_, unet_t_, unet_cond_, unet_out_, max_rows_per_run_, dev);
    Img2ImgJob on_gpu = job;
    on_gpu.backend = dev;
    return run_img2img(runner, on_gpu);
  }

  // The loop stays on the GPU (latents, noise, history and the U-Net's tensors in CUDA memory; the
  // step and Philox noise as CUDA kernels) when the U-Net runs on the CUDA provider and the engine
  // has the CUDA backend for that device; BRAINLATENT_SD_DEVICE_LOOP=0 keeps the host loop.
  Backend* device_backend(const ort::Session& unet) {
    if (unet.route().rfind("cuda", 0) != 0) return nullptr;
    // (fp16 exports convert at the U-Net's boundary on the host: the host loop)
    if (is_half(unet_sample_) || is_half(unet_cond_) || is_half(unet_out_) || is_half(unet_t_)) return nullptr;
    const char* env = std::getenv("BRAINLATENT_SD_DEVICE_LOOP");
    if (env && std::string(env) == "0") return nullptr;
    if (!device_) {
      const std::string name = "cuda:" + std::to_string(unet.device_id());
      bool compiled = false;
      for (const BackendInfo& b : list_backends())
        if (b.name == "cuda") compiled = b.available;
      if (!compiled) {
        if (env && std::string(env) == "1")
          throw Error(ErrorCode::BackendUnavailable, "BRAINLATENT_SD_DEVICE_LOOP=1 but the engine's CUDA backend is unavailable");
        return nullptr;
      }
      device_ = make_backend(name);
    }
    return device_.get();
  }

 private:
  const ort::Session& need(const std::string& c) const {
    auto it = sessions_.find(c);
    if (it == sessions_.end())
      throw Error(ErrorCode::InvalidArgument, "this pipeline was loaded without " + c + " (components option)");
    return *it->second;
  }

  void check_spatial(const ort::Session& s, const ort::TensorSig& sig, std::int64_t c, std::int64_t h, std::int64_t w,
                     const char* what) const {
    const auto& sh = sig.shape;
    if ((sh[1] > 0 && sh[1] != c) || (sh[2] > 0 && sh[2] != h) || (sh[3] > 0 && sh[3] != w))
      throw Error(ErrorCode::ShapeMismatch, std::string(what) + " have shape [B," + std::to_string(c) + "," +
                                                std::to_string(h) + "," + std::to_string(w) + "] but " + s.path() +
                                                " expects " + sig.describe());
  }

  void adapt() {
    if (auto it = sessions_.find("text_encoder"); it != sessions_.end()) {
      const auto& s = *it->second;
      const char* expected = "input_ids int32|int64 [batch, 77] -> last_hidden_state float32 [batch, 77, D]";
      const ort::TensorSig* ids = s.input("input_ids");
      if (!ids && s.inputs().size() == 1) ids = &s.inputs()[0];
      if (!ids || !is_int(*ids) || ids->shape.size() != 2) mismatch(dir_, s, "text_encoder", expected, "has no usable input_ids");
      for (const auto& in : s.inputs())
        if (&in != ids && in.name != "attention_mask") mismatch(dir_, s, "text_encoder", expected, "has an unexpected input '" + in.name + "'");
      te_ids_ = *ids;
      const ort::TensorSig* out = s.output("last_hidden_state");
      if (!out)
        for (const auto& o : s.outputs())
          if (o.shape.size() == 3 && is_real(o)) { out = &o; break; }
      if (!out || out->shape.size() != 3) mismatch(dir_, s, "text_encoder", expected, "has no last_hidden_state output");
      te_out_ = out->name;
      summary_.input_ids_dtype = ort::element_type_name(ids->type);
      summary_.text_seq = ids->shape[1];
      if (out->shape[2] > 0) summary_.cond_dim = out->shape[2];
    }
    if (auto it = sessions_.find("unet"); it != sessions_.end()) {
      const auto& s = *it->second;
      const char* expected =
          "sample float32 [batch, 4, h, w], timestep float32|int64|int32 [] or [batch], encoder_hidden_states float32 "
          "[batch, 77, D] -> out_sample float32 [batch, 4, h, w]";
      const ort::TensorSig* x = s.input("sample");
      const ort::TensorSig* t = s.input("timestep");
      const ort::TensorSig* c = s.input("encoder_hidden_states");
      if (!x || !t || !c) mismatch(dir_, s, "unet", expected, "lacks sample, timestep or encoder_hidden_states");
      if (s.inputs().size() != 3) mismatch(dir_, s, "unet", expected, "has extra inputs (not an SD 1.x U-Net)");
      if (!is_real(*x) || x->shape.size() != 4) mismatch(dir_, s, "unet", expected, "has a sample input that is not float32/float16 rank 4");
      if (!is_real(*c) || c->shape.size() != 3)
        mismatch(dir_, s, "unet", expected, "has encoder_hidden_states that is not float32/float16 rank 3");
      if (!(is_real(*t) || is_int(*t)) || t->shape.size() > 1)
        mismatch(dir_, s, "unet", expected, "has a timestep that is not float32/float16/int64/int32 of rank 0 or 1");
      const ort::TensorSig* o = s.output("out_sample");
      if (!o && s.outputs().size() == 1) o = &s.outputs()[0];
      if (!o || !is_real(*o)) mismatch(dir_, s, "unet", expected, "has no float32/float16 out_sample output");
      unet_sample_ = *x;
      unet_t_ = *t;
      unet_cond_ = *c;
      unet_out_ = *o;
      summary_.timestep_dtype = ort::element_type_name(t->type);
      summary_.timestep_rank = static_cast<int>(t->shape.size());
      if (x->shape[1] > 0) summary_.latent_channels = x->shape[1];
      if (c->shape[2] > 0) {
        if (summary_.cond_dim > 0 && summary_.cond_dim != c->shape[2])
          mismatch(dir_, s, "unet", expected,
                   "takes encoder_hidden_states of width " + std::to_string(c->shape[2]) +
                       " but the text encoder produces width " + std::to_string(summary_.cond_dim));
        summary_.cond_dim = c->shape[2];
      }
    }
    if (auto it = sessions_.find("vae_encoder"); it != sessions_.end()) {
      const auto& s = *it->second;
      const char* expected = "sample float32 [batch, 3, H, W] -> latent_sample [batch, 4, H/8, W/8] or latent_parameters [batch, 8, H/8, W/8]";
      const ort::TensorSig* x = s.input("sample");
      if (!x && s.inputs().size() == 1) x = &s.inputs()[0];
      if (!x || !is_real(*x) || x->shape.size() != 4) mismatch(dir_, s, "vae_encoder", expected, "has no float32/float16 rank-4 sample input");
      vae_in_ = *x;
      if (s.output("latent_parameters")) summary_.vae_encoder_output = "latent_parameters";
      else if (s.output("latent_sample")) summary_.vae_encoder_output = "latent_sample";
      else mismatch(dir_, s, "vae_encoder", expected, "has neither latent_sample nor latent_parameters");
    }
    if (auto it = sessions_.find("vae_decoder"); it != sessions_.end()) {
      const auto& s = *it->second;
      const char* expected = "latent_sample float32 [batch, 4, h, w] -> sample float32 [batch, 3, 8h, 8w]";
      const ort::TensorSig* x = s.input("latent_sample");
      if (!x && s.inputs().size() == 1) x = &s.inputs()[0];
      if (!x || !is_real(*x) || x->shape.size() != 4) mismatch(dir_, s, "vae_decoder", expected, "has no float32/float16 rank-4 latent_sample input");
      dec_in_ = *x;
      const ort::TensorSig* o = s.output("sample");
      if (!o && s.outputs().size() == 1) o = &s.outputs()[0];
      if (!o) mismatch(dir_, s, "vae_decoder", expected, "has no sample output");
      dec_out_ = o->name;
    }
  }

  std::string dir_;
  int max_rows_per_run_ = 0;
  std::unique_ptr<Backend> device_;  // the CUDA backend of a device-resident loop (device_backend())
  std::map<std::string, std::unique_ptr<ort::Session>> sessions_;
  SdSummary summary_;
  ort::TensorSig te_ids_, unet_sample_, unet_t_, unet_cond_, unet_out_, vae_in_, dec_in_;
  std::string te_out_, dec_out_;
  std::vector<std::int64_t> mask64_;
  std::vector<std::int32_t> mask32_;
};

}  // namespace

std::unique_ptr<SdPipeline> SdPipeline::load(const SdLoadOptions& options) {
  return std::make_unique<OrtSdPipeline>(options);
}

void rgb8_to_model_input(const std::uint8_t* rgb, std::int64_t batch, std::int64_t height, std::int64_t width,
                         float* out) {
  const std::int64_t plane = height * width;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t p = 0; p < plane; ++p)
      for (int c = 0; c < 3; ++c)
        out[(b * 3 + c) * plane + p] = static_cast<float>(rgb[(b * plane + p) * 3 + c]) / 127.5f - 1.0f;
}

void model_output_to_rgb8(const float* img, std::int64_t batch, std::int64_t height, std::int64_t width,
                          std::uint8_t* out) {
  const std::int64_t plane = height * width;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t p = 0; p < plane; ++p)
      for (int c = 0; c < 3; ++c) {
        const float v = std::min(1.0f, std::max(0.0f, img[(b * 3 + c) * plane + p]));
        out[(b * plane + p) * 3 + c] = static_cast<std::uint8_t>(std::lround(v * 255.0f));
      }
}

}  // namespace brainlatent
