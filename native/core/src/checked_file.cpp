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

std::string truncated_file_message(const std::string& model, const std::string& what, const std::string& path, const std::string& how) {
  // (a bus error with the file's size and times unchanged: nothing says it changed, only that a page was not read)
  const bool unread = how.rfind("a read error", 0) == 0;
  return model + ": " + what + (unread ? " could not be read" : " changed") + " while it was being loaded (" + how + "); the model was not loaded. Replace a model's "
         "files by renaming a complete copy over them (not `cp` over the file, which truncates it first), then load it again (" +
         path + ")";
}

std::string short_file_message(const std::string& model, const TensorBytes& t, const std::string& location, std::uint64_t size) {
  const std::string words = !t.tensor.empty() ? "tensor '" + t.tensor + "'" : "an unnamed tensor (" + (t.where.empty() ? "in the graph" : t.where) + ")";
  return model + ": " + words + " needs bytes " + std::to_string(t.offset) + ".." + std::to_string(t.offset + t.length) +
         " of '" + location + "', which has " + std::to_string(size) +
         " bytes (truncated or the wrong file): copy the model's files again, replacing a file by renaming a complete copy over it";
}

namespace {
#ifndef _WIN32
std::int64_t ns(const struct timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + static_cast<std::int64_t>(t.tv_nsec); }
// (macOS names them st_mtimespec and st_ctimespec)
#ifdef __APPLE__
std::int64_t mtime_ns(const struct stat& st) { return ns(st.st_mtimespec); }
std::int64_t ctime_ns(const struct stat& st) { return ns(st.st_ctimespec); }
#else
std::int64_t mtime_ns(const struct stat& st) { return ns(st.st_mtim); }
std::int64_t ctime_ns(const struct stat& st) { return ns(st.st_ctim); }
#endif
#endif
}  // namespace

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
  CheckedFileMap m;
  m.fd_ = fd;  // (closed by m's destructor, on every throw below too)
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(errno, "fstat");
  // the descriptor's own identity: what is read below is this very file, whatever the path leads to by then
  if (static_cast<std::uint64_t>(st.st_dev) != f.dev || static_cast<std::uint64_t>(st.st_ino) != f.ino || !S_ISREG(st.st_mode))
    throw Error(ErrorCode::InvalidModel, changed_file_message(model, what));
  m.size_ = static_cast<std::size_t>(st.st_size);
  m.mtime_ns_ = mtime_ns(st);
  m.ctime_ns_ = ctime_ns(st);
  m.what_ = what;
  m.path_ = f.path;
  // (before ONNX Runtime reads it: its refusal of a short file is an OrtFailure naming neither tensor nor file)
  // (none given: offset and length 0, which any file holds; an unnamed tensor is checked as a named one is)
  if (f.furthest.offset > m.size_ || f.furthest.length > m.size_ - f.furthest.offset)
    throw Error(ErrorCode::InvalidModel, short_file_message(model, f.furthest, f.location, m.size_));
  if (m.size_ == 0) return m;
  void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) fail(errno, "mmap");
  ::madvise(p, m.size_, MADV_WILLNEED);  // (ONNX Runtime copies it all at once)
  m.base_ = p;
  m.guard_ = MappingGuard(p, m.size_);
  return m;
#endif
}

void CheckedFileMap::check_unchanged(const std::string& model) const {
#ifndef _WIN32
  if (fd_ < 0) return;
  struct stat st {};
  const bool stat_failed = ::fstat(fd_, &st) != 0;
  // The change time as well as the modification time: a same-size rewrite that puts the old mtime back (cp -p,
  // rsync --inplace -t) still sets the ctime, which no call of a user's can set back.
  const bool unchanged = !stat_failed && static_cast<std::size_t>(st.st_size) == size_ && mtime_ns(st) == mtime_ns_ && ctime_ns(st) == ctime_ns_;
  const bool shorter = !stat_failed && static_cast<std::size_t>(st.st_size) < size_;
  if (guard_.truncated())  // (a page of the file could not be read: a bus error in the guarded range)
    throw Error(ErrorCode::InvalidModel, truncated_file_message(model, what_, path_, unchanged ? "a read error, or the file was cut and restored" : "truncated"));
  if (!unchanged) throw Error(ErrorCode::InvalidModel, truncated_file_message(model, what_, path_, shorter ? "truncated" : "rewritten"));
#else
  (void)model;
#endif
}

CheckedFileMap::CheckedFileMap(CheckedFileMap&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      fd_(std::exchange(o.fd_, -1)),
      mtime_ns_(o.mtime_ns_),
      ctime_ns_(o.ctime_ns_),
      what_(std::move(o.what_)),
      path_(std::move(o.path_)),
      guard_(std::move(o.guard_)) {}

CheckedFileMap& CheckedFileMap::operator=(CheckedFileMap&& o) noexcept {
  if (this != &o) {
    release();
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    fd_ = std::exchange(o.fd_, -1);
    mtime_ns_ = o.mtime_ns_;
    ctime_ns_ = o.ctime_ns_;
    what_ = std::move(o.what_);
    path_ = std::move(o.path_);
    guard_ = std::move(o.guard_);
  }
  return *this;
}

CheckedFileMap::~CheckedFileMap() { release(); }

void CheckedFileMap::release() {
  guard_ = MappingGuard();  // unguarded first: the range is no longer ours once unmapped
#ifndef _WIN32
  if (base_) ::munmap(base_, size_);
  if (fd_ >= 0) ::close(fd_);
#endif
  base_ = nullptr;
  size_ = 0;
  fd_ = -1;
}

}  // namespace brainlatent
