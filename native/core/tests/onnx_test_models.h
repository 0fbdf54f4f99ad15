// Tiny ONNX models written by a minimal protobuf writer, for the ONNX Runtime ctests (test_ort_model,
// test_checked_file): y = x + w with w in an external file, and the same through an If whose branches hold w.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "brainlatent/ort_model.h"

namespace onnxtest {

using brainlatent::OnnxInput;
using brainlatent::OnnxModel;

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
inline Proto float_vector(const std::string& name, int n) {
  Proto dim, shape, tensor, type, info;
  dim.num(1, n);                     // Dimension.dim_value
  shape.msg(1, dim);                 // TensorShapeProto.dim
  tensor.num(1, 1).msg(2, shape);    // TypeProto.Tensor: elem_type FLOAT, shape
  type.msg(1, tensor);               // TypeProto.tensor_type
  info.bytes(1, name).msg(2, type);  // ValueInfoProto: name, type
  return info;
}

// y = Add(x, w): x and y float [4], w float [4] stored in `location` (external data, offset 0).
inline std::string add_model(const std::string& location) {
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
inline Proto external_w(const std::string& name, const std::vector<std::pair<std::string, std::string>>& entries) {
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
inline std::string if_model(const std::vector<std::pair<std::string, std::string>>& entries) {
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

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline std::string floats(std::vector<float> v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)); }

inline std::vector<float> run_add(const OnnxModel& m) {
  const float x[4] = {1, 2, 3, 4};
  OnnxInput in{"x", "float32", x, {4}};
  const auto out = m.run({in}, {"y"});
  return std::vector<float>(out[0].data, out[0].data + out[0].count);
}

}  // namespace onnxtest
