// Mapping a range of a file into memory, copy-on-write, instead of reading it into fresh memory.
//
// Reading a 32 MB .npy copies it from the page cache into 32 MB of fresh pages, each first touched
// by the copy (on this bench VM ~0.55 ms per MiB in 4 KiB faults, 18 ms, plus the copy). A private
// mapping shares the page cache's pages: nothing is copied, and the reader's first pass maps them a
// fault-around window (64 KiB) at a time. Writes to the mapping stay private (the file is never
// changed). The file must not shrink while mapped: reading a page past its new end is SIGBUS, as
// with numpy's mmap_mode.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace brainlatent {

struct MappedRange {
  void* data = nullptr;   // the range's first byte
  void* base = nullptr;   // the mapping (page-aligned), for unmap_range
  std::size_t length = 0; // the mapping's length
  int error = 0;          // errno when the mapping failed (data null), 0 otherwise
  std::string message;    // what failed, for the caller to name the file
};

// Maps [offset, offset + bytes) of the open file fd, private and writable (the mapping holds the
// file; fd may be closed after). A reader maps the file it has opened and read the header of, not a
// path that may name another file by then. Nothing thrown: on failure (not a regular file, a range
// past the end, a file system without mmap) error says why.
MappedRange map_file_range(int fd, std::uint64_t offset, std::size_t bytes);
// The same for the file at path (opened and closed here).
MappedRange map_file_range(const std::string& path, std::uint64_t offset, std::size_t bytes);

// From now on a SIGBUS (a read of a mapped page past the end of a file that shrank, or was truncated
// and rewritten, while mapped) ends the process with exit code 1 and a line on stderr saying so,
// instead of a bare "Bus error" core dump. Only where SIGBUS had its default action before the engine's
// handler (mapping_guard.h, which serves this and the model files' guard alike); idempotent. Not on Windows.
void explain_sigbus_on_mapped_inputs() noexcept;

// Unmaps what map_file_range mapped.
void unmap_range(const MappedRange& m) noexcept;
void unmap_range(void* base, std::size_t length) noexcept;

}  // namespace brainlatent
