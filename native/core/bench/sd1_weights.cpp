// sd1_weights: regenerates the SD 1.x fixture's U-Net weights (unet/weights.pb, 3.4 GB) from its recipe
// (unet/weights.recipe.json, written by `brainlatent sd fixture --arch sd1`, ts/sd/sd1Fixture.ts), byte for
// byte, on a machine without Node (1.7 GB for the float16 fixture, `--dtype float16`): the model folder
// without its weights is a few MB and travels; the weights are made where they are used. The generator's
// PRNG is counter-based, so every tensor (and every chunk of one) is computed independently: chunks run on
// all cores and are written with pwrite.
//
//   sd1_weights --recipe DIR/unet/weights.recipe.json [--out DIR/unet/weights.pb] [--threads N]
//
// Value k of the stream (k = 0, 1, ...): state = seed + (k + 1)·0x6d2b79f5 (mod 2^32), mulberry32's
// finaliser gives u (uint32), r = u / 2^32 · 2 − 1; a tensor whose stream starts at `counter` holds element
// i = float32(add + scale · r(counter + i)), float64 arithmetic exactly as JavaScript does it (this file is
// compiled with -ffp-contract=off so no fused multiply-add changes a rounding). With "dtype":"float16" each
// element is the half bits of that float32 value, rounded to nearest even (half_from_float of src/half.h, the
// engine's own conversion; ts/sd/half.ts gives the same bits), 2 bytes; without a dtype (older recipes) or "float32", the float32 bytes.
// Gaps between tensors are zero (a sparse hole). The file is written under a temporary name and renamed
// into place.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "half.h"  // the engine's float32 → float16 conversion (round to nearest even)

namespace {

const char* kFormat = "brainlatent-sd1-weights/1";

const char* kUsage = R"(sd1_weights: regenerate an SD 1.x fixture's unet/weights.pb from unet/weights.recipe.json.

Usage: sd1_weights --recipe FILE [--out FILE] [--threads N]
  --recipe FILE   the recipe (unet/weights.recipe.json of `brainlatent sd fixture --arch sd1`)
  --out FILE      the weights file to write (default: weights.pb next to the recipe)
  --threads N     worker threads (default: all cores)
  --help          this text
Prints one JSON line: tensors, bytes, seconds, GB/s.
)";

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "sd1_weights: %s\n", message.c_str());
  std::exit(1);
}

struct Tensor {
  std::uint64_t offset = 0, count = 0, counter = 0;
  double scale = 0, add = 0;
};

struct Recipe {
  std::uint32_t seed = 0;
  std::uint64_t element = 4;  // bytes per element: 4 (float32) or 2 (float16)
  std::uint64_t size = 0;
  std::vector<Tensor> tensors;
};

// ------------------------------------------------------------------ the recipe (a fixed JSON shape)

// A cursor over the recipe's text: just enough JSON for its shape (numbers, strings, arrays).
struct Cursor {
  const std::string& text;
  const std::string& file;
  std::size_t at = 0;
  void skip_space() {
    while (at < text.size() && std::strchr(" \t\r\n", text[at])) ++at;
  }
  [[noreturn]] void error(const std::string& expected) const {
    fail(file + ": expected " + expected + " at byte " + std::to_string(at));
  }
  void expect(char c) {
    skip_space();
    if (at >= text.size() || text[at] != c) error(std::string("'") + c + "'");
    ++at;
  }
  bool peek(char c) {
    skip_space();
    return at < text.size() && text[at] == c;
  }
  double number(const char* what) {
    skip_space();
    const char* begin = text.c_str() + at;
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(begin, &end);  // correctly rounded: JSON.stringify's shortest form round-trips
    if (end == begin || errno == ERANGE) error(std::string("a number (") + what + ")");
    at += static_cast<std::size_t>(end - begin);
    return v;
  }
  void string() {
    expect('"');
    while (at < text.size() && text[at] != '"') at += text[at] == '\\' ? 2 : 1;
    if (at >= text.size()) error("the end of a string");
    ++at;
  }
};

// The value after "key": in the recipe's head (before "tensors"); empty when absent and optional.
std::string head_value(const std::string& text, const std::string& file, const std::string& key, bool optional = false) {
  const std::string k = "\"" + key + "\":";
  const std::size_t p = text.find(k);
  const std::size_t tensors = text.find("\"tensors\":");
  if ((p == std::string::npos || p > tensors) && optional) return {};
  if (p == std::string::npos || p > tensors) fail(file + ": no field '" + key + "' (is this a weights recipe?)");
  std::size_t e = p + k.size();
  while (e < text.size() && !std::strchr(",}", text[e])) ++e;
  return text.substr(p + k.size(), e - p - k.size());
}

std::uint64_t whole(double v, const std::string& file, const std::string& what) {
  if (!(v >= 0 && v <= 9007199254740992.0) || v != static_cast<double>(static_cast<std::uint64_t>(v)))
    fail(file + ": " + what + " must be a whole number >= 0, got " + std::to_string(v));
  return static_cast<std::uint64_t>(v);
}

Recipe read_recipe(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("cannot open the recipe " + file + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  Recipe r;
  const std::string format = head_value(text, file, "format");
  if (format != std::string("\"") + kFormat + "\"")
    fail(file + ": format " + format + ", this program knows \"" + kFormat + "\"");
  if (text.find("\"columns\":[\"name\",\"offset\",\"count\",\"scale\",\"add\",\"counter\"]") == std::string::npos)
    fail(file + ": columns must be [\"name\",\"offset\",\"count\",\"scale\",\"add\",\"counter\"]");
  r.seed = static_cast<std::uint32_t>(whole(std::strtod(head_value(text, file, "seed").c_str(), nullptr), file, "seed"));
  r.size = whole(std::strtod(head_value(text, file, "size").c_str(), nullptr), file, "size");
  const std::string dtype = head_value(text, file, "dtype", true);
  if (dtype == "\"float16\"") r.element = 2;
  else if (!dtype.empty() && dtype != "\"float32\"") fail(file + ": dtype " + dtype + ", expected \"float32\" or \"float16\"");

  Cursor c{text, file, text.find("\"tensors\":") + std::strlen("\"tensors\":")};
  c.expect('[');
  std::uint64_t end = 0, next_counter = 0;
  while (!c.peek(']')) {
    if (!r.tensors.empty()) c.expect(',');
    const std::string row = "tensors[" + std::to_string(r.tensors.size()) + "]";
    Tensor t;
    c.expect('[');
    c.string();
    c.expect(',');
    t.offset = whole(c.number("offset"), file, row + " offset");
    c.expect(',');
    t.count = whole(c.number("count"), file, row + " count");
    c.expect(',');
    t.scale = c.number("scale");
    c.expect(',');
    t.add = c.number("add");
    c.expect(',');
    t.counter = whole(c.number("counter"), file, row + " counter");
    c.expect(']');
    if (t.offset < end) fail(file + ": " + row + " starts at byte " + std::to_string(t.offset) + ", inside the previous tensor (ends at " + std::to_string(end) + ")");
    if (t.counter != next_counter) fail(file + ": " + row + " counter " + std::to_string(t.counter) + ", expected " + std::to_string(next_counter) + " (the values drawn before it)");
    end = t.offset + r.element * t.count;
    next_counter += t.count;
    r.tensors.push_back(t);
  }
  c.expect(']');
  if (r.tensors.empty()) fail(file + ": no tensors");
  if (end != r.size) fail(file + ": the last tensor ends at byte " + std::to_string(end) + ", size says " + std::to_string(r.size));
  return r;
}

// ------------------------------------------------------------------ the generator

// ts/sd/sd1Fixture.ts ExternalGraph.rand() for the value with this counter.
inline double rand_at(std::uint32_t seed, std::uint64_t k) {
  std::uint32_t t = seed + static_cast<std::uint32_t>(k + 1) * 0x6d2b79f5u;
  t = (t ^ (t >> 15)) * (t | 1u);
  t ^= t + (t ^ (t >> 7)) * (t | 61u);
  const std::uint32_t u = t ^ (t >> 14);
  return static_cast<double>(u) / 4294967296.0 * 2.0 - 1.0;
}


struct Chunk {
  std::size_t tensor;
  std::uint64_t first, count;  // elements of that tensor
};

}  // namespace

int main(int argc, char** argv) {
  std::string recipe_path, out;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(a + " needs a value");
      return argv[++i];
    };
    if (a == "--recipe") recipe_path = value();
    else if (a == "--out") out = value();
    else if (a == "--threads") {
      const std::string v = value();
      const long n = std::strtol(v.c_str(), nullptr, 10);
      if (n < 1 || n > 1024) fail("--threads must be 1..1024, got '" + v + "'");
      threads = static_cast<unsigned>(n);
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else fail("unknown argument '" + a + "' (see --help)");
  }
  if (recipe_path.empty()) fail("--recipe FILE is required (see --help)");
  if (out.empty()) {
    const std::size_t slash = recipe_path.rfind('/');
    out = (slash == std::string::npos ? std::string() : recipe_path.substr(0, slash + 1)) + "weights.pb";
  }
  const auto t0 = std::chrono::steady_clock::now();
  const Recipe r = read_recipe(recipe_path);

  // chunks of at most 1M elements (4 MB), so that a few large tensors still spread over every core
  constexpr std::uint64_t kChunk = 1u << 20;
  std::vector<Chunk> chunks;
  for (std::size_t i = 0; i < r.tensors.size(); ++i)
    for (std::uint64_t f = 0; f < r.tensors[i].count; f += kChunk)
      chunks.push_back({i, f, std::min(kChunk, r.tensors[i].count - f)});

  const std::string tmp = out + ".tmp-" + std::to_string(getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail("cannot create " + tmp + ": " + std::strerror(errno));
  if (::ftruncate(fd, static_cast<off_t>(r.size)) != 0) fail("cannot size " + tmp + ": " + std::strerror(errno));

  std::atomic<std::size_t> next{0};
  std::atomic<int> error{0};
  auto work = [&]() {
    std::vector<float> buf(kChunk);
    std::vector<std::uint16_t> halves(r.element == 2 ? kChunk : 0);
    for (std::size_t j; !error.load() && (j = next.fetch_add(1)) < chunks.size();) {
      const Chunk& ch = chunks[j];
      const Tensor& t = r.tensors[ch.tensor];
      for (std::uint64_t i = 0; i < ch.count; ++i)
        buf[i] = static_cast<float>(t.add + t.scale * rand_at(r.seed, t.counter + ch.first + i));
      if (r.element == 2)
        for (std::uint64_t i = 0; i < ch.count; ++i) halves[i] = brainlatent::half_from_float(buf[i]);
      const char* p = r.element == 2 ? reinterpret_cast<const char*>(halves.data()) : reinterpret_cast<const char*>(buf.data());
      std::uint64_t left = ch.count * r.element, at = t.offset + ch.first * r.element;
      while (left > 0) {
        const ssize_t w = ::pwrite(fd, p, left, static_cast<off_t>(at));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          error.store(w < 0 ? errno : EIO);
          return;
        }
        p += w;
        left -= static_cast<std::uint64_t>(w);
        at += static_cast<std::uint64_t>(w);
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i) pool.emplace_back(work);
  for (auto& th : pool) th.join();
  if (error.load()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("writing " + tmp + " failed: " + std::strerror(error.load()));
  }
  if (::close(fd) != 0) fail("closing " + tmp + ": " + std::strerror(errno));
  if (std::rename(tmp.c_str(), out.c_str()) != 0) fail("cannot rename " + tmp + " to " + out + ": " + std::strerror(errno));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"tool\":\"sd1_weights\",\"out\":\"%s\",\"tensors\":%zu,\"bytes\":%llu,\"threads\":%u,\"seconds\":%.3f,\"gb_per_s\":%.3f}\n",
              out.c_str(), r.tensors.size(), static_cast<unsigned long long>(r.size), threads, secs, r.size / 1e9 / secs);
  return 0;
}
