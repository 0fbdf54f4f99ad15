// A gzip file gunzipped by the engine from a file descriptor (gzip_inflate.h's Inflater, fed by pread), so
// that its reader hands over only output buffers: no input pieces through JavaScript, no copies of them.
// The descriptor is the caller's: it stays open while a step runs and is never closed here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "brainlatent/gzip_inflate.h"

namespace brainlatent::gzip {

class FileInflater {
 public:
  // Reads the file from its start up to `end` bytes (or its end, whichever is first), `read_bytes` per read.
  // BackendUnavailable when ISA-L is not loaded.
  FileInflater(int fd, std::uint64_t end, std::size_t read_bytes = std::size_t{1} << 20);

  // Decompresses into `out` until it is full, the stream ends or it fails (StepResult; `consumed` counts this
  // step's file bytes). A read that fails is the failure "read", with its errno in `read_errno`. After a failure
  // or the end, further calls produce nothing.
  StepResult step(std::uint8_t* out, std::size_t out_len);

  int read_errno() const { return read_errno_; }

 private:
  // Moves the input left over to the front and reads more after it; false on a read error.
  bool refill();

  Inflater inflater_;
  int fd_;
  std::uint64_t end_, pos_ = 0;
  std::size_t read_bytes_;
  std::vector<std::uint8_t> in_;
  std::size_t in_pos_ = 0, in_len_ = 0;
  bool file_done_ = false;
  int read_errno_ = 0;
};

}  // namespace brainlatent::gzip
