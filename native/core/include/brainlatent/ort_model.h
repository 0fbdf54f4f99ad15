// Any ONNX model on the engine's ONNX Runtime (ort_runtime.h): load once, then run it on named
// inputs and get named outputs back. It serves encoding's U-Net features (a U-Net whose graph
// outputs include inner layers, ts/encoding/unetLayers.ts) and any other model a caller needs
// beside the SD pipeline, without a second runtime in the process.
//
// - Inputs are read in place when their element type is the one the model declares; otherwise they
//   are converted once (float32/float64/int32/int64 → the declared float32, float64, int32 or
//   int64; to an integer type by truncation toward zero, as numpy's astype does, which is how
//   diffusers hands a float timestep to an int64 U-Net; to a declared float16 by rounding the
//   float32 value to nearest even, as a float16 export takes it).
// - Outputs are float32: a float32 output is ONNX Runtime's buffer, handed over without a copy; a
//   float16 one (a float16 export's layers) is converted to float32 (exact) into a buffer of its own.
// - run() may be called from any thread; cancel() from another one stops a run in flight (ORT's
//   terminate flag), which then throws ErrorCode::Cancelled.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "brainlatent/checked_file.h"
#include "brainlatent/ort_runtime.h"

namespace brainlatent {

struct OnnxTensorInfo {
  std::string name;
  std::string dtype;                // "float32", "int64", ...
  std::vector<std::int64_t> shape;  // -1 where symbolic
  std::vector<std::string> dims;    // symbolic names, "" where fixed
};

// A caller's input: element type of `data` ("float32" | "float64" | "int32" | "int64").
struct OnnxInput {
  std::string name;
  std::string dtype;
  const void* data = nullptr;
  std::vector<std::int64_t> shape;
};

// One output: float32 values (a float16 output converted) owned by `owner` (release it to free them).
struct OnnxOutput {
  std::string name;
  std::vector<std::int64_t> shape;
  float* data = nullptr;
  std::size_t count = 0;
  std::shared_ptr<void> owner;
};

// Stops a run() in flight when cancel() is called (from any thread); a later run() with a
// cancelled token stops before it starts.
class OnnxRunToken {
 public:
  OnnxRunToken();
  ~OnnxRunToken();
  OnnxRunToken(const OnnxRunToken&) = delete;
  OnnxRunToken& operator=(const OnnxRunToken&) = delete;
  void cancel();
  bool cancelled() const { return cancelled_.load(); }
  void* run_options() const { return run_options_; }  // OrtRunOptions*

 private:
  std::atomic<bool> cancelled_{false};
  void* run_options_ = nullptr;
};

class OnnxModel {
 public:
  // Loads the runtime (ort_load(ort_library)) and creates the session. Throws OrtFailure when the
  // file is not a loadable model, BackendUnavailable when the runtime or provider is missing.
  static std::unique_ptr<OnnxModel> load(const std::string& path, const std::string& ort_library,
                                         const OrtSessionConfig& config);
  // The same from a model's serialized bytes (an ONNX ModelProto edited in memory, e.g. a U-Net with inner layers
  // as graph outputs), whose external weights are read from `external_data_folder` (the folder of the model it
  // was made from: nothing is copied or linked). `name` stands for the model in path() and in messages. `bytes`
  // is only read during the call; for a model with external weights it holds the graph only.
  static std::unique_ptr<OnnxModel> load_bytes(const void* bytes, std::size_t size, const std::string& name,
                                               const std::string& external_data_folder, const std::string& ort_library,
                                               const OrtSessionConfig& config);
  // The same from a model's graph bytes whose external data files were checked by the caller (a service's model
  // roots, ts/sd/modelRoots.ts): each is opened here, held to the device and inode checked, and handed to ONNX
  // Runtime from memory, which then opens no path (checked_file.h). `files` names every location the graph names.
  // A file truncated or rewritten while ONNX Runtime copies it is refused (InvalidModel, naming the file), and the
  // process survives it (mapping_guard.h); ONNX Runtime keeps no pointer to the files after the load.
  static std::unique_ptr<OnnxModel> load_checked(const void* bytes, std::size_t size, const std::string& name,
                                                 const std::vector<CheckedFile>& files, const std::string& ort_library,
                                                 const OrtSessionConfig& config);
  virtual ~OnnxModel() = default;
  // The model file, or load_bytes' name.
  virtual const std::string& path() const = 0;
  // How it runs: "cpu", "cuda (built-in)", "cuda (plugin: <library>)" or the provider's name.
  virtual const std::string& provider() const = 0;
  virtual const std::vector<OnnxTensorInfo>& inputs() const = 0;
  virtual const std::vector<OnnxTensorInfo>& outputs() const = 0;
  // Runs on exactly the model's inputs and returns `output_names` in that order. Errors name the
  // model file and the input or output: an unknown name (listing the known ones), a missing input,
  // a rank or fixed size that does not match the declaration, an output that is not float32 or float16.
  virtual std::vector<OnnxOutput> run(const std::vector<OnnxInput>& inputs, const std::vector<std::string>& output_names,
                                      OnnxRunToken* token = nullptr) const = 0;
};

}  // namespace brainlatent
