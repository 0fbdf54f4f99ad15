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
#include "sd_test_util.h"

using namespace brainlatent;

using sdtest::contains;
using sdtest::error_of;
using sdtest::exists;

namespace {

// Protocol buffers wire format: varint (type 0) and length-delimited (type 2) fields.
struct Proto {
  std::string b;
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      b.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    b.push_back(static_cast<char>(v));
  }
  Proto& num(int field, std::uint64_t v) {
    varint(static_cast<std::uint64_t>(field) << 3);
    varint(v);
    return *this;
  }
  Proto& bytes(int field, const std::string& s) {
    varint((static_cast<std::uint64_t>(field) << 3) | 2);
    varint(s.size());
    b += s;
    return *this;
  }
  Proto& msg(int field, const Proto& m) { return bytes(field, m.b); }
};

// ValueInfoProto of a float tensor [n].
Proto float_vector(const std::string& name, int n) {
  Proto dim, shape, tensor, type, info;
  dim.num(1, n);                     // Dimension.dim_value
  shape.msg(1, dim);                 // TensorShapeProto.dim
  tensor.num(1, 1).msg(2, shape);    // TypeProto.Tensor: elem_type FLOAT, shape
  type.msg(1, tensor);               // TypeProto.tensor_type
  info.bytes(1, name).msg(2, type);  // ValueInfoProto: name, type
  return info;
}

// y = Add(x, w): x and y float [4], w float [4] stored in `location` (external data, offset 0).
std::string add_model(const std::string& location) {
  Proto node, w, loc, len, graph, opset, model;
  node.bytes(1, "x").bytes(1, "w").bytes(2, "y").bytes(3, "add").bytes(4, "Add");
  loc.bytes(1, "location").bytes(2, location);
  len.bytes(1, "length").bytes(2, "16");
  w.num(1, 4).num(2, 1).bytes(8, "w").msg(13, loc).msg(13, len).num(14, 1);  // dims, FLOAT, name, external_data, EXTERNAL
  graph.msg(1, node).bytes(2, "g").msg(5, w).msg(11, float_vector("x", 4)).msg(12, float_vector("y", 4));
  opset.bytes(1, "").num(2, 17);
  model.num(1, 8).msg(7, graph).msg(8, opset);  // ir_version 8, graph, opset_import
  return model.b;
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string floats(std::vector<float> v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)); }

std::vector<float> run_add(const OnnxModel& m) {
  const float x[4] = {1, 2, 3, 4};
  OnnxInput in{"x", "float32", x, {4}};
  const auto out = m.run({in}, {"y"});
  return std::vector<float>(out[0].data, out[0].data + out[0].count);
}

}  // namespace

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

  std::filesystem::remove_all(root);
  return sdtest::finish("test_ort_model");
}
