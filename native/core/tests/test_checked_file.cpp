// CheckedFileMap and OnnxModel::load_checked: a model's external data read from the files the caller checked
// (a service's model roots), each opened once, held to the device and inode checked, mapped, and handed to ONNX
// Runtime from memory, so that a link flipped outside the root and back while ONNX Runtime loads is never read.
// The flip is the engine's test hook (BRAINLATENT_TEST_FLIP_LINK/_TO, around ONNX Runtime's session creation).
// A file truncated while mapped (an operator's `cp` over it during a load) is read as zeros past its new end and
// refused, instead of a SIGBUS that ends the process: those parts run in a forked child, so that a SIGBUS is
// reported as a failure here (the truncation during ONNX Runtime's load is the test hook BRAINLATENT_TEST_TRUNCATE).
// The hooks act only with BRAINLATENT_TEST_HOOKS=1 set too (the tests set it where they use them).
// The mapping part runs without ONNX Runtime; the load skips (exit 77 at the end) without one.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "brainlatent/checked_file.h"
#include "brainlatent/error.h"
#include "brainlatent/file_map.h"
#include "brainlatent/ort_model.h"
#include "brainlatent/ort_runtime.h"
#include "onnx_test_models.h"
#include "sd_test_util.h"

using namespace brainlatent;
using namespace onnxtest;
using sdtest::contains;
using sdtest::error_of;
using sdtest::exists;

namespace {

CheckedFile checked_as(const std::string& location, const std::filesystem::path& p, const std::string& what = "") {
  struct stat st {};
  SD_CHECK(::stat(p.c_str(), &st) == 0);
  return {location, p.string(), static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino), what};
}

// y = Add(x, w) with w inside the model (raw_data): a model file whose weights are its own bytes.
std::string inline_add_model(const std::vector<float>& w) {
  Proto node, t, graph, opset, model;
  node.bytes(1, "x").bytes(1, "w").bytes(2, "y").bytes(3, "add").bytes(4, "Add");
  t.num(1, 4).num(2, 1).bytes(8, "w").bytes(9, floats(w));  // dims, FLOAT, name, raw_data
  graph.msg(1, node).bytes(2, "g").msg(5, t).msg(11, float_vector("x", 4)).msg(12, float_vector("y", 4));
  opset.bytes(1, "").num(2, 17);
  model.num(1, 8).msg(7, graph).msg(8, opset);
  return model.b;
}

// a file's modification time (macOS: st_mtimespec)
struct timespec mtim(const struct stat& st) {
#ifdef __APPLE__
  return st.st_mtimespec;
#else
  return st.st_mtim;
#endif
}

std::string link_target(const std::filesystem::path& link) { return std::filesystem::read_symlink(link).string(); }

// Runs `body` in a forked child and returns how it ended: "exit N" or "signal N (name)". The child's checks count
// there (its exit status is its failures): a SIGBUS kills the child, not this test.
template <class F>
std::string in_child(F body) {
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const struct rlimit no_core {0, 0};  // (a SIGBUS leaves no core file behind)
    ::setrlimit(RLIMIT_CORE, &no_core);
    body();
    std::fflush(stdout);
    ::_exit(sdtest::failures() ? 1 : 0);
  }
  int status = 0;
  SD_CHECK(pid > 0 && ::waitpid(pid, &status, 0) == pid);
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status)) + " (" + ::strsignal(WTERMSIG(status)) + ")";
  return "exit " + std::to_string(WEXITSTATUS(status));
}

std::string pages(std::size_t n, char first) {
  std::string s(n * 4096, '\0');
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(first + i / 4096);
  return s;
}

}  // namespace

int main() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "bl-checked-file-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::filesystem::path root = tmpl;
  const std::filesystem::path model = root / "root" / "m";  // a model folder inside a service's root
  const std::filesystem::path outside = root / "outside";   // a file no one checked
  std::filesystem::create_directories(model / "blobs");
  std::filesystem::create_directories(outside);
  write_file((model / "blobs" / "w-in.bin").string(), floats({10, 20, 30, 40}));
  write_file((outside / "w.bin").string(), floats({1000, 2000, 3000, 4000}));
  std::filesystem::create_symlink(model / "blobs" / "w-in.bin", model / "w.bin");

  // SIGBUS ignored by the process's parent (inherited as SIG_IGN) and sent by kill(): still ignored with the guard's
  // handler installed and the .npy readers' explanation asked for (before: their line, and exit 1). A handler
  // installed before the guard's is called, and the errno of the thread it interrupted is left as it was. (First,
  // in children forked before this process maps a guarded file: the guard's handler is installed once a process.)
  {
    const std::string how = in_child([&] {
      SD_CHECK(::signal(SIGBUS, SIG_IGN) != SIG_ERR);
      write_file((model / "ign.bin").string(), pages(1, 'a'));
      CheckedFileMap m = CheckedFileMap::open(checked_as("ign.bin", model / "ign.bin"), "m/model.onnx");
      explain_sigbus_on_mapped_inputs();
      SD_CHECK(::kill(::getpid(), SIGBUS) == 0);
      std::printf("SIGBUS ignored, sent by kill: lived\n");
    });
    SD_CHECK(how == "exit 0");
    const std::string how2 = in_child([&] {
      static volatile sig_atomic_t called = 0;
      SD_CHECK(::signal(SIGBUS, [](int) {
                 called = 1;
                 errno = 0;  // (a handler that does not keep errno)
               }) != SIG_ERR);
      write_file((model / "ign.bin").string(), pages(1, 'a'));
      CheckedFileMap m = CheckedFileMap::open(checked_as("ign.bin", model / "ign.bin"), "m/model.onnx");
      errno = EAGAIN;
      const int sent = ::kill(::getpid(), SIGBUS);
      const int after = errno;
      SD_CHECK(sent == 0 && called == 1);
      SD_CHECK(after == EAGAIN);  // (before: 0, the previous handler's)
    });
    SD_CHECK(how2 == "exit 0");
  }

  // The map: the file's bytes, from the descriptor compared with the file checked.
  {
    const CheckedFile f = checked_as("w.bin", model / "w.bin", "tensor 'w''s external data 'w.bin', which");
    CheckedFileMap m = CheckedFileMap::open(f, "m/model.onnx");
    SD_CHECK(m.size() == 16);
    SD_CHECK(std::memcmp(m.data(), floats({10, 20, 30, 40}).data(), 16) == 0);
    // the link flipped since the check: another file opened, refused in modelRoots.ts's words
    std::filesystem::remove(model / "w.bin");
    std::filesystem::create_symlink(outside / "w.bin", model / "w.bin");
    const std::string e = error_of([&] { CheckedFileMap::open(f, "m/model.onnx"); }, ErrorCode::InvalidModel);
    std::printf("flipped before the open: %s\n", e.c_str());
    SD_CHECK(e == changed_file_message("m/model.onnx", "tensor 'w''s external data 'w.bin', which"));
    SD_CHECK(contains(e, "changed between its check and its reading"));
    // the mapping already made still holds the checked bytes
    SD_CHECK(std::memcmp(m.data(), floats({10, 20, 30, 40}).data(), 16) == 0);
    std::filesystem::remove(model / "w.bin");
    std::filesystem::create_symlink(model / "blobs" / "w-in.bin", model / "w.bin");
    // gone since the check: the same refusal (not a missing file to report by its path)
    CheckedFile gone = f;
    gone.path = (model / "nope.bin").string();
    SD_CHECK(contains(error_of([&] { CheckedFileMap::open(gone, "m/model.onnx"); }, ErrorCode::InvalidModel), "changed between"));
    // a FIFO where the file was: refused at once (O_NONBLOCK), not a hang
    SD_CHECK(::mkfifo((model / "fifo").c_str(), 0600) == 0);
    const CheckedFile fifo = checked_as("fifo", model / "fifo");
    SD_CHECK(contains(error_of([&] { CheckedFileMap::open(fifo, "m/model.onnx"); }, ErrorCode::InvalidModel), "'fifo' changed between"));
    // an empty file: no bytes, a valid pointer
    write_file((model / "empty.bin").string(), "");
    CheckedFileMap e0 = CheckedFileMap::open(checked_as("empty.bin", model / "empty.bin"), "m");
    SD_CHECK(e0.size() == 0 && e0.data() != nullptr);
    // moved: the mapping goes with it
    CheckedFileMap moved = std::move(m);
    SD_CHECK(moved.size() == 16 && m.size() == 0);
  }

  // Truncated while mapped: the pages past the new end read as zeros (not a SIGBUS), and the map says so.
  {
    const std::string three = pages(3, 'a');  // "aaaa…bbbb…cccc…", a page each
    write_file((model / "cut.bin").string(), three);
    const std::string how = in_child([&] {
      CheckedFileMap m = CheckedFileMap::open(checked_as("cut.bin", model / "cut.bin"), "m/model.onnx");
      SD_CHECK(std::string(m.data(), m.size()) == three);
      m.check_unchanged("m/model.onnx");  // (untouched: no throw)
      SD_CHECK(::truncate((model / "cut.bin").c_str(), 4096 + 100) == 0);  // cut inside the second page
      const std::string read(m.data(), m.size());  // (before the guard: SIGBUS here, on the third page)
      SD_CHECK(read.substr(0, 4096) == three.substr(0, 4096));
      SD_CHECK(read.substr(8192) == std::string(4096, '\0'));
      const std::string e = error_of([&] { m.check_unchanged("m/model.onnx"); }, ErrorCode::InvalidModel);
      std::printf("truncated while mapped: %s\n", e.c_str());
      SD_CHECK(e == truncated_file_message("m/model.onnx", "'cut.bin'", (model / "cut.bin").string(), "truncated"));
      SD_CHECK(contains(e, "m/model.onnx: 'cut.bin' changed while it was being loaded (truncated); the model was not loaded"));
      // a mapping not guarded, truncated: its SIGBUS still ends the process (the handler passes on what is not its own)
      write_file((model / "plain.bin").string(), three);
      const int fd = ::open((model / "plain.bin").c_str(), O_RDONLY);
      const void* p = ::mmap(nullptr, three.size(), PROT_READ, MAP_PRIVATE, fd, 0);
      SD_CHECK(::truncate((model / "plain.bin").c_str(), 0) == 0);
      std::fflush(stdout);
      if (sdtest::failures()) ::_exit(1);  // (what failed above, reported before the death below)
      write_file((model / "reached").string(), "1");  // (the guarded reads above lived: the death below is the unguarded read's)
      std::printf("read %d\n", static_cast<const volatile char*>(p)[8192]);  // dies here
      ::_exit(3);
    });
    std::printf("the child: %s\n", how.c_str());
    SD_CHECK(exists((model / "reached").string()));  // (before the guard: the child died of the guarded read)
    SD_CHECK(how == "signal " + std::to_string(SIGBUS) + " (" + ::strsignal(SIGBUS) + ")");  // (the unguarded read's)
    std::filesystem::remove(model / "reached");
    // with the .npy readers' explanation asked for too (file_map.h, after the guard's handler): a guarded fault is
    // still the guard's, any other ends the process with their line and exit code 1, not a bare SIGBUS
    write_file((model / "cut.bin").string(), three);
    const std::string how2 = in_child([&] {
      CheckedFileMap m = CheckedFileMap::open(checked_as("cut.bin", model / "cut.bin"), "m/model.onnx");
      explain_sigbus_on_mapped_inputs();
      SD_CHECK(::truncate((model / "cut.bin").c_str(), 0) == 0);
      SD_CHECK(std::string(m.data(), m.size()) == std::string(three.size(), '\0'));
      SD_CHECK(contains(error_of([&] { m.check_unchanged("m/model.onnx"); }, ErrorCode::InvalidModel), "(truncated)"));
      write_file((model / "plain.bin").string(), three);
      const MappedRange r = map_file_range((model / "plain.bin").string(), 0, three.size());
      SD_CHECK(r.data != nullptr && ::truncate((model / "plain.bin").c_str(), 0) == 0);
      std::fflush(stdout);
      if (sdtest::failures()) ::_exit(2);
      write_file((model / "reached").string(), "1");
      std::printf("read %d\n", static_cast<const volatile char*>(r.data)[8192]);  // ends here, exit code 1
      ::_exit(3);
    });
    std::printf("the child with the .npy readers' explanation: %s\n", how2.c_str());
    SD_CHECK(exists((model / "reached").string()) && how2 == "exit 1");
    std::filesystem::remove(model / "reached");
    // the file rewritten in place without being cut short where it was read: its size or modification time differ
    write_file((model / "cut.bin").string(), three);
    CheckedFileMap m = CheckedFileMap::open(checked_as("cut.bin", model / "cut.bin"), "m/model.onnx");
    write_file((model / "cut.bin").string(), pages(3, 'x'));
    const struct timespec later[2] = {{0, UTIME_OMIT}, {1, 0}};  // (a rewrite within the clock's tick keeps the mtime)
    SD_CHECK(::utimensat(AT_FDCWD, (model / "cut.bin").c_str(), later, 0) == 0);
    const std::string e = error_of([&] { m.check_unchanged("m/model.onnx"); }, ErrorCode::InvalidModel);
    SD_CHECK(contains(e, "'cut.bin' changed while it was being loaded (rewritten)"));
  }
  // Rewritten in place at the same size with its modification time put back (cp -p, rsync --inplace -t): the
  // change time, which no user call sets, still differs (before: the size and mtime matched, no refusal).
  {
    write_file((model / "same.bin").string(), pages(3, 'a'));
    struct stat before {};
    SD_CHECK(::stat((model / "same.bin").c_str(), &before) == 0);
    CheckedFileMap m = CheckedFileMap::open(checked_as("same.bin", model / "same.bin"), "m/model.onnx");
    ::usleep(20000);  // (a later ctime than the open's on a coarse clock too)
    write_file((model / "same.bin").string(), pages(3, 'x'));
    const struct timespec restored[2] = {{0, UTIME_OMIT}, mtim(before)};
    SD_CHECK(::utimensat(AT_FDCWD, (model / "same.bin").c_str(), restored, 0) == 0);
    struct stat after {};
    SD_CHECK(::stat((model / "same.bin").c_str(), &after) == 0 && after.st_size == before.st_size &&
             mtim(after).tv_sec == mtim(before).tv_sec && mtim(after).tv_nsec == mtim(before).tv_nsec);
    const std::string e = error_of([&] { m.check_unchanged("m/model.onnx"); }, ErrorCode::InvalidModel);
    std::printf("rewritten, same size and mtime: %s\n", e.c_str());
    SD_CHECK(contains(e, "'same.bin' changed while it was being loaded (rewritten)"));
  }
  // A bus error in a guarded range of a file whose size and times are unchanged (a disk's or NFS's read error; here
  // a fault's siginfo queued to this process, which Linux allows a process to send itself): refused as such, not as
  // "truncated" (before: "changed while it was being loaded (truncated)").
#ifdef __linux__
  {
    write_file((model / "unread.bin").string(), pages(3, 'a'));
    const std::string how = in_child([&] {
      CheckedFileMap m = CheckedFileMap::open(checked_as("unread.bin", model / "unread.bin"), "m/model.onnx");
      siginfo_t fault {};
      fault.si_signo = SIGBUS;
      fault.si_code = BUS_ADRERR;
      fault.si_addr = m.data() + 4096 + 10;
      SD_CHECK(::syscall(SYS_rt_sigqueueinfo, ::getpid(), SIGBUS, &fault) == 0);
      const std::string read(m.data(), m.size());
      SD_CHECK(read.substr(0, 4096) == pages(1, 'a') && read.substr(4096) == std::string(8192, '\0'));  // zeros from its page on
      const std::string e = error_of([&] { m.check_unchanged("m/model.onnx"); }, ErrorCode::InvalidModel);
      std::printf("a read error in the mapping: %s\n", e.c_str());
      SD_CHECK(contains(e, "m/model.onnx: 'unread.bin' could not be read while it was being loaded (a read error, or the file was cut "
                           "and restored); the model was not loaded"));
    });
    SD_CHECK(how == "exit 0");
  }
#endif

  const char* env_lib = std::getenv("BRAINLATENT_ORT_LIB");
  const std::string lib = env_lib && *env_lib ? env_lib : BRAINLATENT_TEST_ORT_LIB;
  if (!exists(lib)) {
    std::filesystem::remove_all(root);
    std::printf("test_checked_file: ONNX Runtime part SKIPPED, no library at %s\n", lib.c_str());
    return sdtest::failures() ? sdtest::finish("test_checked_file") : 77;
  }
  OrtSessionConfig c;
  c.intra_threads = 1;
  const std::string graph = add_model("w.bin");
  const std::vector<float> inside_sum{11, 22, 33, 44}, outside_sum{1001, 2002, 3003, 4004};
  if (!ort_test_hooks_compiled()) {
    std::filesystem::remove_all(root);
    std::printf("test_checked_file: ONNX Runtime part SKIPPED, the engine was built without its test hooks (BRAINLATENT_TEST_HOOKS=OFF)\n");
    return sdtest::failures() ? sdtest::finish("test_checked_file") : 77;
  }

  // The external data file truncated after the engine mapped it, while ONNX Runtime copies it (the test hook): a
  // clean refusal naming the file, not a SIGBUS (in a child, before this process loads ONNX Runtime and its threads).
  {
    write_file((model / "cut-w.bin").string(), floats({10, 20, 30, 40}));
    const CheckedFile f = checked_as("w.bin", model / "cut-w.bin", "tensor 'w''s external data 'w.bin', which");
    const std::string how = in_child([&] {
      // the hooks' variables alone do nothing: a checkout's build deployed as a service ignores a stray one
      ::setenv("BRAINLATENT_TEST_TRUNCATE", (model / "cut-w.bin").c_str(), 1);
      SD_CHECK(run_add(*OnnxModel::load_checked(graph.data(), graph.size(), "m/model.onnx", {f}, lib, c)) == inside_sum);
      SD_CHECK(std::filesystem::file_size(model / "cut-w.bin") == 16);  // (before: truncated, the load refused)
      ::setenv("BRAINLATENT_TEST_HOOKS", "1", 1);  // the tests' opt-in
      const std::string e =
          error_of([&] { OnnxModel::load_checked(graph.data(), graph.size(), "m/model.onnx", {f}, lib, c); }, ErrorCode::InvalidModel);
      std::printf("truncated during the load: %s\n", e.c_str());
      SD_CHECK(contains(e, "m/model.onnx: tensor 'w''s external data 'w.bin', which changed while it was being loaded (truncated); "
                           "the model was not loaded"));
      SD_CHECK(contains(e, (model / "cut-w.bin").string()));
      ::unsetenv("BRAINLATENT_TEST_TRUNCATE");
      // the same file whole again: it loads (the refusal left nothing behind)
      write_file((model / "cut-w.bin").string(), floats({10, 20, 30, 40}));
      SD_CHECK(run_add(*OnnxModel::load_checked(graph.data(), graph.size(), "m/model.onnx",
                                                {checked_as("w.bin", model / "cut-w.bin")}, lib, c)) == inside_sum);
    });
    std::printf("the load's child: %s\n", how.c_str());
    SD_CHECK(how == "exit 0");  // (before the guard: signal 7, Bus error)
  }

  // The link flipped outside while ONNX Runtime creates the session, and back right after (the test hook).
  ::setenv("BRAINLATENT_TEST_HOOKS", "1", 1);
  ::setenv("BRAINLATENT_TEST_FLIP_LINK", (model / "w.bin").c_str(), 1);
  ::setenv("BRAINLATENT_TEST_FLIP_TO", (outside / "w.bin").c_str(), 1);
  {
    // by the folder (what a service did before): ONNX Runtime opens w.bin by its path; 1.30 follows the link and
    // refuses it as escaping the model's folder (its own check, by path as well, just before its own read)
    const std::string e = error_of([&] { OnnxModel::load_bytes(graph.data(), graph.size(), "m/model.onnx", model.string(), lib, c); },
                                   ErrorCode::InvalidModel);
    std::printf("external data by path, flipped during the load: %s\n", e.c_str());
    SD_CHECK(link_target(model / "w.bin") == (model / "blobs" / "w-in.bin").string());  // flipped back after
  }
  {
    // a model.onnx that is a link, loaded by its path (what a service did before for a folder without links out):
    // ONNX Runtime reads the model the link leads to during the load, the outside one, and nothing after sees it
    write_file((model / "blobs" / "model-in.onnx").string(), inline_add_model({10, 20, 30, 40}));
    write_file((outside / "model.onnx").string(), inline_add_model({1000, 2000, 3000, 4000}));
    std::filesystem::create_symlink(model / "blobs" / "model-in.onnx", model / "model.onnx");
    ::setenv("BRAINLATENT_TEST_FLIP_LINK", (model / "model.onnx").c_str(), 1);
    ::setenv("BRAINLATENT_TEST_FLIP_TO", (outside / "model.onnx").c_str(), 1);
    const auto y = run_add(*OnnxModel::load((model / "model.onnx").string(), lib, c));
    std::printf("model.onnx by path, flipped during the load: y = %g %g %g %g\n", y[0], y[1], y[2], y[3]);
    SD_CHECK(y == outside_sum);  // (the hook works: this is the gap the checked files close)
    SD_CHECK(link_target(model / "model.onnx") == (model / "blobs" / "model-in.onnx").string());  // flipped back after
    // the same model from the bytes of the file checked (modelRoots.ts reads them from the descriptor it checked)
    const std::string in_bytes = inline_add_model({10, 20, 30, 40});
    SD_CHECK(run_add(*OnnxModel::load_checked(in_bytes.data(), in_bytes.size(), "m/model.onnx", {}, lib, c)) == inside_sum);
    ::setenv("BRAINLATENT_TEST_FLIP_LINK", (model / "w.bin").c_str(), 1);
    ::setenv("BRAINLATENT_TEST_FLIP_TO", (outside / "w.bin").c_str(), 1);
  }
  {
    // from the checked file: the bytes of the file checked, whatever the link leads to during the load
    const CheckedFile f = checked_as("w.bin", model / "blobs" / "w-in.bin");
    auto m = OnnxModel::load_checked(graph.data(), graph.size(), "m/model.onnx", {f}, lib, c);
    SD_CHECK(m->path() == "m/model.onnx");
    SD_CHECK(run_add(*m) == inside_sum);
    // the checked file rewritten after the load: ONNX Runtime copied the weights, the maps are gone
    write_file((model / "blobs" / "w-in.bin").string(), floats({7, 7, 7, 7}));
    SD_CHECK(run_add(*m) == inside_sum);
    write_file((model / "blobs" / "w-in.bin").string(), floats({10, 20, 30, 40}));
    // checked as the link's path (the real file's identity): opened now through the link, still the file checked
    const CheckedFile via_link = checked_as("w.bin", model / "w.bin");
    SD_CHECK(run_add(*OnnxModel::load_checked(graph.data(), graph.size(), "m/model.onnx", {via_link}, lib, c)) == inside_sum);
  }
  ::unsetenv("BRAINLATENT_TEST_FLIP_LINK");
  ::unsetenv("BRAINLATENT_TEST_FLIP_TO");
  ::unsetenv("BRAINLATENT_TEST_HOOKS");

  // An external data file shorter than its tensor needs (`head -c`, or `cp` of another file over it before the load):
  // refused as the model's fault naming the tensor and the file. With the caller's reading of the graph (furthest),
  // when the file is opened; without it, ONNX Runtime's refusal in the same class (before: an OrtFailure, "External
  // initializer: w offset: 0 size to read: 16 given file_length: 8 are out of bounds …", a service's 500).
  {
    write_file((model / "short.bin").string(), floats({10, 20}));
    CheckedFile f = checked_as("w.bin", model / "short.bin");
    const std::string backstop =
        error_of([&] { OnnxModel::load_checked(graph.data(), graph.size(), "m/model.onnx", {f}, lib, c); }, ErrorCode::InvalidModel);
    std::printf("a short file, ONNX Runtime's refusal: %s\n", backstop.c_str());
    SD_CHECK(contains(backstop, "cannot load m/model.onnx: tensor 'w' needs bytes past the end of its external data file 'w.bin', "
                                "which has 8 bytes (truncated or the wrong file)"));
    f.furthest = {"w", 0, 16};
    const std::string e =
        error_of([&] { OnnxModel::load_checked(graph.data(), graph.size(), "m/model.onnx", {f}, lib, c); }, ErrorCode::InvalidModel);
    SD_CHECK(e == short_file_message("m/model.onnx", f.furthest, "w.bin", 8));
    SD_CHECK(contains(e, "m/model.onnx: tensor 'w' needs bytes 0..16 of 'w.bin', which has 8 bytes (truncated or the wrong file)"));
    // an offset past the end, and one whose end overflows: refused alike; a file of exactly the bytes needed loads
    f.furthest = {"w", 4096, 16};
    SD_CHECK(contains(error_of([&] { CheckedFileMap::open(f, "m/model.onnx"); }, ErrorCode::InvalidModel), "needs bytes 4096..4112 of 'w.bin'"));
    f.furthest = {"w", 4, ~std::uint64_t{0}};
    SD_CHECK(contains(error_of([&] { CheckedFileMap::open(f, "m/model.onnx"); }, ErrorCode::InvalidModel), "which has 8 bytes"));
    // an unnamed tensor (a Constant node's value moved to external data) is checked alike, named by where it is
    // (before: an empty name was taken for no tensor given, and the short file went unchecked to ONNX Runtime)
    f.furthest = {"", 0, 16, "the 'value' attribute of Constant node 'c'"};
    SD_CHECK(contains(error_of([&] { CheckedFileMap::open(f, "m/model.onnx"); }, ErrorCode::InvalidModel),
                      "m/model.onnx: an unnamed tensor (the 'value' attribute of Constant node 'c') needs bytes 0..16 of 'w.bin'"));
    // ONNX Runtime's own refusal of a tensor whose name holds spaces: the name whole (before: "tensor 'my'")
    SD_CHECK(contains(ort::short_file_problem("External initializer: my weight offset: 0 size to read: 16 given file_length: 8 are out of "
                                              "bounds or can not be read in full.", {{"w.bin", 8}}),
                      "tensor 'my weight' needs bytes past the end of its external data file 'w.bin', which has 8 bytes"));
    write_file((model / "short.bin").string(), floats({10, 20, 30, 40}));
    f = checked_as("w.bin", model / "short.bin");
    f.furthest = {"w", 0, 16};
    SD_CHECK(run_add(*OnnxModel::load_checked(graph.data(), graph.size(), "m/model.onnx", {f}, lib, c)) == inside_sum);
    // loaded by the folder (no roots): ONNX Runtime's refusal, naming the tensor
    std::filesystem::create_directories(model / "short");
    write_file((model / "short" / "w.bin").string(), floats({10, 20}));
    const std::string by_folder = error_of(
        [&] { OnnxModel::load_bytes(graph.data(), graph.size(), "m/model.onnx", (model / "short").string(), lib, c); }, ErrorCode::InvalidModel);
    std::printf("a short file by the folder: %s\n", by_folder.c_str());
    SD_CHECK(contains(by_folder, "cannot load m/model.onnx: tensor 'w' needs bytes past the end of its external data file"));
  }
  // A graph initializer's location not among the files: ONNX Runtime refuses it (it does not look for it by path).
  {
    write_file((model / "other.bin").string(), floats({1, 1, 1, 1}));
    const CheckedFile other = checked_as("other.bin", model / "other.bin");
    const std::string e =
        error_of([&] { OnnxModel::load_checked(graph.data(), graph.size(), "m/model.onnx", {other}, lib, c); }, ErrorCode::OrtFailure);
    std::printf("w.bin not handed over: %s\n", e.c_str());
    SD_CHECK(contains(e, "cannot load m/model.onnx") && contains(e, "w.bin not found"));
  }
  // A subgraph's tensor (an If branch's initializer): ONNX Runtime reads it only by path, which the checked load
  // does not allow: refused, saying why (it would otherwise be read from wherever the link leads).
  {
    using Entries = std::vector<std::pair<std::string, std::string>>;
    const std::string ifm = if_model(Entries{{"location", "w.bin"}, {"length", "16"}});
    const CheckedFile f = checked_as("w.bin", model / "blobs" / "w-in.bin");
    const std::string e = error_of([&] { OnnxModel::load_checked(ifm.data(), ifm.size(), "m/if.onnx", {f}, lib, c); }, ErrorCode::InvalidModel);
    std::printf("a subgraph's external tensor: %s\n", e.c_str());
    SD_CHECK(contains(e, "a subgraph's tensor"));
  }
  // The checked file replaced before the engine opens it: refused, nothing loaded.
  {
    const CheckedFile f = checked_as("w.bin", model / "w.bin");
    std::filesystem::remove(model / "w.bin");
    std::filesystem::create_symlink(outside / "w.bin", model / "w.bin");
    const std::string e = error_of([&] { OnnxModel::load_checked(graph.data(), graph.size(), "m/model.onnx", {f}, lib, c); }, ErrorCode::InvalidModel);
    SD_CHECK(contains(e, "m/model.onnx: 'w.bin' changed between its check and its reading"));
  }
  std::filesystem::remove_all(root);
  return sdtest::finish("test_checked_file");
}
