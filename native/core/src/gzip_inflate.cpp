// Streaming gunzip on ISA-L, loaded at run time (gzip_inflate.h). The struct inflate_state is ours to
// allocate, so its layout (native/third_party/isa-l/README.md) is checked twice before a library is used:
// by the version its file name gives, and by decoding a known two-member gzip.
#include "brainlatent/gzip_inflate.h"

#include <dlfcn.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "brainlatent/error.h"
#include "isa-l/igzip_lib.h"

namespace brainlatent::gzip {
namespace {

using InitFn = void (*)(struct inflate_state*);
using InflateFn = int (*)(struct inflate_state*);

struct Library {
  InflaterInfo info;
  InitFn init = nullptr;
  InitFn reset = nullptr;
  InflateFn inflate = nullptr;
};

// The oldest release whose struct inflate_state matches the vendored header's.
constexpr int kOldestMinor = 25;
// Room past the header's struct size, so that a library whose struct were larger writes into memory of ours.
constexpr std::size_t kStateSlack = 64 * 1024;

// Two members, "brainlatent: ISA-L self-test, " × 8 then "second member " × 5 (Python's gzip, mtime 0).
constexpr unsigned char kSelfTest[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x4b, 0x2a, 0x4a, 0xcc, 0xcc, 0xcb, 0x49, 0x2c,
    0x49, 0xcd, 0x2b, 0xb1, 0x52, 0xf0, 0x0c, 0x76, 0xd4, 0xf5, 0x51, 0x28, 0x4e, 0xcd, 0x49, 0xd3, 0x2d, 0x49,
    0x2d, 0x2e, 0xd1, 0x51, 0x48, 0x1a, 0x76, 0xb2, 0x00, 0x1d, 0xc3, 0x71, 0x98, 0xf0, 0x00, 0x00, 0x00, 0x1f,
    0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x2b, 0x4e, 0x4d, 0xce, 0xcf, 0x4b, 0x51, 0xc8, 0x4d,
    0xcd, 0x4d, 0x4a, 0x2d, 0x52, 0x28, 0x26, 0x93, 0x07, 0x00, 0x4c, 0x17, 0xec, 0xed, 0x46, 0x00, 0x00, 0x00};

std::string self_test_text() {
  std::string s;
  for (int i = 0; i < 8; ++i) s += "brainlatent: ISA-L self-test, ";
  for (int i = 0; i < 5; ++i) s += "second member ";
  return s;
}

// "libisal.so.2.0.30" → 30; -1 when the name does not end in a libtool version.
int minor_from_name(const std::string& path) {
  const std::string key = ".so.2.0.";
  const auto at = path.rfind(key);
  if (at == std::string::npos) return -1;
  const std::string tail = path.substr(at + key.size());
  if (tail.empty() || tail.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::atoi(tail.c_str());
}

// Set while the loader's own self-test constructs an Inflater (before the library counts as available).
thread_local bool in_self_test = false;

// The known gzip, given 7 more bytes whenever a step produces nothing, into outputs of 50 bytes: what comes
// out must be its text.
bool passes_self_test(std::string& why) {
  in_self_test = true;
  Inflater inf;
  in_self_test = false;
  const std::string want = self_test_text();
  std::string got;
  std::size_t used = 0, given = 7;
  unsigned char out[50];
  for (int guard = 0; guard < 1000; ++guard) {
    const StepResult r = inf.step(kSelfTest + used, given - used, out, sizeof out, given == sizeof kSelfTest);
    got.append(reinterpret_cast<const char*>(out), r.produced);
    used += r.consumed;
    if (!r.failure.empty()) {
      why = "its self-test failed: " + r.message;
      return false;
    }
    if (r.ended) break;
    if (r.produced == 0) given = std::min(sizeof kSelfTest, given + 7);
  }
  if (got != want) {
    why = "its self-test decoded " + std::to_string(got.size()) + " bytes that differ from the " + std::to_string(want.size()) + " expected";
    return false;
  }
  return true;
}

Library load() {
  Library lib;
  const char* env = std::getenv("BRAINLATENT_ISAL_LIB");
#ifdef __APPLE__
  const std::string name = env && *env ? env : "libisal.2.dylib";
#else
  const std::string name = env && *env ? env : "libisal.so.2";
#endif
  void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = dlerror();
    lib.info.reason = "cannot load " + name + ": " + (why ? why : "dlopen failed") +
                      " (Debian/Ubuntu: apt-get install libisal2; or set BRAINLATENT_ISAL_LIB to the file)";
    return lib;
  }
  lib.init = reinterpret_cast<InitFn>(dlsym(h, "isal_inflate_init"));
  lib.reset = reinterpret_cast<InitFn>(dlsym(h, "isal_inflate_reset"));
  lib.inflate = reinterpret_cast<InflateFn>(dlsym(h, "isal_inflate"));
  if (!lib.init || !lib.reset || !lib.inflate) {
    lib.info.reason = name + " has no isal_inflate_init, isal_inflate_reset or isal_inflate: not ISA-L 2.25 or newer";
    dlclose(h);
    return lib;
  }
  Dl_info where{};
  std::string file = name;
  if (dladdr(reinterpret_cast<void*>(lib.inflate), &where) && where.dli_fname) file = where.dli_fname;
  if (char* real = realpath(file.c_str(), nullptr)) {
    file = real;
    std::free(real);
  }
  lib.info.library = file;
  const int minor = minor_from_name(file);
  if (minor >= 0) lib.info.version = "2." + std::to_string(minor);
  if (minor >= 0 && minor < kOldestMinor) {
    lib.info.reason = file + " is ISA-L " + lib.info.version + ": 2.25 or newer is needed (its inflate state differs)";
    return lib;  // (left loaded: dlclose of a library that may be in use elsewhere in the process gains nothing)
  }
  return lib;
}

Library& library_unchecked() {
  static Library lib = load();
  return lib;
}

}  // namespace

const InflaterInfo& inflater_info() {
  static std::once_flag once;
  std::call_once(once, [] {
    Library& lib = library_unchecked();
    if (!lib.info.reason.empty()) return;
    std::string why;
    if (passes_self_test(why)) lib.info.available = true;
    else lib.info.reason = lib.info.library + ": " + why;
  });
  return library_unchecked().info;
}

struct Inflater::State {
  void* memory = nullptr;
  struct inflate_state* st = nullptr;
  // First: the first member's header; Between: after a member, before a new one or the end; Header: inside a later
  // member's header; Member: ISA-L inflating a member's data and checking its trailer.
  enum class Phase { First, Header, Member, Between, Ended, Failed } phase = Phase::First;
  // The member header being read (RFC 1952 2.3), which is ours to parse: ISA-L 2.30 misreads one that reaches it in
  // two calls (its flags are re-read from an uninitialised struct on the second), and checks fewer of its fields than
  // zlib. ISA-L then inflates the data with no header (ISAL_GZIP_NO_HDR_VER), still checking the trailer.
  enum class Part { Fixed, ExtraLength, Extra, Name, Comment, HeaderCrc, Done } part = Part::Fixed;
  std::uint8_t fixed[10] = {};
  std::size_t have = 0;       // bytes of `fixed` (or of a 2-byte field) read
  std::uint32_t extra_left = 0;
  std::uint8_t field[2] = {};    // the header CRC field, as read
  std::uint32_t header_crc = 0;  // CRC-32 of the header's bytes so far (FHCRC holds its low 16 bits)
  void start_header() {
    part = Part::Fixed;
    have = 0;
    extra_left = 0;
    header_crc = 0;
  }
  // The last 8 input bytes ISA-L took (its calls may split a trailer), to tell a CRC from a length mismatch.
  std::uint8_t last8[8] = {};
  // Reads header bytes from in[at..len) (advancing `at`) until the header ends (part Done) or the input does; a header
  // that is not valid gzip returns zlib's words for it.
  std::string read_header(const std::uint8_t* in, std::size_t len, std::size_t& at);
  void remember(const std::uint8_t* p, std::size_t n) {
    if (n >= 8) {
      std::memcpy(last8, p + n - 8, 8);
    } else {
      std::memmove(last8, last8 + n, 8 - n);
      std::memcpy(last8 + 8 - n, p, n);
    }
  }
};

Inflater::Inflater() : s_(new State) {
  if (!in_self_test) {
    const InflaterInfo& info = inflater_info();
    if (!info.available) throw Error(ErrorCode::BackendUnavailable, "ISA-L inflate is not available: " + info.reason);
  }
  s_->memory = std::calloc(1, sizeof(struct inflate_state) + kStateSlack);
  if (!s_->memory) throw Error::allocation_failed("out of memory for an inflate state");
  s_->st = static_cast<struct inflate_state*>(s_->memory);
}

Inflater::~Inflater() { std::free(s_->memory); }

namespace {

std::string zlib_words(int code) {
  switch (code) {
    case ISAL_INVALID_BLOCK: return "invalid block type";
    case ISAL_INVALID_SYMBOL: return "invalid code";
    case ISAL_INVALID_LOOKBACK: return "invalid distance too far back";
    default: return "inflate error " + std::to_string(code);
  }
}

// A trailer's CRC-32 field (little-endian).
std::uint32_t le32(const std::uint8_t* t) {
  return t[0] | (t[1] << 8) | (t[2] << 16) | (static_cast<std::uint32_t>(t[3]) << 24);
}

// CRC-32 as gzip computes it (RFC 1952 8), for the header CRC: a few bytes a member, so a byte at a time.
std::uint32_t crc32_update(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
  static const auto table = [] {
    struct T { std::uint32_t v[256]; } t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t.v[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table.v[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

}  // namespace

std::string Inflater::State::read_header(const std::uint8_t* in, std::size_t len, std::size_t& at) {
  const auto next_after = [this](Part done) {
    const std::uint8_t flags = fixed[3];
    if (done < Part::ExtraLength && (flags & 4)) return Part::ExtraLength;
    if (done < Part::Name && (flags & 8)) return Part::Name;
    if (done < Part::Comment && (flags & 16)) return Part::Comment;
    if (done < Part::HeaderCrc && (flags & 2)) return Part::HeaderCrc;
    return Part::Done;
  };
  while (at < len && part != Part::Done) {
    const std::uint8_t* p = in + at;
    const std::size_t left = len - at;
    switch (part) {
      case Part::Fixed: {
        fixed[have++] = *p;
        header_crc = crc32_update(header_crc, p, 1);
        ++at;
        if (have == 2 && (fixed[0] != 0x1f || fixed[1] != 0x8b)) return "incorrect header check";
        if (have == 3 && fixed[2] != 8) return "unknown compression method";
        if (have == 4 && (fixed[3] & 0xe0)) return "unknown header flags set";
        if (have == 10) {
          have = 0;
          part = next_after(Part::Fixed);
        }
        break;
      }
      case Part::ExtraLength: {
        header_crc = crc32_update(header_crc, p, 1);
        extra_left |= static_cast<std::uint32_t>(*p) << (8 * have++);
        ++at;
        if (have == 2) {
          have = 0;
          part = extra_left > 0 ? Part::Extra : next_after(Part::Extra);
        }
        break;
      }
      case Part::Extra: {
        const std::size_t take = std::min<std::size_t>(extra_left, left);
        header_crc = crc32_update(header_crc, p, take);
        at += take;
        extra_left -= static_cast<std::uint32_t>(take);
        if (extra_left == 0) part = next_after(Part::Extra);
        break;
      }
      case Part::Name:
      case Part::Comment: {
        const void* z = std::memchr(p, 0, left);
        const std::size_t take = z ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(z) - p) + 1 : left;
        header_crc = crc32_update(header_crc, p, take);
        at += take;
        if (z) part = next_after(part);
        break;
      }
      case Part::HeaderCrc: {
        field[have++] = *p;
        ++at;
        if (have == 2) {
          if (static_cast<std::uint32_t>(field[0] | (field[1] << 8)) != (header_crc & 0xffff)) return "header crc mismatch";
          part = Part::Done;
        }
        break;
      }
      case Part::Done: break;
    }
  }
  return "";
}

StepResult Inflater::step(const std::uint8_t* in, std::size_t in_len, std::uint8_t* out, std::size_t out_len, bool input_ends) {
  using Phase = State::Phase;
  StepResult r;
  Library& lib = library_unchecked();
  State& s = *s_;
  struct inflate_state& st = *s.st;
  const auto fail = [&](const char* kind, std::string message) {
    s.phase = Phase::Failed;
    r.failure = kind;
    r.message = std::move(message);
  };
  // (ISA-L counts in 32 bits: pieces of at most 1 GiB)
  constexpr std::size_t kPiece = std::size_t{1} << 30;
  while (true) {
    if (s.phase == Phase::Ended || s.phase == Phase::Failed) {
      r.ended = s.phase == Phase::Ended;
      return r;
    }
    if (s.phase == Phase::Between) {
      const std::size_t left = in_len - r.consumed;
      const std::uint8_t* p = in + r.consumed;
      if (left < 3 && !input_ends) return r;  // (too few bytes to tell a member from what follows the data)
      if (!(left >= 3 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 8)) {
        s.phase = Phase::Ended;
        continue;
      }
      s.phase = Phase::Header;
      s.start_header();
    }
    if (s.phase == Phase::First || s.phase == Phase::Header) {
      const bool first = s.phase == Phase::First;
      const std::string error = s.read_header(in, in_len, r.consumed);
      if (!error.empty()) {
        fail("data", error);
        return r;
      }
      if (s.part != State::Part::Done) {
        if (!input_ends) return r;
        fail("truncated", "unexpected end of file");
        return r;
      }
      if (first) lib.init(&st);
      else lib.reset(&st);
      st.crc_flag = ISAL_GZIP_NO_HDR_VER;
      s.phase = Phase::Member;
    }
    // Phase::Member
    if (r.produced == out_len) return r;
    const std::size_t in_piece = std::min(in_len - r.consumed, kPiece);
    const std::size_t out_piece = std::min(out_len - r.produced, kPiece);
    st.next_in = const_cast<std::uint8_t*>(in + r.consumed);
    st.avail_in = static_cast<std::uint32_t>(in_piece);
    st.next_out = out + r.produced;
    st.avail_out = static_cast<std::uint32_t>(out_piece);
    const int rc = lib.inflate(&st);
    const std::size_t used = in_piece - st.avail_in, made = out_piece - st.avail_out;
    s.remember(in + r.consumed, used);
    r.consumed += used;
    r.produced += made;
    if (rc == ISAL_INCORRECT_CHECKSUM) {
      // (ISA-L says "checksum" for both trailer fields; zlib checks the CRC first, then the length, and names which)
      fail("data", le32(s.last8) == st.crc ? "incorrect length check" : "incorrect data check");
      return r;
    }
    if (rc < 0) {
      fail("data", zlib_words(rc));
      r.coarse = rc == ISAL_INVALID_BLOCK || rc == ISAL_INVALID_SYMBOL || rc == ISAL_INVALID_LOOKBACK;
      return r;
    }
    if (st.block_state == ISAL_BLOCK_FINISH) {
      s.phase = Phase::Between;
      continue;
    }
    if (st.avail_out == 0) continue;  // (output full: the check at the top returns, or a piece boundary)
    if (r.consumed < in_len) {
      if (used == 0 && made == 0) {  // (no progress with input and room: a state ISA-L does not leave by itself)
        fail("data", "inflate made no progress (ISA-L returned " + std::to_string(rc) + ")");
        return r;
      }
      continue;
    }
    // Every input byte is inside ISA-L and the member is still open.
    if (input_ends) {
      // zlib checks the CRC once its 4 bytes are in, before the length: a file cut inside the length field with a
      // wrong CRC is corrupt, not only truncated. ISA-L holds the trailer bytes it has in tmp_in_buffer meanwhile.
      if (st.block_state == ISAL_CHECKSUM_CHECK && st.tmp_in_size >= 4) {
        if (le32(st.tmp_in_buffer) != st.crc) {
          fail("data", "incorrect data check");
          return r;
        }
      }
      fail("truncated", "unexpected end of file");
    }
    return r;
  }
}

}  // namespace brainlatent::gzip
