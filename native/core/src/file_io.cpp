#include "brainlatent/file_io.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#ifndef _WIN32
#include <fcntl.h>
#include <unistd.h>
#endif

namespace brainlatent {

#ifndef _WIN32
namespace {

// Writes [p, p + n) at the current position, retrying partial writes and EINTR.
int write_all(int fd, const char* p, std::size_t n, std::uint64_t& written) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, std::min<std::size_t>(n, std::size_t(1) << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w;
    n -= static_cast<std::size_t>(w);
    written += static_cast<std::uint64_t>(w);
  }
  return 0;
}

}  // namespace
#endif

WriteOutcome write_through(int fd, const std::vector<ConstBytes>& pieces, const std::atomic<bool>* cancel) {
  WriteOutcome out;
#ifdef _WIN32
  (void)fd, (void)pieces, (void)cancel;
  out.error = ENOSYS;
  out.message = "write_through is not available on Windows";
  return out;
#else
  auto fail = [&](int e) {
    out.error = e;
    out.message = std::strerror(e);
    return out;
  };
  const off_t start = ::lseek(fd, 0, SEEK_CUR);
  if (start < 0) return fail(errno);
  // [start, flushed) is on the disk and out of the page cache; [flushed, started) is being written
  // back. Chunk k's write-back starts as soon as it is written, and the caller waits only for chunk
  // k − 1's: the copy of the next chunk overlaps the disk's work on this one.
  off_t flushed = start, started = start;
#if defined(__linux__)
  bool flush = true;  // off once the file system refuses sync_file_range (EINVAL, ESPIPE, ENOSYS)
  auto refused = [&] { return errno == EINVAL || errno == ESPIPE || errno == ENOSYS || errno == EOPNOTSUPP; };
#endif
  // Starts the write-back of [started, end).
  auto start_to = [&](off_t end) -> int {
#if defined(__linux__)
    if (flush && end > started && ::sync_file_range(fd, started, end - started, SYNC_FILE_RANGE_WRITE) != 0) {
      if (refused()) flush = false;
      else return errno;
    }
#endif
    started = std::max(started, end);
    return 0;
  };
  // Waits for [flushed, end) to reach the disk and drops it from the page cache.
  auto flush_to = [&](off_t end) -> int {
#if defined(__linux__)
    if (flush && end > flushed) {
      if (::sync_file_range(fd, flushed, end - flushed, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
        if (refused()) flush = false;
        else return errno;  // (EIO, ENOSPC: the data did not reach the disk)
      } else {
        ::posix_fadvise(fd, flushed, end - flushed, POSIX_FADV_DONTNEED);
      }
    }
#endif
    flushed = end;
    return 0;
  };
  for (const ConstBytes& piece : pieces) {
    const char* p = static_cast<const char*>(piece.data);
    std::size_t left = piece.size;
    while (left > 0) {
      if (cancel && cancel->load()) return fail(ECANCELED);
      // Up to the next chunk boundary from the last write-back started.
      const off_t pos = start + static_cast<off_t>(out.written);
      const std::size_t room = kWriteThroughChunk - static_cast<std::size_t>(pos - started);
      const std::size_t n = std::min(left, room);
      if (const int e = write_all(fd, p, n, out.written)) return fail(e);
      p += n;
      left -= n;
      if (n == room) {
        const off_t previous = started;
        if (const int e = start_to(start + static_cast<off_t>(out.written))) return fail(e);
        if (const int e = flush_to(previous)) return fail(e);
      }
    }
  }
  const off_t end = start + static_cast<off_t>(out.written);
  if (const int e = start_to(end)) return fail(e);
  if (const int e = flush_to(end)) return fail(e);
  return out;
#endif
}

}  // namespace brainlatent
