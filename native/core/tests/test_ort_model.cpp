// OnnxModel::load_bytes: a model given as its serialized bytes, whose external weights are read from a folder
// (ONNX Runtime's session.model_external_initializers_file_folder_path). The U-Net with layers exposed is made so
// (ts/encoding/unetLayers.ts): a copy of model.onnx beside a symlink to weights.pb is refused by ONNX Runtime 1.30
// ("External data path escapes model directory"). A one-node model (y = x + w, w in w.bin) is written here by a
// minimal protobuf writer. Skips (exit 77) without an ONNX Runtime library.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "brainlatent/error.h"
#include "brainlatent/ort_model.h"
#include "onnx_test_models.h"
#include "sd_test_util.h"

using namespace brainlatent;

using sdtest::contains;
using sdtest::error_of;
using sdtest::exists;

using namespace onnxtest;

int main() {
  const char* env_lib = std::getenv("BRAINLATENT_ORT_LIB");
  const std::string lib = env_lib && *env_lib ? env_lib : BRAINLATENT_TEST_ORT_LIB;
  if (!exists(lib)) {
    std::printf("test_ort_model: SKIPPED, no ONNX Runtime library at %s (npm install, or set BRAINLATENT_ORT_LIB)\n", lib.c_str());
    return 77;
  }
  const auto info = ort_load(lib);
  std::printf("ONNX Runtime %s at %s\n", info.version.c_str(), lib.c_str());
  std::string tmpl = (std::filesystem::temp_directory_path() / "bl-ort-model-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::filesystem::path root = tmpl;
  const std::filesystem::path weights = root / "weights";  // the model's own folder: w.bin
  const std::filesystem::path copy = root / "copy";        // a folder without it
  std::filesystem::create_directories(weights);
  std::filesystem::create_directories(copy);
  write_file((weights / "w.bin").string(), floats({10, 20, 30, 40}));
  const std::string bytes = add_model("w.bin");
  write_file((weights / "model.onnx").string(), bytes);
  OrtSessionConfig c;
  c.intra_threads = 1;

  // From the file, as a reference: w.bin beside it.
  SD_CHECK((run_add(*OnnxModel::load((weights / "model.onnx").string(), lib, c)) == std::vector<float>{11, 22, 33, 44}));

  // From its bytes, the weights read from the folder given: the same values, the name given in path().
  {
    auto m = OnnxModel::load_bytes(bytes.data(), bytes.size(), "add (in memory)", weights.string(), lib, c);
    SD_CHECK(m->path() == "add (in memory)");
    SD_CHECK((run_add(*m) == std::vector<float>{11, 22, 33, 44}));
  }

  // A folder without the weights: ONNX Runtime's error, under the model's name, naming the file it looked for.
  std::string msg = error_of([&] { OnnxModel::load_bytes(bytes.data(), bytes.size(), "add (in memory)", copy.string(), lib, c); },
                             ErrorCode::OrtFailure);
  std::printf("weights not in the folder: %s\n", msg.c_str());
  SD_CHECK(contains(msg, "cannot load add (in memory)"));
  SD_CHECK(contains(msg, "w.bin"));

  // No folder: refused (ONNX Runtime would look in the working directory).
  msg = error_of([&] { OnnxModel::load_bytes(bytes.data(), bytes.size(), "add (in memory)", "", lib, c); }, ErrorCode::InvalidArgument);
  SD_CHECK(contains(msg, "needs the folder of its external weights"));
  SD_CHECK_THROWS(OnnxModel::load_bytes(nullptr, 0, "nothing", weights.string(), lib, c), ErrorCode::InvalidArgument);

  // What the engine no longer does: a copy of the model whose external file is a symlink to the original's. ONNX
  // Runtime 1.30 refuses it (the symlink resolves outside the copy's folder); reported, not checked (ORT's policy).
  write_file((copy / "model.onnx").string(), bytes);
  std::filesystem::create_symlink(weights / "w.bin", copy / "w.bin");
  try {
    OnnxModel::load((copy / "model.onnx").string(), lib, c);
    std::printf("a copy with its weights symlinked: loads on this ONNX Runtime\n");
  } catch (const Error& e) {
    std::printf("a copy with its weights symlinked: %s\n", e.what());
  }

  // External data ONNX Runtime refuses: said so, not "truncated, corrupt or of another format" (which onnx's
  // checker's refusals of a subgraph's tensor, an invalid graph, were reported as), as InvalidModel.
  {
    const std::filesystem::path m = root / "refused";
    std::filesystem::create_directories(m / "sub");
    write_file((root / "w.bin").string(), floats({10, 20, 30, 40}));
    write_file((m / "w.bin").string(), floats({10, 20, 30, 40}));
    std::filesystem::create_symlink(m / "w.bin", m / "link.bin");
    using Entries = std::vector<std::pair<std::string, std::string>>;
    const auto loc = [](const std::string& l) { return Entries{{"location", l}, {"length", "16"}}; };
    struct Case {
      const char* name;
      std::string bytes;
      const char* says;
    };
    const Case cases[] = {
        {"if-dotdot", if_model(loc("../w.bin")), "lies outside the model's folder"},
        {"if-absolute", if_model(loc((root / "w.bin").string())), "lies outside the model's folder"},
        {"if-link", if_model(loc("link.bin")), "is a symbolic link"},
        {"if-missing", if_model(loc("nope.bin")), "is missing"},
        {"if-two", if_model(Entries{{"location", "w.bin"}, {"location", "w.bin"}, {"length", "16"}}), "more than one 'location'"},
        {"add-dotdot", add_model("../w.bin"), "lies outside the model's folder"},
        {"add-absolute", add_model((root / "w.bin").string()), "lies outside the model's folder"},
    };
    for (const auto& k : cases) {
      const std::string path = (m / (std::string(k.name) + ".onnx")).string();
      write_file(path, k.bytes);
      const std::string e = error_of([&] { OnnxModel::load(path, lib, c); }, ErrorCode::InvalidModel);
      std::printf("%s: %s\n", k.name, e.c_str());
      SD_CHECK(contains(e, "cannot load " + path + ": "));
      SD_CHECK(contains(e, k.says));
      SD_CHECK(!contains(e, "truncated, corrupt"));
      // from bytes, with the folder given: the same
      const std::string b = error_of([&] { OnnxModel::load_bytes(k.bytes.data(), k.bytes.size(), k.name, m.string(), lib, c); },
                                     ErrorCode::InvalidModel);
      SD_CHECK(contains(b, k.says));
    }
    // the branch model itself, its data in the folder: loads (the cases above fail for their location only)
    write_file((m / "if-ok.onnx").string(), if_model(loc("w.bin")));
    OnnxModel::load((m / "if-ok.onnx").string(), lib, c);
    // a model that is not ONNX: still "truncated, corrupt or of another format"
    write_file((m / "junk.onnx").string(), "\x0a\xff\xff\xff\xff\x0f not a model");
    SD_CHECK(contains(error_of([&] { OnnxModel::load((m / "junk.onnx").string(), lib, c); }, ErrorCode::InvalidModel), "truncated, corrupt"));
  }

  std::filesystem::remove_all(root);
  return sdtest::finish("test_ort_model");
}
