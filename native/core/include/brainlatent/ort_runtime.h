// ONNX Runtime, loaded at run time (dlopen + OrtGetApiBase), never linked: one engine binary
// runs on the onnxruntime-node library, on a CUDA build, or on another compatible release
// (API >= the headers' ORT_API_VERSION). One library per process; the OrtEnv is shared.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace brainlatent {

struct OrtRuntimeInfo {
  std::string library_path;          // what was dlopen'ed
  std::string version;               // GetVersionString()
  int api_version = 0;               // the API level the engine requested
  // GetAvailableProviders() less those in providers_without_library: what a session can ask for.
  std::vector<std::string> providers;
  // Providers compiled into the core whose shared library ONNX Runtime loads from the core's folder is not there
  // (onnxruntime-node's core, and the copy shipped with the prebuilt engine, list CUDA and TensorRT without their
  // libraries): {provider, the file expected}. A session asking for one fails.
  std::vector<std::pair<std::string, std::string>> providers_without_library;
};

// The library file ONNX Runtime would load `provider` (a GetAvailableProviders() name) from, beside the core at
// `core_path` (its folder as given: provider_bridge_ort.cc looks there), when that file, or else the shared bridge
// libonnxruntime_providers_shared that ORT loads before it, is missing; "" when both exist or the provider is not one ORT
// loads from a library (CPU, XNNPACK, WebGPU, …). A stat of two files at most.
std::string missing_provider_library(const std::string& core_path, const std::string& provider);

namespace ort {
// ONNX Runtime's refusal of a tensor whose external data lies past the end of its file ("External initializer: w
// offset: 4096 size to read: 16 given file_length: 8 are out of bounds or can not be read in full.") in words naming
// the tensor (a name with spaces whole) and, among `files` (location, size), those of the size it was given; "" for
// any other failure. (A backstop: the caller's reading of the graph refuses a short file first.)
std::string short_file_problem(const std::string& msg, const std::vector<std::pair<std::string, std::uint64_t>>& files);
}  // namespace ort

// Loads the library once per process. `path` empty = env BRAINLATENT_ORT_LIB. Loading again with
// the same path (or an empty one) returns the loaded runtime; another path is an error.
// Throws BackendUnavailable when the file cannot be opened, has no OrtGetApiBase, or is too old.
OrtRuntimeInfo ort_load(const std::string& path);
bool ort_is_loaded();
// Whether this build has the engine's test hooks (CMake option BRAINLATENT_TEST_HOOKS: environment variables read
// around ONNX Runtime's session creation, ort_runtime.cpp): on in the checkout's test builds, off in a package's.
// Compiled in, they still act only in a process with BRAINLATENT_TEST_HOOKS=1 in its environment.
bool ort_test_hooks_compiled();
// The loaded runtime's info (set once, never changed after), or null before ort_load.
const OrtRuntimeInfo* ort_loaded_info();

// Session settings shared by every model of a pipeline.
struct OrtSessionConfig {
  int intra_threads = 0;          // 0 = ORT's default (all physical cores)
  int inter_threads = 0;
  std::string provider = "cpu";   // "cpu" | "cuda" | any name SessionOptionsAppendExecutionProvider knows
  int device_id = 0;              // the CUDA ordinal (provider "cuda")
  // Provider "cuda" through a plugin execution-provider library (libonnxruntime_providers_cuda.so of a
  // core build whose classic CUDA append is not enabled, e.g. ORT 1.29's CPU core + its CUDA 13 provider):
  // registered once per process (RegisterExecutionProviderLibrary), its OrtEpDevice for device_id
  // selected, appended with SessionOptionsAppendExecutionProvider_V2. Empty = env
  // BRAINLATENT_ORT_PROVIDER_LIB; empty again = the classic route (SessionOptionsAppendExecutionProvider_CUDA_V2).
  std::string provider_library;
  // Passed through to the provider on either route (e.g. {"use_tf32", "0"} for fp32 parity); the device
  // is device_id, never a "device_id" key here.
  std::vector<std::pair<std::string, std::string>> provider_options;
  bool spinning = true;           // session.intra_op.allow_spinning
  std::string optimization = "all";  // "disable" | "basic" | "extended" | "all"
  // Memory (what a large model such as SD 1.x's 3.4 GB U-Net peaks at): ORT's defaults keep a growing
  // CPU arena, pre-plan activation buffers (memory patterns), and pre-pack MatMul/Conv weights into a
  // second copy. Turning these off trades a little speed for a peak near the weights' own size.
  bool memory_arena = true;         // session.enable_cpu_mem_arena
  bool memory_pattern = true;       // session.enable_mem_pattern
  bool prepacking = true;           // !session.disable_prepacking
  bool initializers_malloc = false; // session.use_device_allocator_for_initializers (not the arena)
  // Rows of a batch per U-Net run (0 = the whole batch in one run). Activations grow with the rows:
  // SD 1.x's self-attention at 64×64 latents holds 8 heads × 4096² scores per row (0.5 GiB), so with
  // guidance one image is 2 rows and a batch of 4 is 8. Rows are independent through the U-Net, so
  // the batch runs as consecutive slices of its own buffers (no copy), with the same result.
  int max_rows_per_run = 0;
};

}  // namespace brainlatent
