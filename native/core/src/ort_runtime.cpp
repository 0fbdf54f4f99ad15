#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>

#include "brainlatent/error.h"
#include "half.h"
#include "ort_api.h"

namespace brainlatent {
namespace {

struct Runtime {
  std::mutex mutex;
  void* handle = nullptr;
  const OrtApi* api = nullptr;
  OrtEnv* env = nullptr;
  OrtMemoryInfo* cpu = nullptr;
  OrtRuntimeInfo info;
};

Runtime& runtime() {
  static Runtime* r = new Runtime();  // never destroyed: ORT objects outlive static destructors
  return *r;
}

// ONNX Runtime 1.30 on Linux and macOS starts a telemetry uploader (Microsoft's 1DS SDK) with its first OrtEnv,
// which writes $TMPDIR/.ses, $TMPDIR/mat-debug-<pid>.log (one per process) and
// $XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}. The only switch that stops it is
// the environment variable ORT_DISABLE_TELEMETRY, read when that OrtEnv is made; DisableTelemetryEvents, called on
// an OrtEnv, comes after the uploader started and only mutes later events. The default here is off, unless the
// caller set the variable (ORT_DISABLE_TELEMETRY=0 keeps ONNX Runtime's telemetry). In Node, ts/native/ortTelemetry.ts
// sets it before the addon loads, so the setenv below only runs for C++ callers (setenv is not safe against other
// threads reading the environment at the same time, which is why TypeScript sets it first). Returns whether
// telemetry is to be off.
bool default_ort_telemetry_off() {
  const char* v = std::getenv("ORT_DISABLE_TELEMETRY");
  if (!v) {
    setenv("ORT_DISABLE_TELEMETRY", "1", 0);
    return true;
  }
  std::string s(v);  // ONNX Runtime's reading: blanks around ignored, case-insensitive 1/true/yes/on/y
  const auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!s.empty() && blank(s.back())) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && blank(s[i])) ++i;
  s.erase(0, i);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s == "1" || s == "true" || s == "yes" || s == "on" || s == "y";
}

// The providers ONNX Runtime builds as shared libraries (libonnxruntime_providers_<stem>), loaded on first use
// from the core's folder; the others are inside the core.
const char* provider_library_stem(const std::string& provider) {
  static const std::pair<const char*, const char*> stems[] = {
      {"CUDAExecutionProvider", "cuda"},         {"TensorrtExecutionProvider", "tensorrt"},
      {"MIGraphXExecutionProvider", "migraphx"}, {"ROCMExecutionProvider", "rocm"},
      {"OpenVINOExecutionProvider", "openvino"}, {"CANNExecutionProvider", "cann"},
      {"DnnlExecutionProvider", "dnnl"},         {"VitisAIExecutionProvider", "vitisai"},
  };
  for (const auto& [name, stem] : stems)
    if (provider == name) return stem;
  return nullptr;
}

}  // namespace

std::string missing_provider_library(const std::string& core_path, const std::string& provider) {
  const char* stem = provider_library_stem(provider);
  if (!stem) return "";
#ifdef __APPLE__
  const char* ext = ".dylib";
#else
  const char* ext = ".so";
#endif
  const std::size_t slash = core_path.find_last_of('/');
  const std::string folder = slash == std::string::npos ? "" : core_path.substr(0, slash + 1);
  for (const std::string& file : {folder + "libonnxruntime_providers_" + stem + ext,
                                  folder + "libonnxruntime_providers_shared" + ext}) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) return file;
  }
  return "";
}

OrtRuntimeInfo ort_load(const std::string& requested) {
  Runtime& r = runtime();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::string path = requested;
  if (path.empty()) {
    const char* e = std::getenv("BRAINLATENT_ORT_LIB");
    if (e && *e) path = e;
  }
  if (r.api) {
    if (!path.empty() && path != r.info.library_path)
      throw Error(ErrorCode::InvalidArgument, "ONNX Runtime is already loaded from " + r.info.library_path +
                                                  "; cannot load a second library (" + path + ") in one process");
    return r.info;
  }
  if (path.empty())
    throw Error(ErrorCode::BackendUnavailable,
                "no ONNX Runtime library given: pass its path or set BRAINLATENT_ORT_LIB "
                "(onnxruntime-node ships bin/napi-v6/<platform>/<arch>/libonnxruntime.so.1)");
  const bool telemetry_off = default_ort_telemetry_off();
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = dlerror();
    throw Error(ErrorCode::BackendUnavailable,
                "cannot load ONNX Runtime from " + path + ": " + (why ? why : "dlopen failed"));
  }
  using GetApiBase = const OrtApiBase* (*)();
  auto get_base = reinterpret_cast<GetApiBase>(dlsym(h, "OrtGetApiBase"));
  if (!get_base) {
    dlclose(h);
    throw Error(ErrorCode::BackendUnavailable, path + " is not an ONNX Runtime library (no OrtGetApiBase symbol)");
  }
  const OrtApiBase* base = get_base();
  const OrtApi* api = base ? base->GetApi(ORT_API_VERSION) : nullptr;
  const std::string version = base && base->GetVersionString ? base->GetVersionString() : "?";
  if (!api) {
    dlclose(h);
    throw Error(ErrorCode::BackendUnavailable, "ONNX Runtime " + version + " at " + path +
                                                   " is too old: the engine needs API version " +
                                                   std::to_string(ORT_API_VERSION) + " (ONNX Runtime >= 1." +
                                                   std::to_string(ORT_API_VERSION) + ")");
  }
  OrtEnv* env = nullptr;
  if (OrtStatus* st = api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "brainlatent", &env)) {
    std::string msg = api->GetErrorMessage(st);
    api->ReleaseStatus(st);
    throw Error(ErrorCode::OrtFailure, "ONNX Runtime CreateEnv failed: " + msg);
  }
  // For a runtime that does not read ORT_DISABLE_TELEMETRY (BRAINLATENT_ORT_LIB can name another version): at least
  // no session or run events. A failure here is not the caller's.
  if (telemetry_off)
    if (OrtStatus* st = api->DisableTelemetryEvents(env)) api->ReleaseStatus(st);
  OrtMemoryInfo* cpu = nullptr;
  if (OrtStatus* st = api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &cpu)) {
    std::string msg = api->GetErrorMessage(st);
    api->ReleaseStatus(st);
    throw Error(ErrorCode::OrtFailure, "ONNX Runtime CreateCpuMemoryInfo failed: " + msg);
  }
  OrtRuntimeInfo info;
  info.library_path = path;
  info.version = version;
  info.api_version = ORT_API_VERSION;
  char** names = nullptr;
  int count = 0;
  if (OrtStatus* st = api->GetAvailableProviders(&names, &count)) {
    api->ReleaseStatus(st);
  } else {
    for (int i = 0; i < count; ++i) {
      const std::string missing = missing_provider_library(path, names[i]);
      if (missing.empty()) info.providers.emplace_back(names[i]);
      else info.providers_without_library.emplace_back(names[i], missing);
    }
    if (OrtStatus* st2 = api->ReleaseAvailableProviders(names, count)) api->ReleaseStatus(st2);
  }
  r.handle = h;
  r.api = api;
  r.env = env;
  r.cpu = cpu;
  r.info = info;
  return info;
}

const OrtRuntimeInfo* ort_loaded_info() {
  Runtime& r = runtime();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.api ? &r.info : nullptr;
}

bool ort_test_hooks_compiled() {
#ifdef BRAINLATENT_TEST_HOOKS
  return true;
#else
  return false;
#endif
}

bool ort_is_loaded() {
  Runtime& r = runtime();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.api != nullptr;
}

namespace ort {

const OrtApi& api() {
  const OrtApi* a = runtime().api;
  if (!a) throw Error(ErrorCode::BackendUnavailable, "ONNX Runtime is not loaded (call ort_load first)");
  return *a;
}

OrtEnv* env() {
  api();
  return runtime().env;
}

const OrtMemoryInfo* cpu_memory() {
  api();
  return runtime().cpu;
}

void check(OrtStatus* st, const std::string& what) {
  if (!st) return;
  const std::string msg = api().GetErrorMessage(st);
  api().ReleaseStatus(st);
  throw Error(ErrorCode::OrtFailure, what + ": " + msg);
}

const char* element_type_name(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "float64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return "bool";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bfloat16";
    default: return "other";
  }
}

std::string TensorSig::describe() const {
  std::ostringstream o;
  o << name << ' ' << element_type_name(type) << " [";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) o << ", ";
    if (shape[i] >= 0) o << shape[i];
    else o << (dim_names[i].empty() ? "?" : dim_names[i]);
  }
  o << ']';
  return o.str();
}

namespace {

std::vector<TensorSig> read_signature(OrtSession* s, bool inputs) {
  const OrtApi& a = api();
  OrtAllocator* alloc = nullptr;
  check(a.GetAllocatorWithDefaultOptions(&alloc), "GetAllocatorWithDefaultOptions");
  std::size_t n = 0;
  check(inputs ? a.SessionGetInputCount(s, &n) : a.SessionGetOutputCount(s, &n), "SessionGet*Count");
  std::vector<TensorSig> sigs;
  for (std::size_t i = 0; i < n; ++i) {
    TensorSig sig;
    char* name = nullptr;
    check(inputs ? a.SessionGetInputName(s, i, alloc, &name) : a.SessionGetOutputName(s, i, alloc, &name),
          "SessionGet*Name");
    sig.name = name;
    check(a.AllocatorFree(alloc, name), "AllocatorFree");
    OrtTypeInfo* ti = nullptr;
    check(inputs ? a.SessionGetInputTypeInfo(s, i, &ti) : a.SessionGetOutputTypeInfo(s, i, &ti), "SessionGet*TypeInfo");
    const OrtTensorTypeAndShapeInfo* tsi = nullptr;
    OrtStatus* st = a.CastTypeInfoToTensorInfo(ti, &tsi);
    if (!st && tsi) {
      check(a.GetTensorElementType(tsi, &sig.type), "GetTensorElementType");
      std::size_t rank = 0;
      check(a.GetDimensionsCount(tsi, &rank), "GetDimensionsCount");
      sig.shape.resize(rank);
      std::vector<const char*> sym(rank, nullptr);
      check(a.GetDimensions(tsi, sig.shape.data(), rank), "GetDimensions");
      check(a.GetSymbolicDimensions(tsi, sym.data(), rank), "GetSymbolicDimensions");
      for (std::size_t d = 0; d < rank; ++d) sig.dim_names.emplace_back(sym[d] ? sym[d] : "");
    }
    if (st) a.ReleaseStatus(st);
    a.ReleaseTypeInfo(ti);
    sigs.push_back(std::move(sig));
  }
  return sigs;
}

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// What is wrong when ONNX Runtime refuses a tensor's external data, in words, or "" for any other failure. Two
// places refuse it, with messages seen from 1.30: ONNX Runtime itself, for the graph's initializers (status FAIL:
// "Absolute path not allowed for external data location", "External data path escapes model directory. …",
// "… for model loaded from bytes escapes working directory", "External data location cannot be empty",
// "TensorProto external data has duplicate 'location' entries"), and onnx's checker, which it runs on the tensors
// of nodes and subgraphs (a Constant's value, an If branch's or Loop body's initializer) and whose refusal comes
// as an invalid graph: "Location of external TensorProto ( tensor name: w) should be a relative path, but it is an
// absolute path: …" or "… should not be empty.", "Data of TensorProto ( tensor name: w) should be file inside '…',
// but '../w.bin' points outside the directory.", "… should be stored in …/w.bin, but it is a symbolic link." or
// "…, but it is not regular file." (missing). Reported as a model that is truncated or corrupt, these misled. A
// missing file of an initializer ("External data path does not exist") keeps ONNX Runtime's own plain message.
std::string external_data_problem(const std::string& msg) {
  const bool checker = has(msg, "TensorProto ( tensor name:");
  if (!checker && !has(msg, "xternal data")) return "";
  if (has(msg, "duplicate 'location'"))
    return "a tensor names more than one 'location' for its external data (a tensor's external data has one)";
  if (checker && has(msg, "but it is a symbolic link"))
    return "a tensor's external data file is a symbolic link, which ONNX's checker refuses for the tensors of nodes and "
           "subgraphs (a Constant's value, an If branch's or a Loop body's initializer) wherever it leads: copy the "
           "file in place of the link (`cp -L`)";
  if (checker && has(msg, "is not regular file"))
    return "a tensor's external data file is missing (or is not a regular file): put it in the model's folder, "
           "where its location names it";
  if ((checker && (has(msg, "points outside the directory") || has(msg, "should be a relative path") ||
                   has(msg, "should not be empty"))) ||
      has(msg, "Absolute path not allowed for external data") || has(msg, "External data path escapes") ||
      has(msg, "escapes working directory") || has(msg, "resolves outside model directory") ||
      has(msg, "External data location cannot be empty") || has(msg, "Empty external data path"))
    return "a tensor's external data lies outside the model's folder (its location is absolute, empty or climbs out "
           "with '..', or a symbolic link leads out of the folder): ONNX external data must be a file in the "
           "model's folder, named relative to it; copy the file there (`cp -L` for a link) and name it so";
  return "";
}

// A number after `key` in ONNX Runtime's message ("given file_length: 1000"), or -1.
long long number_after(const std::string& msg, const std::string& key) {
  const std::size_t at = msg.find(key);
  if (at == std::string::npos) return -1;
  std::size_t i = at + key.size();
  while (i < msg.size() && msg[i] == ' ') ++i;
  long long n = -1;
  for (; i < msg.size() && std::isdigit(static_cast<unsigned char>(msg[i])); ++i) n = (n < 0 ? 0 : n * 10) + (msg[i] - '0');
  return n;
}

}  // namespace

// ONNX Runtime's refusal of a tensor whose external data lies past the end of its file (seen from 1.30: "External
// initializer: w offset: 4096 size to read: 16 given file_length: 8 are out of bounds or can not be read in full."),
// in words naming the tensor and, among `files` (location, size), those of the size it was given; "" for any other
// failure. (A backstop: the caller's reading of the graph refuses a short file first, short_file_message.)
std::string short_file_problem(const std::string& msg, const std::vector<std::pair<std::string, std::uint64_t>>& files) {
  if (!has(msg, "out of bounds or can not be read in full")) return "";
  std::string tensor;
  const std::string key = "External initializer: ";
  if (const std::size_t at = msg.find(key); at != std::string::npos) {
    // (up to its " offset: ", not the first space: a name may hold spaces)
    const std::size_t end = msg.find(" offset:", at + key.size());
    tensor = msg.substr(at + key.size(), end == std::string::npos ? std::string::npos : end - at - key.size());
  }
  const long long length = number_after(msg, "file_length:");
  std::string named;
  for (const auto& [location, size] : files)
    if (length >= 0 && size == static_cast<std::uint64_t>(length)) named += (named.empty() ? "" : " or ") + ("'" + location + "'");
  return (tensor.empty() ? std::string("a tensor") : "tensor '" + tensor + "'") + " needs bytes past the end of its external data file" +
         (named.empty() ? std::string() : " " + named) + (length >= 0 ? ", which has " + std::to_string(length) + " bytes" : std::string()) +
         " (truncated or the wrong file): copy the model's files again, replacing a file by renaming a complete copy over it";
}

namespace {

#ifdef BRAINLATENT_TEST_HOOKS
// Test builds only (CMake option BRAINLATENT_TEST_HOOKS, which the checkout's build turns on for ctest and vitest;
// the package's build has none of this, nor reads these variables). Around ONNX Runtime's session creation:
//   BRAINLATENT_TEST_FLIP_LINK=<a symbolic link>, BRAINLATENT_TEST_FLIP_TO=<a target>: the link leads to the target
//     while ONNX Runtime creates the session and is put back right after (each replaced whole, by a rename): a link
//     flipped out of a service's root and back during the load, which a recheck after it cannot see;
//   BRAINLATENT_TEST_TRUNCATE=<a file>: the file is truncated to nothing just before (an operator's `cp` over a
//     model's file while it loads, after the engine mapped it).
// They act only when BRAINLATENT_TEST_HOOKS=1 is set as well (the tests set it): a checkout's build deployed as a
// service (`git clone && npm ci`) has them compiled in, and a stray variable of these alone must do nothing there.
// (tests/test_checked_file.cpp, test/sd/modelRootsOrtLoad.test.ts). Unset, nothing happens.
class TestHooks {
 public:
  TestHooks() {
    const char* enabled = std::getenv("BRAINLATENT_TEST_HOOKS");
    if (!enabled || std::string(enabled) != "1") return;
    const char* cut = std::getenv("BRAINLATENT_TEST_TRUNCATE");
    if (cut && *cut) (void)::truncate(cut, 0);
    const char* link = std::getenv("BRAINLATENT_TEST_FLIP_LINK");
    const char* to = std::getenv("BRAINLATENT_TEST_FLIP_TO");
    if (!link || !*link || !to || !*to) return;
    char buf[4096];
    const ssize_t n = ::readlink(link, buf, sizeof buf - 1);
    if (n <= 0) return;
    was_.assign(buf, static_cast<std::size_t>(n));
    link_ = link;
    replace(link_, to);
  }
  ~TestHooks() {
    if (!link_.empty()) replace(link_, was_);
  }
  TestHooks(const TestHooks&) = delete;
  TestHooks& operator=(const TestHooks&) = delete;

 private:
  static void replace(const std::string& link, const std::string& target) {
    const std::string tmp = link + ".flipping";
    ::unlink(tmp.c_str());
    if (::symlink(target.c_str(), tmp.c_str()) == 0) ::rename(tmp.c_str(), link.c_str());
  }
  std::string link_, was_;
};
#endif

}  // namespace

Session::Session(const std::string& path, const OrtSessionConfig& c) : path_(path) {
  open(c, [&](OrtSessionOptions* so) { return api().CreateSession(env(), path.c_str(), so, &session_); });
}

Session::Session(const void* bytes, std::size_t size, const std::string& label, const std::string& external_data_folder,
                 const OrtSessionConfig& c)
    : path_(label) {
  if (external_data_folder.empty())
    throw Error(ErrorCode::InvalidArgument,
                label + ": a model loaded from memory needs the folder of its external weights (without one ONNX Runtime "
                        "looks in the working directory)");
  open(c, [&](OrtSessionOptions* so) -> OrtStatus* {
    // kOrtSessionOptionsModelExternalInitializersFileFolderPath (onnxruntime_session_options_config_keys.h, not among
    // the vendored headers). ONNX Runtime resolves a model's external data against the model's folder; a model from
    // bytes has none, and with this entry InferenceSession::Load(model_data, len) takes <folder>/virtual_model.onnx
    // as the model's location, so "weights.pb" is <folder>/weights.pb and passes the check that it lies inside the
    // model's folder (tensorprotoutils.cc ValidateExternalDataPath). The bytes are the graph only when the weights
    // are external: ORT parses them into its own ModelProto during the call and keeps no pointer to them, and the
    // weights are read (memory-mapped on the CPU) from the file where they are.
    if (OrtStatus* st = api().AddSessionConfigEntry(so, "session.model_external_initializers_file_folder_path",
                                                    external_data_folder.c_str()))
      return st;
    return api().CreateSessionFromArray(env(), bytes, size, so, &session_);
  });
}

Session::Session(const void* bytes, std::size_t size, const std::string& label, const std::vector<CheckedFile>& files,
                 const OrtSessionConfig& c)
    : path_(label) {
  // (since API 18; ort_load asks for API ORT_API_VERSION, 29, so a runtime loaded here has it)
  static_assert(ORT_API_VERSION >= 18, "AddExternalInitializersFromFilesInMemory needs ONNX Runtime API 18");
  if (!api().AddExternalInitializersFromFilesInMemory)
    throw Error(ErrorCode::BackendUnavailable, "ONNX Runtime " + runtime().info.version +
                                                   " cannot take a model's external data from memory (API 18, ONNX Runtime 1.18, needed)");
  // each file opened once, held to the file checked, and mapped: the check and the read are of one descriptor
  std::vector<CheckedFileMap> maps;
  std::vector<const char*> names;
  std::vector<char*> buffers;
  std::vector<std::size_t> lengths;
  maps.reserve(files.size());
  for (const auto& f : files) {
    maps.push_back(CheckedFileMap::open(f, label));
    file_sizes_.emplace_back(f.location, maps.back().size());
    names.push_back(f.location.c_str());
    buffers.push_back(maps.back().data());
    lengths.push_back(maps.back().size());
  }
  // ONNX Runtime's folder for external data: an empty one of our own, so that nothing is read by path (ONNX Runtime
  // 1.30 serves graph initializers and Constant values from memory, but reads a subgraph's tensor from the folder:
  // there it finds nothing, and the load fails rather than read a file that was not checked)
  std::string folder = (std::filesystem::temp_directory_path() / "bl-ort-no-files-XXXXXX").string();
  if (!::mkdtemp(folder.data()))
    throw Error(ErrorCode::InvalidArgument, label + ": cannot make an empty folder for ONNX Runtime (" + std::strerror(errno) + ")");
  struct Remove {
    std::string dir;
    ~Remove() { ::rmdir(dir.c_str()); }
  } remove_folder{folder};
  try {
    open(c, [&](OrtSessionOptions* so) -> OrtStatus* {
      if (OrtStatus* st = api().AddSessionConfigEntry(so, "session.model_external_initializers_file_folder_path", folder.c_str()))
        return st;
      if (!files.empty())
        if (OrtStatus* st = api().AddExternalInitializersFromFilesInMemory(so, names.data(), buffers.data(), lengths.data(), files.size()))
          return st;
      return api().CreateSessionFromArray(env(), bytes, size, so, &session_);
    });
  } catch (const Error& e) {
    // ONNX Runtime looked for a file in the empty folder: a tensor it does not take from memory (a subgraph's: an If
    // branch's, a Loop or Scan body's initializer) or a location not among `files`
    std::string msg = e.what();
    if (msg.find(folder) == std::string::npos) throw;
    const std::string own = "cannot load " + label + ": ";
    if (msg.rfind(own, 0) == 0) msg.erase(0, own.size());
    throw Error(ErrorCode::InvalidModel,
                "cannot load " + label + ": a tensor keeps its data in an external file that ONNX Runtime would open by its path "
                "(a subgraph's tensor, an If branch's or a Loop or Scan body's initializer, which ONNX Runtime does not take from "
                "the files the engine opened and checked): a service loads a model's external data only from the files it "
                "checked. Keep such tensors inside model.onnx (" + msg + ")");
  }
  // A file cut short or rewritten while ONNX Runtime copied it: its bytes past the cut were read as zeros (the
  // maps' SIGBUS guard, mapping_guard.h), so the session holds weights that are not the file's; refused.
  for (const auto& m : maps) {
    try {
      m.check_unchanged(label);
    } catch (...) {
      api().ReleaseSession(session_);
      session_ = nullptr;
      throw;
    }
  }
  // ONNX Runtime copied the tensors during the call (onnxruntime_c_api.h: "The data will be copied into the graph
  // since TensorProto can't refer to the user provided buffers", "The buffer can be freed after session
  // creation"): the session never reads the maps again, so they are released here, and a file truncated after
  // the load can neither crash nor change a session (test_checked_file runs a session after its files changed).
}

void Session::open(const OrtSessionConfig& c, const std::function<OrtStatus*(OrtSessionOptions*)>& create) {
  const OrtApi& a = api();
  OrtSessionOptions* so = nullptr;
  check(a.CreateSessionOptions(&so), "CreateSessionOptions");
  struct Guard {
    const OrtApi& a;
    OrtSessionOptions* so;
    ~Guard() { a.ReleaseSessionOptions(so); }
  } guard{a, so};
  if (c.intra_threads > 0) check(a.SetIntraOpNumThreads(so, c.intra_threads), "SetIntraOpNumThreads");
  if (c.inter_threads > 0) check(a.SetInterOpNumThreads(so, c.inter_threads), "SetInterOpNumThreads");
  GraphOptimizationLevel level = ORT_ENABLE_ALL;
  if (c.optimization == "disable") level = ORT_DISABLE_ALL;
  else if (c.optimization == "basic") level = ORT_ENABLE_BASIC;
  else if (c.optimization == "extended") level = ORT_ENABLE_EXTENDED;
  else if (c.optimization != "all")
    throw Error(ErrorCode::InvalidArgument, "unknown graph optimization level '" + c.optimization +
                                                "': expected disable, basic, extended or all");
  check(a.SetSessionGraphOptimizationLevel(so, level), "SetSessionGraphOptimizationLevel");
  check(a.AddSessionConfigEntry(so, "session.intra_op.allow_spinning", c.spinning ? "1" : "0"), "AddSessionConfigEntry");
  check(c.memory_arena ? a.EnableCpuMemArena(so) : a.DisableCpuMemArena(so), "CpuMemArena");
  check(c.memory_pattern ? a.EnableMemPattern(so) : a.DisableMemPattern(so), "MemPattern");
  check(a.AddSessionConfigEntry(so, "session.disable_prepacking", c.prepacking ? "0" : "1"), "AddSessionConfigEntry");
  check(a.AddSessionConfigEntry(so, "session.use_device_allocator_for_initializers", c.initializers_malloc ? "1" : "0"),
        "AddSessionConfigEntry");
  route_ = append_provider(so, c);
  on_cpu_ = route_ == "cpu";
  device_id_ = c.device_id;
  OrtStatus* created = nullptr;
  {
#ifdef BRAINLATENT_TEST_HOOKS
    const TestHooks hooks;
#endif
    created = create(so);
  }
  if (OrtStatus* st = created) {
    const OrtErrorCode code = a.GetErrorCode(st);
    const std::string msg = a.GetErrorMessage(st);
    // a tensor's external data refused (outside the folder, a link, two locations): the model's fault, said so
    const std::string problem = external_data_problem(msg);
    if (!problem.empty()) {
      a.ReleaseStatus(st);
      throw Error(ErrorCode::InvalidModel, "cannot load " + path_ + ": " + problem + " (ONNX Runtime: " + msg + ")");
    }
    // a tensor's external data past the end of its file: a truncated or wrong file, the model's fault too
    const std::string short_file = short_file_problem(msg, file_sizes_);
    if (!short_file.empty()) {
      a.ReleaseStatus(st);
      throw Error(ErrorCode::InvalidModel, "cannot load " + path_ + ": " + short_file + " (ONNX Runtime: " + msg + ")");
    }
    // ORT's own status codes for a file that is not a well-formed ONNX model: InvalidModel (a FormatError in TS)
    if (code == ORT_INVALID_PROTOBUF || code == ORT_INVALID_GRAPH) {
      a.ReleaseStatus(st);
      throw Error(ErrorCode::InvalidModel,
                  "cannot load " + path_ + ": not a valid ONNX model (" + msg +
                      "); expected an ONNX model file (a serialized onnx ModelProto, as torch.onnx or optimum export it) — "
                      "the file is truncated, corrupt or of another format: export or download it again");
    }
    check(st, "cannot load " + path_);
  }
  try {
    inputs_ = read_signature(session_, true);
    outputs_ = read_signature(session_, false);
  } catch (...) {
    a.ReleaseSession(session_);
    session_ = nullptr;
    throw;
  }
}

Session::~Session() {
  if (session_) api().ReleaseSession(session_);
}

const TensorSig* Session::input(const std::string& name) const {
  for (const auto& s : inputs_)
    if (s.name == name) return &s;
  return nullptr;
}

const TensorSig* Session::output(const std::string& name) const {
  for (const auto& s : outputs_)
    if (s.name == name) return &s;
  return nullptr;
}

std::string Session::describe() const {
  std::ostringstream o;
  o << "inputs: ";
  for (std::size_t i = 0; i < inputs_.size(); ++i) o << (i ? "; " : "") << inputs_[i].describe();
  o << " | outputs: ";
  for (std::size_t i = 0; i < outputs_.size(); ++i) o << (i ? "; " : "") << outputs_[i].describe();
  return o.str();
}

Value tensor_over(void* data, std::size_t bytes, const std::vector<std::int64_t>& shape, ONNXTensorElementDataType type) {
  OrtValue* v = nullptr;
  check(api().CreateTensorWithDataAsOrtValue(cpu_memory(), data, bytes, shape.data(), shape.size(), type, &v),
        "CreateTensorWithDataAsOrtValue");
  return Value(v);
}

Value tensor_over_cuda(void* data, std::size_t bytes, const std::vector<std::int64_t>& shape, ONNXTensorElementDataType type,
                       int device_id) {
  static std::mutex m;
  static std::map<int, OrtMemoryInfo*> infos;  // one per device, for the process's life
  OrtMemoryInfo* info = nullptr;
  {
    std::lock_guard<std::mutex> lock(m);
    OrtMemoryInfo*& slot = infos[device_id];
    if (!slot) check(api().CreateMemoryInfo("Cuda", OrtDeviceAllocator, device_id, OrtMemTypeDefault, &slot), "CreateMemoryInfo(Cuda)");
    info = slot;
  }
  OrtValue* v = nullptr;
  check(api().CreateTensorWithDataAsOrtValue(info, data, bytes, shape.data(), shape.size(), type, &v),
        "CreateTensorWithDataAsOrtValue (CUDA memory)");
  return Value(v);
}

std::vector<Value> run(const Session& s, const std::vector<const char*>& input_names,
                       const std::vector<const OrtValue*>& inputs, const std::vector<const char*>& output_names,
                       OrtRunOptions* run_options) {
  std::vector<OrtValue*> outs(output_names.size(), nullptr);
  check(api().Run(s.get(), run_options, input_names.data(), inputs.data(), inputs.size(), output_names.data(),
                  output_names.size(), outs.data()),
        "running " + s.path());
  std::vector<Value> result;
  for (OrtValue* v : outs) result.emplace_back(v);
  return result;
}

std::vector<std::int64_t> shape_of(const OrtValue* v) {
  const OrtApi& a = api();
  OrtTensorTypeAndShapeInfo* info = nullptr;
  check(a.GetTensorTypeAndShape(v, &info), "GetTensorTypeAndShape");
  std::size_t rank = 0;
  OrtStatus* st = a.GetDimensionsCount(info, &rank);
  std::vector<std::int64_t> shape(rank);
  if (!st) st = a.GetDimensions(info, shape.data(), rank);
  a.ReleaseTensorTypeAndShapeInfo(info);
  check(st, "GetDimensions");
  return shape;
}

Value float_input(const float* data, std::size_t count, const std::vector<std::int64_t>& shape, ONNXTensorElementDataType want,
                  std::vector<std::uint16_t>& scratch) {
  if (want != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16)
    return tensor_over(const_cast<float*>(data), count * sizeof(float), shape, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
  scratch.resize(count);
  floats_to_half(data, scratch.data(), count);
  return tensor_over(scratch.data(), count * sizeof(std::uint16_t), shape, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16);
}

const float* float_output(OrtValue* v, std::vector<float>& scratch) {
  const OrtApi& a = api();
  OrtTensorTypeAndShapeInfo* info = nullptr;
  check(a.GetTensorTypeAndShape(v, &info), "GetTensorTypeAndShape");
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::size_t count = 0;
  OrtStatus* st = a.GetTensorElementType(info, &type);
  if (!st) st = a.GetTensorShapeElementCount(info, &count);
  a.ReleaseTensorTypeAndShapeInfo(info);
  check(st, "GetTensorElementType");
  void* p = nullptr;
  check(a.GetTensorMutableData(v, &p), "GetTensorMutableData");
  if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) return static_cast<const float*>(p);
  if (type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16)
    throw Error(ErrorCode::OrtFailure, std::string("a model output is ") + element_type_name(type) + ", expected float32 or float16");
  scratch.resize(count);
  half_to_floats(static_cast<const std::uint16_t*>(p), scratch.data(), count);
  return scratch.data();
}

const float* float_data(OrtValue* v) {
  void* p = nullptr;
  check(api().GetTensorMutableData(v, &p), "GetTensorMutableData");
  return static_cast<const float*>(p);
}

}  // namespace ort
}  // namespace brainlatent
