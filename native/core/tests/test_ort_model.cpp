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

// The w of add_model with external data entries `entries` (key, value), as a TensorProto.
Proto external_w(const std::string& name, const std::vector<std::pair<std::string, std::string>>& entries) {
  Proto w;
  w.num(1, 4).num(2, 1).bytes(8, name);  // dims, FLOAT, name
  for (const auto& [k, v] : entries) {
    Proto e;
    e.bytes(1, k).bytes(2, v);
    w.msg(13, e);  // external_data
  }
  w.num(14, 1);  // data_location EXTERNAL
  return w;
}

// y = Add(x, If(cond, then: wb, else: wb)), wb an initializer of each branch stored at `location`: a subgraph's
// tensor, which ONNX Runtime has onnx's checker look at (its refusals come as an invalid graph).
std::string if_model(const std::vector<std::pair<std::string, std::string>>& entries) {
  Proto cond_type, cond_tensor, cond_info;
  cond_tensor.num(1, 9);             // BOOL, scalar
  cond_type.msg(1, cond_tensor);
  cond_info.bytes(1, "cond").msg(2, cond_type);
  auto branch = [&](const std::string& out) {
    Proto id, g;
    id.bytes(1, "wb").bytes(2, out).bytes(4, "Identity");
    g.msg(1, id).bytes(2, out + "_g").msg(5, external_w("wb", entries)).msg(12, float_vector(out, 4));
    return g;
  };
  Proto then_attr, else_attr, if_node, add, graph, opset, model;
  then_attr.bytes(1, "then_branch").msg(6, branch("t")).num(20, 5);  // AttributeProto: name, g, type GRAPH
  else_attr.bytes(1, "else_branch").msg(6, branch("e")).num(20, 5);
  if_node.bytes(1, "cond").bytes(2, "w").bytes(3, "if").bytes(4, "If").msg(5, then_attr).msg(5, else_attr);
  add.bytes(1, "x").bytes(1, "w").bytes(2, "y").bytes(3, "add").bytes(4, "Add");
  graph.msg(1, if_node).msg(1, add).bytes(2, "g").msg(11, float_vector("x", 4)).msg(11, cond_info).msg(12, float_vector("y", 4));
  opset.bytes(1, "").num(2, 17);
  model.num(1, 8).msg(7, graph).msg(8, opset);
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
