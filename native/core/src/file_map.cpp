#include "brainlatent/file_map.h"
#include "brainlatent/mapping_guard.h"

#include <cerrno>
#include <cstring>

#ifndef _WIN32
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace brainlatent {

MappedRange map_file_range(int fd, std::uint64_t offset, std::size_t bytes) {
  MappedRange m;
#ifdef _WIN32
  (void)fd, (void)offset, (void)bytes;
  m.error = ENOSYS;
  m.message = "file mapping is not available on Windows";
  return m;
#else
  auto fail = [&](int e, const char* what) {
    m.error = e;
    m.message = std::string(what) + ": " + std::strerror(e);
    return m;
  };
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(errno, "fstat");
  if (!S_ISREG(st.st_mode) || offset > static_cast<std::uint64_t>(st.st_size) || bytes > static_cast<std::uint64_t>(st.st_size) - offset) {
    m.error = EINVAL;
    m.message = "the range " + std::to_string(offset) + " + " + std::to_string(bytes) + " is not within the " + std::to_string(st.st_size) +
                "-byte regular file";
    return m;
  }
  const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t start = offset / page * page;
  const std::size_t length = static_cast<std::size_t>(offset - start) + (bytes > 0 ? bytes : 1);
  void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, static_cast<off_t>(start));
  if (p == MAP_FAILED) return fail(errno, "mmap");
  // (the readers go through it all: read it ahead of them, as read() would have)
  ::madvise(p, length, MADV_WILLNEED);
  m.base = p;
  m.length = length;
  m.data = static_cast<char*>(p) + (offset - start);
  return m;
#endif
}

MappedRange map_file_range(const std::string& path, std::uint64_t offset, std::size_t bytes) {
#ifdef _WIN32
  return map_file_range(-1, offset, bytes);
#else
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    MappedRange m;
    m.error = errno;
    m.message = std::string("open: ") + std::strerror(m.error);
    return m;
  }
  MappedRange m = map_file_range(fd, offset, bytes);
  ::close(fd);  // (the mapping keeps the file)
  return m;
#endif
}

#ifndef _WIN32
namespace {
void on_sigbus(int) {
  // (async-signal-safe: one write, then _exit)
  static const char kMessage[] =
      "brainlatent: an input file read through a memory mapping was truncated or rewritten while the command ran "
      "(SIGBUS); it stopped, and no output was renamed into place\n";
  ssize_t ignored = ::write(2, kMessage, sizeof kMessage - 1);
  (void)ignored;
  ::_exit(1);
}
}  // namespace
#endif

void explain_sigbus_on_mapped_inputs() noexcept {
#ifndef _WIN32
  // (through the model files' SIGBUS handler, mapping_guard.h: one handler for the process, which claims a fault in
  // a model file being loaded and passes any other here when the process would have died of it)
  set_sigbus_fallback(on_sigbus);
#endif
}

void unmap_range(void* base, std::size_t length) noexcept {
#ifndef _WIN32
  if (base) ::munmap(base, length);
#else
  (void)base, (void)length;
#endif
}

void unmap_range(const MappedRange& m) noexcept { unmap_range(m.base, m.length); }

}  // namespace brainlatent
