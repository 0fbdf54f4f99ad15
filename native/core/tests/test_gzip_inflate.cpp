// ISA-L's streaming gunzip (gzip_inflate.h) against zlib, which writes every gzip file here: the bytes out
// must be the bytes zlib put in, for every way of cutting the input and output into pieces, and every kind
// of damage must fail the way gzip fails (or end the stream where gzip ignores what follows).
// Skips (77) without ISA-L (libisal.so.2) or without zlib at build time.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <limits>

#include "brainlatent/gzip_file_inflater.h"
#include "brainlatent/gzip_inflate.h"
#include "test_util.h"

#ifdef BRAINLATENT_TEST_HAVE_ZLIB
#include <zlib.h>

namespace {
using Bytes = std::vector<std::uint8_t>;
using brainlatent::gzip::Inflater;
using brainlatent::gzip::StepResult;

// One gzip member of `data` at `level`; with a name, a comment, an extra field and (unless not `header_crc`) a header
// CRC when `header`.
Bytes gzip_member(const Bytes& data, int level, bool header = false, bool header_crc = true) {
  z_stream z{};
  deflateInit2(&z, level, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
  gz_header h{};
  std::string name = "betas_session01.nii", comment = "a comment";
  std::uint8_t extra[] = {'B', 'C', 2, 0, 0, 0};
  if (header) {
    h.name = reinterpret_cast<Bytef*>(name.data());
    h.comment = reinterpret_cast<Bytef*>(comment.data());
    h.extra = extra;
    h.extra_len = sizeof extra;
    h.hcrc = header_crc ? 1 : 0;
    deflateSetHeader(&z, &h);
  }
  Bytes out(deflateBound(&z, data.size()) + 256);
  z.next_in = const_cast<Bytef*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  CHECK(rc == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Data like a NIfTI volume's: runs of zeros, smooth int16 values, noise.
Bytes volume_like(std::size_t n, unsigned seed) {
  test::Rng rng(seed);
  Bytes b(n);
  for (std::size_t i = 0; i < n; i += 2) {
    const bool brain = (i / 4096) % 3 != 0;
    const int v = brain ? static_cast<int>(300 * rng.normal()) : 0;
    b[i] = static_cast<std::uint8_t>(v & 0xff);
    if (i + 1 < n) b[i + 1] = static_cast<std::uint8_t>((v >> 8) & 0xff);
  }
  return b;
}

Bytes edit_byte(Bytes b, std::size_t at, std::uint8_t value) {
  b[at] = value;
  return b;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct Outcome {
  Bytes out;
  bool ended = false;
  std::string failure, message;
  std::size_t consumed = 0;  // input bytes used in all
};

// Feeds `gz` `in_piece` bytes at a time (unused input is given again with the next piece, as the readers do)
// into outputs of `out_piece` bytes, until the stream ends or fails.
Outcome inflate_all(const Bytes& gz, std::size_t in_piece, std::size_t out_piece) {
  Inflater inf;
  Outcome o;
  Bytes out(out_piece);
  std::size_t used = 0, given = std::min(gz.size(), in_piece);
  for (int guard = 0; guard < 100000000; ++guard) {
    const StepResult r = inf.step(gz.data() + used, given - used, out.data(), out.size(), given == gz.size());
    o.out.insert(o.out.end(), out.begin(), out.begin() + static_cast<long>(r.produced));
    used += r.consumed;
    if (!r.failure.empty()) {
      o.failure = r.failure;
      o.message = r.message;
      break;
    }
    if (r.ended) {
      o.ended = true;
      break;
    }
    if (r.produced < out.size()) {
      if (given == gz.size()) {
        o.failure = "stalled";  // (the input has ended and the inflater neither failed nor ended)
        break;
      }
      given = std::min(gz.size(), given + in_piece);
    }
  }
  o.consumed = used;
  return o;
}

// `bytes` written to a temporary file and gunzipped from it by FileInflater (reads of `read_bytes`, up to `end`)
// into outputs of `out_piece` bytes; `fd_flags` opens it otherwise (O_WRONLY: every read fails).
Outcome inflate_file(const Bytes& bytes, std::uint64_t end, std::size_t read_bytes, std::size_t out_piece, int fd_flags = O_RDONLY,
                     int* read_errno = nullptr) {
  char path[] = "/tmp/bl-gzip-file-XXXXXX";
  const int w = ::mkstemp(path);
  CHECK(w >= 0);
  CHECK(::write(w, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(w);
  const int fd = ::open(path, fd_flags);
  CHECK(fd >= 0);
  Outcome o;
  {
    brainlatent::gzip::FileInflater inf(fd, end, read_bytes);
    Bytes out(out_piece);
    for (int guard = 0; guard < 100000000; ++guard) {
      const StepResult r = inf.step(out.data(), out.size());
      o.out.insert(o.out.end(), out.begin(), out.begin() + static_cast<long>(r.produced));
      o.consumed += r.consumed;
      if (!r.failure.empty() || r.ended) {
        o.failure = r.failure;
        o.message = r.message;
        o.ended = r.ended;
        break;
      }
      if (r.produced < out.size()) {
        o.failure = "stalled";  // (a step returns short only at the end or a failure)
        break;
      }
    }
    if (read_errno) *read_errno = inf.read_errno();
  }
  ::close(fd);
  ::unlink(path);
  return o;
}

void expect_bytes(const Outcome& o, const Bytes& want, const char* what) {
  if (o.out != want || !o.ended || !o.failure.empty())
    std::fprintf(stderr, "  %s: %zu bytes out of %zu wanted, ended %d, failure '%s' (%s)\n", what, o.out.size(), want.size(),
                 o.ended, o.failure.c_str(), o.message.c_str());
  CHECK(o.out == want);
  CHECK(o.ended);
  CHECK(o.failure.empty());
}

}  // namespace

int main() {
  const auto& info = brainlatent::gzip::inflater_info();
  if (!info.available) {
    std::printf("skipped: ISA-L is not available: %s\n", info.reason.c_str());
    return 77;
  }
  std::printf("ISA-L %s from %s\n", info.version.c_str(), info.library.c_str());

  const Bytes a = volume_like(1 << 20, 1), b = volume_like(70001, 2), c = volume_like(5, 3), empty;
  const Bytes whole = cat({a, b, c});
  const Bytes members = cat({gzip_member(a, 6), gzip_member(b, 1, true), gzip_member(empty, 6, true, false), gzip_member(c, 0)});

  test::run("members: every piece size of input and output", [&] {
    const std::size_t ins[] = {1, 3, 4093, 1 << 20, members.size()};
    const std::size_t outs[] = {1, 50, 65537, 4 << 20};
    for (std::size_t in : ins) {
      for (std::size_t out : outs) {
        if (in < 64 && out < 64) continue;  // (a byte at a time both ways: minutes for 3 MiB, nothing new)
        const Outcome o = inflate_all(members, in, out);
        expect_bytes(o, whole, ("in " + std::to_string(in) + ", out " + std::to_string(out)).c_str());
        CHECK(o.consumed == members.size());
      }
    }
    // A byte at a time through a small member, both ways.
    const Outcome o = inflate_all(gzip_member(b, 9, true), 1, 1);
    expect_bytes(o, b, "b, a byte at a time");
  });

  test::run("stored blocks, an empty file's member, a level-9 member", [&] {
    expect_bytes(inflate_all(gzip_member(a, 0), 1 << 16, 1 << 16), a, "stored");
    expect_bytes(inflate_all(gzip_member(empty, 9), 7, 7), empty, "empty");
    expect_bytes(inflate_all(gzip_member(a, 9), 1 << 20, 1 << 20), a, "level 9");
  });

  test::run("what follows the last member is left unread", [&] {
    const Bytes one = gzip_member(b, 6);
    const Bytes zeros(4096, 0), text = {'h', 'e', 'l', 'l', 'o'}, two = {0x1f, 0x8b}, magic_other = {0x1f, 0x8b, 0x07, 0, 0};
    for (const Bytes& tail : {zeros, text, two, magic_other}) {
      const Bytes file = cat({one, tail});
      for (std::size_t in : {std::size_t{1}, std::size_t{2}, std::size_t{4096}, file.size()}) {
        const Outcome o = inflate_all(file, in, 1 << 16);
        expect_bytes(o, b, ("tail of " + std::to_string(tail.size()) + ", in " + std::to_string(in)).c_str());
        CHECK(o.consumed == one.size());
      }
    }
  });

  test::run("damage fails as gzip fails", [&] {
    const Bytes one = gzip_member(b, 6);
    // CRC-32 and ISIZE of the trailer
    Bytes crc = one;
    crc[crc.size() - 8] ^= 1;
    Outcome o = inflate_all(crc, 4096, 1 << 16);
    CHECK(o.failure == "data");
    CHECK(o.message == "incorrect data check");
    Bytes size = one;
    size[size.size() - 2] ^= 1;
    for (std::size_t in : {std::size_t{1}, std::size_t{4096}}) {
      o = inflate_all(size, in, 1 << 16);
      CHECK(o.failure == "data");
      CHECK(o.message == "incorrect length check");
    }
    // a cut file: inside the data, inside the trailer, inside the header
    for (std::size_t keep : {one.size() - 1, one.size() - 8, one.size() / 2, std::size_t{5}}) {
      const Bytes cut(one.begin(), one.begin() + static_cast<long>(keep));
      o = inflate_all(cut, 100, 1 << 16);
      if (o.failure != "truncated") std::fprintf(stderr, "  cut at %zu: failure '%s' (%s)\n", keep, o.failure.c_str(), o.message.c_str());
      CHECK(o.failure == "truncated");
      CHECK(o.message == "unexpected end of file");
    }
    // cut inside the length field with a wrong CRC: corrupt, as zlib says (it checks the CRC first); a right CRC: truncated
    for (std::size_t in : {std::size_t{1}, std::size_t{4096}}) {
      for (std::size_t cut : {std::size_t{1}, std::size_t{3}, std::size_t{4}}) {
        const Bytes c(crc.begin(), crc.end() - static_cast<long>(cut));
        o = inflate_all(c, in, 1 << 16);
        CHECK(o.failure == "data");
        CHECK(o.message == "incorrect data check");
        const Bytes good(one.begin(), one.end() - static_cast<long>(cut));
        CHECK(inflate_all(good, in, 1 << 16).failure == "truncated");
      }
    }
    // a second member cut short
    o = inflate_all(cat({one, Bytes(one.begin(), one.begin() + 40)}), 4096, 1 << 16);
    CHECK(o.failure == "truncated");
    // a block of the invalid type 3 (the first block's header bits: BFINAL, BTYPE = 11)
    Bytes bad = one;
    bad[10] |= 0x06;
    o = inflate_all(bad, 4096, 1 << 16);
    CHECK(o.failure == "data");
    CHECK(o.message == "invalid block type");
    // an unknown compression method in the second member's header
    Bytes method = cat({one, one});
    method[one.size() + 2] = 7;  // (1f 8b 07: not a member, so the stream has ended)
    expect_bytes(inflate_all(method, 4096, 1 << 16), b, "1f 8b 07 after a member");
    // a header CRC that does not match, and a header name that never ends
    Bytes hcrc = gzip_member(b, 6, true);
    const std::size_t head_end = 10 + 2 + 6 + std::strlen("betas_session01.nii") + 1 + std::strlen("a comment") + 1;
    hcrc[head_end] ^= 1;
    o = inflate_all(hcrc, 1, 1 << 16);
    CHECK(o.failure == "data");
    CHECK(o.message == "header crc mismatch");
    // a long name, read in pieces of any size
    Bytes long_name = gzip_member(b, 6);
    long_name[3] |= 8;
    long_name.insert(long_name.begin() + 10, 70001, 'n');
    long_name[10 + 70000] = 0;
    for (std::size_t in : {std::size_t{1}, std::size_t{4096}}) expect_bytes(inflate_all(long_name, in, 1 << 16), b, "a name of 70,000 bytes");
    // a header that never ends is a truncated file; reserved flags and another method are refused, as zlib refuses them
    Bytes endless = {0x1f, 0x8b, 0x08, 0x08 | 0x02, 0, 0, 0, 0, 0, 3};
    endless.resize(endless.size() + 70000, 'n');
    o = inflate_all(endless, 4096, 64);
    CHECK(o.failure == "truncated");
    o = inflate_all(edit_byte(one, 3, 0x80), 4096, 1 << 16);
    CHECK(o.failure == "data");
    CHECK(o.message == "unknown header flags set");
    o = inflate_all(edit_byte(one, 2, 7), 4096, 1 << 16);
    CHECK(o.failure == "data");
    CHECK(o.message == "unknown compression method");
    // not gzip at all
    o = inflate_all(Bytes{'n', 'o', 't', ' ', 'g', 'z'}, 4096, 64);
    CHECK(o.failure == "data");
    CHECK(o.message == "incorrect header check");
  });

  test::run("random damage in the data never passes unnoticed", [&] {
    const Bytes one = gzip_member(b, 6);
    test::Rng rng(7);
    int caught = 0;
    for (int t = 0; t < 200; ++t) {
      Bytes bad = one;
      const std::size_t at = 10 + static_cast<std::size_t>(rng.uniform() * (one.size() - 18));
      bad[at] ^= static_cast<std::uint8_t>(1 + rng.uniform() * 254);
      const Outcome o = inflate_all(bad, 997, 4099);
      // gzip's CRC-32 catches what the deflate decoder does not (a flip in unused padding bits changes nothing)
      CHECK(!o.failure.empty() || o.out == b);
      caught += !o.failure.empty();
    }
    CHECK(caught >= 190);
  });

  test::run("from a file: every read size, the end given, a failed read", [&] {
    const std::uint64_t all = std::numeric_limits<std::uint64_t>::max();
    const Bytes zeros(4096, 0), text = {'h', 'e', 'l', 'l', 'o'};
    // (reads of 1 and 3 bytes split every header field and the 3 bytes that tell a member from what follows)
    for (std::size_t read : {std::size_t{1}, std::size_t{3}, std::size_t{7}, std::size_t{4093}, std::size_t{1} << 20}) {
      for (std::size_t out : {std::size_t{65537}, std::size_t{4} << 20}) {
        if (read < 8 && out > 65537) continue;
        const std::string what = "file, read " + std::to_string(read) + ", out " + std::to_string(out);
        const Outcome o = inflate_file(members, all, read, out);
        expect_bytes(o, whole, what.c_str());
        CHECK(o.consumed == members.size());
        // what follows the last member is left unread, whatever it is
        for (const Bytes& tail : {zeros, text}) expect_bytes(inflate_file(cat({members, tail}), all, read, out), whole, (what + ", tail").c_str());
      }
    }
    // `end` stops the reads there: before the bytes after the data, or inside a member (a truncated file)
    const Bytes padded = cat({members, text});
    expect_bytes(inflate_file(padded, members.size(), 4093, 65537), whole, "end at the data's end");
    Outcome o = inflate_file(padded, members.size() - 5, 4093, 65537);
    CHECK(o.failure == "truncated");
    CHECK(o.message == "unexpected end of file");
    o = inflate_file(padded, 0, 4093, 65537);
    CHECK(o.failure == "truncated");
    // damage reads as it does from memory
    Bytes crc = gzip_member(b, 6);
    crc[crc.size() - 8] ^= 1;
    o = inflate_file(crc, all, 7, 65537);
    CHECK(o.failure == "data");
    CHECK(o.message == "incorrect data check");
    // a read that fails: the failure "read" with its errno, and nothing more after it
    int err = 0;
    o = inflate_file(members, all, 4093, 65537, O_WRONLY, &err);
    CHECK(o.failure == "read");
    CHECK(err == EBADF);
    CHECK(o.out.empty());
  });

  test::run("after the end or a failure, nothing more", [&] {
    Inflater inf;
    const Bytes one = gzip_member(c, 6);
    Bytes out(64);
    StepResult r = inf.step(one.data(), one.size(), out.data(), out.size(), true);
    CHECK(r.ended && r.produced == c.size());
    r = inf.step(one.data(), one.size(), out.data(), out.size(), true);
    CHECK(r.ended && r.produced == 0 && r.consumed == 0);
  });

  return test::finish();
}

#else
int main() {
  std::printf("skipped: built without zlib, which writes this test's gzip files\n");
  return 77;
}
#endif
