// map_file_range: the bytes of a range at any offset (page-aligned or not), private writes that never
// reach the file, and failures reported with their errno (no file, a range past the end, a folder).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "brainlatent/file_map.h"
#include "file_test_util.h"
#include "test_util.h"

using namespace brainlatent;
using test::pattern;
using test::read_all;

int main() {
  char tmpl[] = "/tmp/brainlatent-file-map-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  if (!dir) return 77;
  const std::string path = std::string(dir) + "/in.bin";
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::vector<char> content = pattern(3 * page + 1000, 1);
  {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    ::close(fd);
  }

  test::run("a range maps the file's bytes at aligned and unaligned offsets, to the file's end", [&] {
    const std::size_t n = content.size();
    for (const auto& [off, len] : std::vector<std::pair<std::size_t, std::size_t>>{
             {0, n}, {128, 1000}, {page, page}, {page - 64, 128}, {2 * page + 17, n - 2 * page - 17}, {n, 0}, {5, 0}}) {
      const MappedRange m = map_file_range(path, off, len);
      CHECK(m.error == 0);
      CHECK(m.data != nullptr);
      if (m.data && len > 0) CHECK(std::memcmp(m.data, content.data() + off, len) == 0);
      // (the mapping starts at the page holding offset: data keeps the offset's alignment within it)
      CHECK(reinterpret_cast<std::uintptr_t>(m.data) % page == off % page);
      unmap_range(m);
    }
  });

  test::run("writes to the mapping stay in this process: the file is unchanged", [&] {
    const MappedRange m = map_file_range(path, 64, 2 * page);
    CHECK(m.error == 0);
    std::memset(m.data, 0x5a, 2 * page);
    const MappedRange again = map_file_range(path, 64, 2 * page);
    CHECK(std::memcmp(again.data, content.data() + 64, 2 * page) == 0);
    unmap_range(again);
    unmap_range(m);
    CHECK(read_all(path) == content);
  });

  test::run("an open descriptor maps the same bytes, and the mapping outlives it", [&] {
    const int fd = ::open(path.c_str(), O_RDONLY);
    CHECK(fd >= 0);
    const MappedRange m = map_file_range(fd, 100, 2 * page);
    ::close(fd);
    CHECK(m.error == 0);
    if (m.data) CHECK(std::memcmp(m.data, content.data() + 100, 2 * page) == 0);
    unmap_range(m);
    const MappedRange bad = map_file_range(-1, 0, 1);
    CHECK(bad.data == nullptr && bad.error == EBADF);
  });

  test::run("no file, a range past the end and a folder are errors with their errno", [&] {
    const MappedRange missing = map_file_range(std::string(dir) + "/none.bin", 0, 10);
    CHECK(missing.data == nullptr && missing.error == ENOENT);
    CHECK(missing.message.find("open") != std::string::npos);
    const MappedRange past = map_file_range(path, content.size() - 10, 11);
    CHECK(past.data == nullptr && past.error == EINVAL);
    CHECK(past.message.find(std::to_string(content.size())) != std::string::npos);
    const MappedRange beyond = map_file_range(path, content.size() + 1, 0);
    CHECK(beyond.data == nullptr && beyond.error == EINVAL);
    const MappedRange folder = map_file_range(dir, 0, 1);
    CHECK(folder.data == nullptr && folder.error != 0);
  });

  ::unlink(path.c_str());
  ::rmdir(dir);
  return test::finish();
}
