#include "brainlatent/ort_model.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "brainlatent/error.h"
#include "half.h"
#include "ort_api.h"

namespace brainlatent {
namespace {

std::string shape_str(const std::vector<std::int64_t>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::size_t source_size(const std::string& dtype) {
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "float64" || dtype == "int64") return 8;
  return 0;
}

double read_as_double(const void* data, const std::string& dtype, std::size_t i) {
  if (dtype == "float32") return static_cast<const float*>(data)[i];
  if (dtype == "float64") return static_cast<const double*>(data)[i];
  if (dtype == "int32") return static_cast<const std::int32_t*>(data)[i];
  return static_cast<double>(static_cast<const std::int64_t*>(data)[i]);
}

// Truncation toward zero for integer targets (numpy astype), rounding to nearest for float32.
template <typename T>
void convert_into(const OnnxInput& in, std::size_t n, T* out) {
  for (std::size_t i = 0; i < n; ++i) {
    const double v = read_as_double(in.data, in.dtype, i);
    if (std::is_integral<T>::value) {
      if (!std::isfinite(v))
        throw Error(ErrorCode::NonFinite, "input '" + in.name + "' has a non-finite value at index " + std::to_string(i) +
                                              " where the model declares an integer tensor");
      out[i] = static_cast<T>(std::trunc(v));
    } else {
      out[i] = static_cast<T>(v);
    }
  }
}

ONNXTensorElementDataType type_of_name(const std::string& dtype) {
  if (dtype == "float32") return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  if (dtype == "float64") return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
  if (dtype == "int32") return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
  if (dtype == "int64") return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

OnnxTensorInfo info_of(const ort::TensorSig& s) { return {s.name, ort::element_type_name(s.type), s.shape, s.dim_names}; }

class OrtOnnxModel : public OnnxModel {
 public:
  OrtOnnxModel(const std::string& path, const OrtSessionConfig& config) : session_(path, config) { read_infos(); }
  OrtOnnxModel(const void* bytes, std::size_t size, const std::string& name, const std::string& folder,
               const OrtSessionConfig& config)
      : session_(bytes, size, name, folder, config) {
    read_infos();
  }
  OrtOnnxModel(const void* bytes, std::size_t size, const std::string& name, const std::vector<CheckedFile>& files,
               const OrtSessionConfig& config)
      : session_(bytes, size, name, files, config) {
    read_infos();
  }
  const std::string& path() const override { return session_.path(); }
  const std::string& provider() const override { return session_.route(); }
  const std::vector<OnnxTensorInfo>& inputs() const override { return inputs_; }
  const std::vector<OnnxTensorInfo>& outputs() const override { return outputs_; }

  std::vector<OnnxOutput> run(const std::vector<OnnxInput>& given, const std::vector<std::string>& output_names,
                              OnnxRunToken* token) const override {
    const std::string& p = session_.path();
    auto bad = [&](const std::string& m) { throw Error(ErrorCode::InvalidArgument, p + ": " + m); };
    auto names_of = [](const std::vector<OnnxTensorInfo>& list) {
      std::string s;
      for (const auto& t : list) s += (s.empty() ? "" : ", ") + t.name;
      return s;
    };
    // every declared input exactly once, in the session's order
    std::vector<const OnnxInput*> by_decl(session_.inputs().size(), nullptr);
    for (const auto& in : given) {
      std::size_t k = 0;
      while (k < session_.inputs().size() && session_.inputs()[k].name != in.name) ++k;
      if (k == session_.inputs().size()) bad("has no input '" + in.name + "' (inputs: " + names_of(inputs_) + ")");
      if (by_decl[k]) bad("input '" + in.name + "' given twice");
      by_decl[k] = &in;
    }
    std::vector<ort::Value> values;
    std::vector<std::vector<unsigned char>> converted;
    std::vector<const char*> in_names;
    std::vector<const OrtValue*> in_values;
    for (std::size_t k = 0; k < by_decl.size(); ++k) {
      const ort::TensorSig& sig = session_.inputs()[k];
      const OnnxInput* in = by_decl[k];
      if (!in) bad("input '" + sig.name + "' is missing (expected " + sig.describe() + ")");
      if (!in->data && !in->shape.empty()) bad("input '" + in->name + "' has no data");
      if (source_size(in->dtype) == 0)
        bad("input '" + in->name + "' has element type '" + in->dtype + "': expected float32, float64, int32 or int64");
      if (sig.shape.size() != in->shape.size())
        throw Error(ErrorCode::ShapeMismatch, p + ": input '" + in->name + "' has shape " + shape_str(in->shape) +
                                                  " but the model declares " + sig.describe());
      std::size_t n = 1;
      for (std::size_t d = 0; d < in->shape.size(); ++d) {
        if (in->shape[d] < 0 || (sig.shape[d] >= 0 && sig.shape[d] != in->shape[d]))
          throw Error(ErrorCode::ShapeMismatch, p + ": input '" + in->name + "' has shape " + shape_str(in->shape) +
                                                    " but the model declares " + sig.describe());
        n *= static_cast<std::size_t>(in->shape[d]);
      }
      const ONNXTensorElementDataType want = sig.type;
      const ONNXTensorElementDataType have = type_of_name(in->dtype);
      void* data = const_cast<void*>(in->data);
      std::size_t elem = source_size(in->dtype);
      if (want != have) {
        std::vector<unsigned char> buf;
        switch (want) {
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
            buf.resize(n * 4);
            convert_into(*in, n, reinterpret_cast<float*>(buf.data()));
            elem = 4;
            break;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
            buf.resize(n * 8);
            convert_into(*in, n, reinterpret_cast<double*>(buf.data()));
            elem = 8;
            break;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
            buf.resize(n * 4);
            convert_into(*in, n, reinterpret_cast<std::int32_t*>(buf.data()));
            elem = 4;
            break;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
            buf.resize(n * 8);
            convert_into(*in, n, reinterpret_cast<std::int64_t*>(buf.data()));
            elem = 8;
            break;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: {  // a float16 export's inputs: rounded to half (nearest even)
            buf.resize(n * 2);
            auto* h = reinterpret_cast<std::uint16_t*>(buf.data());
            for (std::size_t i = 0; i < n; ++i) h[i] = half_from_float(static_cast<float>(read_as_double(in->data, in->dtype, i)));
            elem = 2;
            break;
          }
          default:
            bad("input '" + sig.name + "' is declared " + ort::element_type_name(want) +
                ", which the engine cannot feed (float32, float16, float64, int32 and int64 only)");
        }
        converted.push_back(std::move(buf));
        data = converted.back().data();
      }
      values.push_back(ort::tensor_over(data, n * elem, in->shape, want));
      in_names.push_back(sig.name.c_str());
      in_values.push_back(values.back().get());
    }
    if (output_names.empty()) bad("no output names given (outputs: " + names_of(outputs_) + ")");
    std::vector<const char*> out_names;
    for (const auto& name : output_names) {
      const ort::TensorSig* sig = session_.output(name);
      if (!sig) bad("has no output '" + name + "' (outputs: " + names_of(outputs_) + ")");
      // an exposed inner tensor may have no declared type (UNDEFINED): accept it and check the result
      if (sig->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && sig->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 &&
          sig->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED)
        bad("output '" + name + "' is " + ort::element_type_name(sig->type) + ", expected float32 or float16");
      out_names.push_back(sig->name.c_str());
    }
    if (token && token->cancelled()) throw Error(ErrorCode::Cancelled, p + ": run cancelled before it started");
    OrtRunOptions* ro = token ? static_cast<OrtRunOptions*>(token->run_options()) : nullptr;
    std::vector<ort::Value> outs;
    try {
      outs = ort::run(session_, in_names, in_values, out_names, ro);
    } catch (const Error&) {
      if (token && token->cancelled()) throw Error(ErrorCode::Cancelled, p + ": run cancelled");
      throw;
    }
    std::vector<OnnxOutput> result;
    for (std::size_t i = 0; i < outs.size(); ++i) {
      OrtValue* v = outs[i].get();
      OrtTensorTypeAndShapeInfo* ti = nullptr;
      ort::check(ort::api().GetTensorTypeAndShape(v, &ti), "GetTensorTypeAndShape");
      ONNXTensorElementDataType t = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
      std::size_t count = 0;
      OrtStatus* st = ort::api().GetTensorElementType(ti, &t);
      if (!st) st = ort::api().GetTensorShapeElementCount(ti, &count);
      ort::api().ReleaseTensorTypeAndShapeInfo(ti);
      ort::check(st, "GetTensorElementType");
      if (t != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && t != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16)
        bad("output '" + output_names[i] + "' came back as " + ort::element_type_name(t) + ", expected float32 or float16");
      OnnxOutput o;
      o.name = output_names[i];
      o.shape = ort::shape_of(v);
      o.count = count;
      if (t == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) {
        // a float16 tensor (a float16 export's layers) is handed over as float32: converted once, exactly
        auto values = std::make_shared<std::vector<float>>(count);
        void* p = nullptr;
        ort::check(ort::api().GetTensorMutableData(v, &p), "GetTensorMutableData");
        half_to_floats(static_cast<const std::uint16_t*>(p), values->data(), count);
        o.data = values->data();
        o.owner = values;
      } else {
        o.data = const_cast<float*>(ort::float_data(v));
        OrtValue* raw = outs[i].release();
        o.owner = std::shared_ptr<void>(raw, [](void* q) { ort::api().ReleaseValue(static_cast<OrtValue*>(q)); });
      }
      result.push_back(std::move(o));
    }
    return result;
  }

 private:
  void read_infos() {
    for (const auto& s : session_.inputs()) inputs_.push_back(info_of(s));
    for (const auto& s : session_.outputs()) outputs_.push_back(info_of(s));
  }
  ort::Session session_;
  std::vector<OnnxTensorInfo> inputs_, outputs_;
};

}  // namespace

OnnxRunToken::OnnxRunToken() {
  OrtRunOptions* ro = nullptr;
  ort::check(ort::api().CreateRunOptions(&ro), "CreateRunOptions");
  run_options_ = ro;
}

OnnxRunToken::~OnnxRunToken() {
  if (run_options_) ort::api().ReleaseRunOptions(static_cast<OrtRunOptions*>(run_options_));
}

void OnnxRunToken::cancel() {
  cancelled_.store(true);
  if (OrtStatus* st = ort::api().RunOptionsSetTerminate(static_cast<OrtRunOptions*>(run_options_)))
    ort::api().ReleaseStatus(st);
}

std::unique_ptr<OnnxModel> OnnxModel::load(const std::string& path, const std::string& ort_library,
                                           const OrtSessionConfig& config) {
  ort_load(ort_library);
  return std::make_unique<OrtOnnxModel>(path, config);
}

std::unique_ptr<OnnxModel> OnnxModel::load_bytes(const void* bytes, std::size_t size, const std::string& name,
                                                 const std::string& external_data_folder, const std::string& ort_library,
                                                 const OrtSessionConfig& config) {
  if (!bytes || size == 0) throw Error(ErrorCode::InvalidArgument, name + ": no model bytes given");
  ort_load(ort_library);
  return std::make_unique<OrtOnnxModel>(bytes, size, name, external_data_folder, config);
}

std::unique_ptr<OnnxModel> OnnxModel::load_checked(const void* bytes, std::size_t size, const std::string& name,
                                                   const std::vector<CheckedFile>& files, const std::string& ort_library,
                                                   const OrtSessionConfig& config) {
  if (!bytes || size == 0) throw Error(ErrorCode::InvalidArgument, name + ": no model bytes given");
  ort_load(ort_library);
  return std::make_unique<OrtOnnxModel>(bytes, size, name, files, config);
}

}  // namespace brainlatent
