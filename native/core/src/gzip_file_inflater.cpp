#include "brainlatent/gzip_file_inflater.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include <unistd.h>

#include "brainlatent/error.h"

namespace brainlatent::gzip {

namespace {
// Room beyond a read for the input the inflater leaves at a member boundary (under 3 bytes: gzip_inflate.h).
constexpr std::size_t kLeftover = 16;
}  // namespace

FileInflater::FileInflater(int fd, std::uint64_t end, std::size_t read_bytes)
    : fd_(fd), end_(end), read_bytes_(std::max<std::size_t>(1, read_bytes)) {
  in_.resize(read_bytes_ + kLeftover);
}

bool FileInflater::refill() {
  const std::size_t left = in_len_ - in_pos_;
  if (left > kLeftover) throw Error(ErrorCode::Internal, "gunzip: " + std::to_string(left) + " input bytes left unread between steps");
  std::memmove(in_.data(), in_.data() + in_pos_, left);
  in_pos_ = 0;
  in_len_ = left;
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(read_bytes_, end_ - pos_));
  ssize_t got;
  do got = ::pread(fd_, in_.data() + in_len_, want, static_cast<off_t>(pos_));
  while (got < 0 && errno == EINTR);
  if (got < 0) {
    read_errno_ = errno;
    return false;
  }
  in_len_ += static_cast<std::size_t>(got);
  pos_ += static_cast<std::uint64_t>(got);
  // (the input ends here when the file does, or at `end`: the inflater is told with these bytes, not a step later)
  if (got == 0 || pos_ >= end_) file_done_ = true;
  return true;
}

StepResult FileInflater::step(std::uint8_t* out, std::size_t out_len) {
  StepResult total;
  const auto read_failed = [&] {
    total.failure = "read";
    total.message = std::strerror(read_errno_);
    return total;
  };
  if (read_errno_ != 0) return read_failed();
  while (true) {
    if (in_pos_ == in_len_ && !file_done_ && !refill()) return read_failed();
    const StepResult r = inflater_.step(in_.data() + in_pos_, in_len_ - in_pos_, out + total.produced, out_len - total.produced, file_done_);
    in_pos_ += r.consumed;
    total.consumed += r.consumed;
    total.produced += r.produced;
    if (!r.failure.empty() || r.ended) {
      total.failure = r.failure;
      total.message = r.message;
      total.coarse = r.coarse;
      total.ended = r.ended;
      return total;
    }
    if (total.produced == out_len) return total;
    // The input is used up, or a member boundary needs more bytes than are left.
    if (file_done_) throw Error(ErrorCode::Internal, "gunzip: the inflater neither ended nor failed at the end of the file");
    if (!refill()) return read_failed();
  }
}

}  // namespace brainlatent::gzip
