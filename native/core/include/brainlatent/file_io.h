// Writing large outputs (models, predictions) through to the disk without filling the page cache.
//
// A 64 MB model written with one write() takes 64 MB of fresh page cache; on a virtual machine whose
// free memory has been handed back to the host, first touching it costs ~2 ms per MiB (0.14 s of the
// medium ridge model's 0.19 s write, measured; the same write into recently freed memory takes
// 14 ms). Written in 8 MiB pieces, each flushed (sync_file_range) and dropped from the cache
// (POSIX_FADV_DONTNEED) before the next, the same pages are reused: 33–45 ms in all, fsync included.
// Elsewhere (or where the file system refuses the flush) the pieces are plain writes.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace brainlatent {

struct ConstBytes {
  const void* data;
  std::size_t size;
};

// What write_through did: bytes written, and on failure the errno and its text (nothing thrown, so
// that the caller names the file and keeps the errno's code).
struct WriteOutcome {
  std::uint64_t written = 0;
  int error = 0;  // errno, 0 on success
  std::string message;
};

// Writes the pieces one after another at fd's current position (which it advances, like write()),
// through to the disk in kWriteThroughChunk pieces. The caller still fsyncs (metadata, the disk's
// cache); that is then quick. Stops with ECANCELED when *cancel is set between pieces.
constexpr std::size_t kWriteThroughChunk = std::size_t(8) << 20;
WriteOutcome write_through(int fd, const std::vector<ConstBytes>& pieces, const std::atomic<bool>* cancel = nullptr);

}  // namespace brainlatent
