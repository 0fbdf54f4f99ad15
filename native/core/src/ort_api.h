// Private: the loaded OrtApi table, status checking and small RAII holders. Only src/ort_*.cpp
// and src/sd_pipeline.cpp include the ONNX Runtime C header.
#pragma once
#include <onnxruntime_c_api.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "brainlatent/ort_runtime.h"
#include "brainlatent/checked_file.h"

namespace brainlatent::ort {

const OrtApi& api();  // throws BackendUnavailable when no runtime is loaded
OrtEnv* env();

// Throws Error(OrtFailure, what + ": " + ORT's message) when st is an error; releases st.
void check(OrtStatus* st, const std::string& what);

struct ValueDeleter { void operator()(OrtValue* v) const { if (v) api().ReleaseValue(v); } };
using Value = std::unique_ptr<OrtValue, ValueDeleter>;

const char* element_type_name(ONNXTensorElementDataType t);

struct TensorSig {
  std::string name;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<std::int64_t> shape;     // -1 for symbolic / unknown
  std::vector<std::string> dim_names;  // symbolic names ("" when fixed)
  std::string describe() const;        // "sample float32 [batch, 4, height, width]"
};

// Adds c's execution provider to `so` (ort_provider.cpp) and returns the route, for logs: "cpu",
// "cuda (built-in)", "cuda (plugin: <library>)" or the provider's name. BackendUnavailable when the
// provider, its library or the device is missing; InvalidArgument for contradictory settings.
std::string append_provider(OrtSessionOptions* so, const OrtSessionConfig& c);
// c.provider_library, else env BRAINLATENT_ORT_PROVIDER_LIB, else "" (the classic CUDA route).
std::string provider_library_of(const OrtSessionConfig& c);

// One InferenceSession with its signature, created once and reused.
class Session {
 public:
  Session(const std::string& path, const OrtSessionConfig& config);
  // A model given as its serialized bytes (CreateSessionFromArray): a graph edited in memory, never written to
  // disk. Its external weights are read from `external_data_folder`, the folder of the model it was made from
  // (session config "session.model_external_initializers_file_folder_path"), so they need no copy or link
  // beside a copy of the model. `label` names the model in messages; `bytes` is only read during the call.
  Session(const void* bytes, std::size_t size, const std::string& label, const std::string& external_data_folder,
          const OrtSessionConfig& config);
  // A model given as its graph's bytes whose external data files were checked by the caller (a service's model
  // roots): each file is opened here, held to the device and inode checked, mapped, and handed to ONNX Runtime as a
  // file in memory under its location (AddExternalInitializersFromFilesInMemory), which it copies during the call.
  // ONNX Runtime is given an empty private folder for its external data, so a tensor it would still read by path
  // (a subgraph's) finds nothing there: it never opens a path of the model's. `files` must name every location.
  Session(const void* bytes, std::size_t size, const std::string& label, const std::vector<CheckedFile>& files,
          const OrtSessionConfig& config);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  OrtSession* get() const { return session_; }
  const std::string& path() const { return path_; }
  const std::vector<TensorSig>& inputs() const { return inputs_; }
  const std::vector<TensorSig>& outputs() const { return outputs_; }
  const TensorSig* input(const std::string& name) const;
  const TensorSig* output(const std::string& name) const;
  bool on_cpu() const { return on_cpu_; }
  const std::string& route() const { return route_; }  // append_provider's description
  int device_id() const { return device_id_; }
  std::string describe() const;  // every input and output, one per line

 private:
  // Session options from `config` (and the provider), then `create(options)` makes session_; errors name path_.
  void open(const OrtSessionConfig& config, const std::function<OrtStatus*(OrtSessionOptions*)>& create);
  std::string path_;
  // the files handed from memory, as (location, size): which one ONNX Runtime found too short, in its refusal
  std::vector<std::pair<std::string, std::uint64_t>> file_sizes_;
  OrtSession* session_ = nullptr;
  std::vector<TensorSig> inputs_, outputs_;
  bool on_cpu_ = true;
  std::string route_ = "cpu";
  int device_id_ = 0;
};

// A tensor over caller-owned memory (no copy).
Value tensor_over(void* data, std::size_t bytes, const std::vector<std::int64_t>& shape, ONNXTensorElementDataType type);
const OrtMemoryInfo* cpu_memory();
// A float32 host array as a model input of element type `want`: over the array itself for float32,
// or over `scratch` holding it converted for float16 (an fp16 export's boundary).
Value float_input(const float* data, std::size_t count, const std::vector<std::int64_t>& shape, ONNXTensorElementDataType want,
                  std::vector<std::uint16_t>& scratch);
// A float32 or float16 output as float32: its own data, or `scratch` holding it converted.
const float* float_output(OrtValue* v, std::vector<float>& scratch);
// A tensor over CUDA device memory of device `device_id` (no copy): inputs and outputs a CUDA
// provider reads and writes in place.
Value tensor_over_cuda(void* data, std::size_t bytes, const std::vector<std::int64_t>& shape, ONNXTensorElementDataType type,
                       int device_id);

// Runs with plain inputs; outputs allocated by ORT, returned in the order of `output_names`.
std::vector<Value> run(const Session& s, const std::vector<const char*>& input_names,
                       const std::vector<const OrtValue*>& inputs, const std::vector<const char*>& output_names,
                       OrtRunOptions* run_options = nullptr);
std::vector<std::int64_t> shape_of(const OrtValue* v);
const float* float_data(OrtValue* v);

}  // namespace brainlatent::ort
