// A model file opened by the engine and held to the file its caller checked, then mapped.
//
// Under a service's model roots (ts/sd/modelRoots.ts) every model file is checked, links followed one by one, to
// lie inside the roots, and the check yields the file's device and inode. ONNX Runtime opening the file again by
// its path would read whatever a link in that path leads to by then (a link flipped outside and back while it
// reads is not seen by a later recheck). Instead the engine opens the path once, compares that descriptor's fstat
// with the device and inode checked (the check and the read are then of one file), and maps that descriptor:
// ONNX Runtime is handed the mapped bytes and never opens a path (ort_api.h, Session from checked files).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "brainlatent/mapping_guard.h"

namespace brainlatent {

// The bytes of an external data file one tensor of the model needs: its external data entries' offset and length.
struct TensorBytes {
  std::string tensor;  // its name; "" = an unnamed one (a Constant node's value moved to external data)
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::string where;   // where an unnamed one is ("the 'value' attribute of Constant node 'c'"), for messages
};

// A file as its caller checked it.
struct CheckedFile {
  std::string location;  // the name the model's external data entries give it (ONNX Runtime's in-memory key)
  std::string path;      // where to open it (its real path, as checked)
  std::uint64_t dev = 0;  // its device and inode when it was checked
  std::uint64_t ino = 0;
  std::string what;      // the file in messages ("tensor 'w''s external data 'w.bin', which"); "" = location
  // The tensor that needs its furthest bytes (the caller's reading of the graph): a file shorter is refused when it
  // is opened, naming that tensor and the file, where ONNX Runtime's own refusal is an internal-looking failure.
  TensorBytes furthest;
};

// The checked file mapped read-only (MAP_PRIVATE): pages shared with the page cache, no copy. Move-only; unmaps
// on destruction. The mapping is guarded (mapping_guard.h): the file truncated while its bytes are read makes
// the bytes past its new end read as zeros, not a SIGBUS that ends the process, and check_unchanged() refuses them.
class CheckedFileMap {
 public:
  // Opens f.path (without following a FIFO's or device's open: O_NONBLOCK, then a regular file is required),
  // compares the descriptor's device and inode with f's, and maps it. Throws InvalidModel, naming `model` and
  // the file, when the file opened is not the file checked (a link in its path replaced since the check: the
  // same words as modelRoots.ts), InvalidArgument when it cannot be opened or mapped.
  static CheckedFileMap open(const CheckedFile& f, const std::string& model);
  CheckedFileMap() = default;
  CheckedFileMap(CheckedFileMap&& o) noexcept;
  CheckedFileMap& operator=(CheckedFileMap&& o) noexcept;
  CheckedFileMap(const CheckedFileMap&) = delete;
  CheckedFileMap& operator=(const CheckedFileMap&) = delete;
  ~CheckedFileMap();
  // The file's bytes (a valid pointer for an empty file too) and their count.
  char* data() const { return size_ > 0 ? static_cast<char*>(base_) : const_cast<char*>(&empty_); }
  std::size_t size() const { return size_; }
  // After the bytes were read (ONNX Runtime's session created from them): throws InvalidModel, naming `model`
  // and the file (truncated_file_message), when the file was cut short while mapped (a page past its end was
  // touched) or its size, modification time or change time differ from the open's (rewritten in place, by `cp`
  // over it, `cp -p` too). A bus error in the mapping of a file whose size and times are unchanged (a disk's or
  // NFS's read error) is refused as "a read error, or the file was cut and restored".
  void check_unchanged(const std::string& model) const;

 private:
  void release();
  void* base_ = nullptr;
  std::size_t size_ = 0;
  char empty_ = 0;
  int fd_ = -1;  // kept open: its fstat after the read is the file's, whatever its path leads to by then
  std::int64_t mtime_ns_ = 0, ctime_ns_ = 0;
  std::string what_, path_;
  MappingGuard guard_;  // (released before the range is unmapped: release())
};

// The words of a file that is not the file checked (modelRoots.ts changedFile's): "<model>: <what> changed between
// its check and its reading (…)".
std::string changed_file_message(const std::string& model, const std::string& what);

// The words of a file that changed while the engine read it: "<model>: <what> changed while it was being loaded
// (<how>: truncated, rewritten); the model was not loaded (…<path>…)"; with <how> "a read error, or the file was cut
// and restored" (a bus error, the file's size and times unchanged), "could not be read" instead of "changed".
std::string truncated_file_message(const std::string& model, const std::string& what, const std::string& path, const std::string& how);

// The words of an external data file too short for a tensor of the model (onnxWeightRefs.ts shortFileMessage's):
// "<model>: tensor '<tensor>' needs bytes <offset>..<offset+length> of '<location>', which has <size> bytes
// (truncated or the wrong file)…".
std::string short_file_message(const std::string& model, const TensorBytes& t, const std::string& location, std::uint64_t size);

}  // namespace brainlatent
