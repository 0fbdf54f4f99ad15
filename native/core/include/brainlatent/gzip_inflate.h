// Streaming gunzip on Intel's ISA-L (igzip), loaded at run time: a faster inflate than zlib's on the
// NIfTI volumes the readers stream (1.9× Debian's zlib in C; 1.3–1.8× Node's zlib through the readers' stream). Optional: where libisal.so.2 cannot be loaded, gzip_inflater_info()
// says why and the caller uses zlib instead.
//
// Semantics are gzip's (and Node's gunzip as the readers use it): every member is decompressed in
// turn, each member's CRC-32 and length are checked, and whatever follows the last member that does
// not start a new one (1f 8b 08) is left unread: the stream has ended.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace brainlatent::gzip {

struct InflaterInfo {
  bool available = false;
  std::string library;  // the file loaded (its real path), when available
  std::string version;  // from the file name (libisal.so.2.0.30 → "2.30"), or "" when it does not say
  std::string reason;   // why not, when unavailable
};

// Loads ISA-L once (BRAINLATENT_ISAL_LIB names the file; default libisal.so.2) and checks it.
const InflaterInfo& inflater_info();

struct StepResult {
  std::size_t consumed = 0;  // input bytes used
  std::size_t produced = 0;  // output bytes written
  bool ended = false;        // the last member has ended: no more output, the rest of the input is not gzip data
  // A failure: "data" (corrupt deflate data, a bad header, a CRC or length mismatch) or "truncated" (the
  // input ended inside a member). `message` says which, in zlib's words where zlib has them.
  std::string failure;
  std::string message;
  // The failure is one of ISA-L's three kinds of corrupt deflate data (an invalid block, code or distance), which
  // zlib tells apart more finely: `message` is ISA-L's kind in zlib's nearest words.
  bool coarse = false;
};

class Inflater {
 public:
  Inflater();  // BackendUnavailable when ISA-L is not loaded (inflater_info().reason)
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // Decompresses from `in` into `out` until the output is full, the input is used up, or the stream
  // ends. `input_ends` says no input follows this: a member still open then is a truncated file.
  // Input left unconsumed (consumed < in_len, not ended, no failure) must be passed again, followed by
  // more, on the next call: a member boundary needs 3 bytes to tell a new member from the end.
  // After a failure or the end, further calls produce nothing.
  StepResult step(const std::uint8_t* in, std::size_t in_len, std::uint8_t* out, std::size_t out_len, bool input_ends);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace brainlatent::gzip
