#include "brainlatent/checked_file.h"

#include <cerrno>
#include <cstring>
#include <utility>

#ifndef _WIN32
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "brainlatent/error.h"

namespace brainlatent {

std::string changed_file_message(const std::string& model, const std::string& what) {
  return model + ": " + what +
         " changed between its check and its reading (a link in its path was replaced): a service reads model files only "
         "inside its root, and a file that changes while it is read is refused. Retry once the folder no longer changes";
}

CheckedFileMap CheckedFileMap::open(const CheckedFile& f, const std::string& model) {
  const std::string what = f.what.empty() ? "'" + f.location + "'" : f.what;
#ifdef _WIN32
  (void)model;
  throw Error(ErrorCode::InvalidArgument, f.path + ": loading model files checked against a service's roots needs a POSIX system");
#else
  auto fail = [&](int e, const char* op) {
    throw Error(ErrorCode::InvalidArgument, model + ": cannot read " + what + " " + f.path + " (" + op + ": " + std::strerror(e) + ")");
  };
  // O_NONBLOCK: a FIFO put where the file was must not hang the open (it is refused below, not a regular file)
  const int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    // (gone since the check: a link replaced or the file removed, not a file to read)
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) throw Error(ErrorCode::InvalidModel, changed_file_message(model, what));
    fail(errno, "open");
  }
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close_fd{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(errno, "fstat");
  // the descriptor's own identity: what is read below is this very file, whatever the path leads to by then
  if (static_cast<std::uint64_t>(st.st_dev) != f.dev || static_cast<std::uint64_t>(st.st_ino) != f.ino || !S_ISREG(st.st_mode))
    throw Error(ErrorCode::InvalidModel, changed_file_message(model, what));
  CheckedFileMap m;
  m.size_ = static_cast<std::size_t>(st.st_size);
  if (m.size_ == 0) return m;
  void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) fail(errno, "mmap");
  ::madvise(p, m.size_, MADV_WILLNEED);  // (ONNX Runtime copies it all at once)
  m.base_ = p;
  return m;
#endif
}

CheckedFileMap::CheckedFileMap(CheckedFileMap&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)) {}

CheckedFileMap& CheckedFileMap::operator=(CheckedFileMap&& o) noexcept {
  if (this != &o) {
    this->~CheckedFileMap();
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

CheckedFileMap::~CheckedFileMap() {
#ifndef _WIN32
  if (base_) ::munmap(base_, size_);
#endif
  base_ = nullptr;
}

}  // namespace brainlatent
