// Helpers of the file tests (test_file_io, test_file_map): seeded byte patterns and a file's bytes.
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace test {

// n bytes of a linear congruential sequence from seed.
inline std::vector<char> pattern(std::size_t n, unsigned seed) {
  std::vector<char> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (char& c : v) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return v;
}

// The whole file at path (empty when it cannot be opened).
inline std::vector<char> read_all(const std::string& path) {
  std::vector<char> out;
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return out;
  char buf[1 << 16];
  for (ssize_t r; (r = ::read(fd, buf, sizeof buf)) > 0;) out.insert(out.end(), buf, buf + r);
  ::close(fd);
  return out;
}

}  // namespace test
