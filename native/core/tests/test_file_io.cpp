// write_through: the bytes and their order at the file's position, across the 8 MiB flush
// boundaries, and failures reported with their errno (a full disk, a descriptor not open for writing).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "brainlatent/file_io.h"
#include "file_test_util.h"
#include "test_util.h"

using namespace brainlatent;
using test::pattern;
using test::read_all;

int main() {
  char tmpl[] = "/tmp/brainlatent-file-io-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  if (!dir) return 77;
  const std::string path = std::string(dir) + "/out.bin";
  const std::size_t M = kWriteThroughChunk;

  test::run("pieces land in order at the file's position, across flush boundaries", [&] {
    for (const std::vector<std::size_t>& sizes : {std::vector<std::size_t>{0}, {1}, {M - 1}, {M}, {M + 1}, {3, M - 3, 5, 2 * M + 7, 0, 11}}) {
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      CHECK(fd >= 0);
      // A header written before (the position write_through continues from) and a tail after it.
      const std::vector<char> head = pattern(100, 1), tail = pattern(17, 2);
      CHECK(::write(fd, head.data(), head.size()) == 100);
      std::vector<std::vector<char>> data;
      std::vector<ConstBytes> pieces;
      std::vector<char> want(head);
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        data.push_back(pattern(sizes[i], static_cast<unsigned>(i + 3)));
        want.insert(want.end(), data.back().begin(), data.back().end());
      }
      for (const auto& d : data) pieces.push_back({d.data(), d.size()});
      const WriteOutcome w = write_through(fd, pieces);
      CHECK(w.error == 0);
      std::uint64_t total = 0;
      for (std::size_t s : sizes) total += s;
      CHECK(w.written == total);
      CHECK(::write(fd, tail.data(), tail.size()) == 17);
      want.insert(want.end(), tail.begin(), tail.end());
      CHECK(::fsync(fd) == 0);
      ::close(fd);
      CHECK(read_all(path) == want);
    }
  });

  test::run("a full disk and a read-only descriptor are errors with their errno", [&] {
    const std::vector<char> d = pattern(M + 5, 9);
    const int full = ::open("/dev/full", O_WRONLY);
    if (full >= 0) {
      const WriteOutcome w = write_through(full, {{d.data(), d.size()}});
      CHECK(w.error == ENOSPC);
      CHECK(!w.message.empty());
      ::close(full);
    }
    const int ro = ::open(path.c_str(), O_RDONLY);
    const WriteOutcome w = write_through(ro, {{d.data(), d.size()}});
    CHECK(w.error == EBADF);
    CHECK(w.written == 0);
    ::close(ro);
  });

  test::run("cancel stops between pieces with ECANCELED", [&] {
    const std::vector<char> d = pattern(3 * M, 4);
    std::atomic<bool> cancel{true};
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const WriteOutcome w = write_through(fd, {{d.data(), d.size()}}, &cancel);
    CHECK(w.error == ECANCELED);
    ::close(fd);
  });

  ::unlink(path.c_str());
  ::rmdir(dir);
  return test::finish();
}
