// A file mapping whose file may be truncated while it is read, without the process dying of SIGBUS.
//
// A model file mapped by the engine (checked_file.h) and truncated while ONNX Runtime copies it (an operator's
// `cp new.bin weights.bin` over it truncates first) has pages past the file's new end; touching one raises SIGBUS,
// whose default action kills the whole service. While a MappingGuard lives, a process-wide SIGBUS handler
// (installed once, chaining to the previous handler for every address that is not inside a guarded range) maps
// anonymous zero pages over the guarded range from the faulting page on, records that the range was cut short,
// and returns: the reader goes on reading zeros, and its caller asks truncated() afterwards and refuses what it read.
//
// Why a handler rather than the alternatives: reading the file into the heap instead of mapping it would double
// the memory of a load (a 3.4 GB U-Net held twice while ONNX Runtime copies it), and MAP_POPULATE or mlock do not
// help, since a truncation removes the file's pages from every mapping whether or not they were resident.
#pragma once
#include <cstddef>

namespace brainlatent {

class MappingGuard {
 public:
  // Guards [base, base + size) (a mapping made by mmap, so base is page-aligned). Throws Error(InvalidArgument)
  // when the fixed-size registry is full (more files being loaded at once than it holds; see mapping_guard.cpp).
  MappingGuard(const void* base, std::size_t size);
  ~MappingGuard();  // unguards: call before the range is unmapped (a member declared after the mapping's)
  MappingGuard() = default;  // guards nothing
  MappingGuard(MappingGuard&& o) noexcept;
  MappingGuard& operator=(MappingGuard&& o) noexcept;
  MappingGuard(const MappingGuard&) = delete;
  MappingGuard& operator=(const MappingGuard&) = delete;
  // Whether a page of the range was touched past the file's end (and read as zeros since).
  bool truncated() const;

 private:
  int slot_ = -1;
};

// For a SIGBUS that no guard claims and that would otherwise end the process by its default action: `fallback`
// runs instead (file_map.h explain_sigbus_on_mapped_inputs: a line saying a mapped input shrank, then exit). The
// handler is installed here if it is not yet; one handler serves both, whichever is asked for first.
void set_sigbus_fallback(void (*fallback)(int)) noexcept;

}  // namespace brainlatent
