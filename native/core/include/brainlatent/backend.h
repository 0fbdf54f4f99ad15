// The compute backend seam: device buffers and the operations the solvers (and the sampler) run
// on them. Everything numeric that touches a large array goes through a Backend, so a new device
// is one more implementation of this class plus its build flag (ggml's ggml-backend-impl.h and
// himalaya's backend modules are the models). The CPU implementation (src/cpu/) runs on
// BLAS/LAPACK; a CUDA one (src/cuda/, cuBLAS/cuSOLVER + kernels) fills the same table.
//
// Conventions:
// - Matrices are row-major views into buffers (View<T>: buffer, element offset, rows, cols, ld).
// - Buffers are either Device (allocated by the backend; what its operations read and write) or
//   Host (a caller's host memory — a JS typed array — wrapped without copying). On host backends
//   (CPU) both kinds are directly usable by every operation: the seam is zero-copy there. A device
//   backend accepts only Device buffers in operations; copy() moves data between the two, and is
//   the only host↔device transfer in the interface.
// - Operations are issued in order on the backend's queue (a CUDA stream); they may return before
//   they finish. Anything that returns a value to the host (cholesky's success, first_nonfinite,
//   a copy into a Host buffer) waits for the queue; synchronize() waits explicitly.
// - Every allocation (and every workspace an operation takes) is counted: memory_stats() gives the
//   live and peak bytes, and set_memory_limit() turns a budget into a hard bound that fails with
//   ErrorCode::OutOfMemory instead of growing past it.
// - Failures throw brainlatent::Error; nothing aborts the process.
//
// Adding an operation: add an Op, declare a virtual method here whose default throws
// unsupported(op), implement it in each backend that can, and add its case to
// tests/test_backend_ops.cpp. supports(op, dtype) says which backends have it.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "brainlatent/error.h"
#include "brainlatent/sd_fused_step.h"

namespace brainlatent {

enum class DType : std::uint8_t { F32, F64, I32, U8 };
std::size_t dtype_size(DType t);
const char* dtype_name(DType t);

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::I32; };
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::U8; };

class Backend;

enum class Residence : std::uint8_t {
  Device,  // allocated by the backend: operands of its operations
  Host,    // caller-owned host memory wrapped in place (zero copy); operands only on host backends
};

// A block of memory owned by (or registered with) one backend. Not copyable; destroyed through
// its release function (freeing device memory, or nothing for wrapped host memory).
class Buffer {
 public:
  Buffer(Backend* backend, DType dtype, std::size_t count, void* data, Residence residence,
         std::function<void(void*)> release)
      : backend_(backend), dtype_(dtype), count_(count), data_(data), residence_(residence), release_(std::move(release)) {}
  ~Buffer() {
    if (release_) release_(data_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  Backend& backend() const { return *backend_; }
  DType dtype() const { return dtype_; }
  std::size_t count() const { return count_; }
  std::size_t bytes() const { return count_ * dtype_size(dtype_); }
  Residence residence() const { return residence_; }
  // Element 0: a device address for Device buffers of a device backend, else a host address.
  void* data() const { return data_; }

 private:
  Backend* backend_;
  DType dtype_;
  std::size_t count_;
  void* data_;
  Residence residence_;
  std::function<void(void*)> release_;
};
using BufferPtr = std::unique_ptr<Buffer>;

// A row-major rows × cols matrix inside a buffer: element (i, j) is element
// offset + i·ld + j of the buffer. A vector is a 1 × n view. An empty view (buf == nullptr)
// stands for "absent" where an operation takes an optional operand.
template <typename T>
struct View {
  Buffer* buf = nullptr;
  std::int64_t offset = 0, rows = 0, cols = 0, ld = 0;

  bool empty() const { return buf == nullptr; }
  std::int64_t size() const { return rows * cols; }
  bool contiguous() const { return ld == cols || rows <= 1; }
  // Address of element (0, 0): host or device, as the buffer's data().
  T* ptr() const { return static_cast<T*>(buf->data()) + offset; }
  View block(std::int64_t i0, std::int64_t j0, std::int64_t nr, std::int64_t nc) const {
    return View{buf, offset + i0 * ld + j0, nr, nc, ld};
  }
  View row_range(std::int64_t i0, std::int64_t nr) const { return block(i0, 0, nr, cols); }
  View col_range(std::int64_t j0, std::int64_t nc) const { return block(0, j0, rows, nc); }
  // A contiguous buffer region reshaped as rows × cols (only for contiguous views).
  View reshape(std::int64_t nr, std::int64_t nc) const { return View{buf, offset, nr, nc, nc}; }
};
using ViewF = View<float>;
using ViewD = View<double>;
using ViewI = View<std::int32_t>;

// Whole-buffer views (rows × cols must fit in it; checked).
template <typename T>
View<T> view(const Buffer& b, std::int64_t rows, std::int64_t cols, std::int64_t offset = 0) {
  if (b.dtype() != dtype_of<T>::value)
    throw Error(ErrorCode::InvalidArgument, std::string("view: buffer of ") + dtype_name(b.dtype()) + " viewed as " +
                                                dtype_name(dtype_of<T>::value));
  if (rows < 0 || cols < 0 || offset < 0 || static_cast<std::size_t>(offset + rows * cols) > b.count())
    throw Error(ErrorCode::InvalidArgument, "view: " + std::to_string(rows) + "×" + std::to_string(cols) + " at " +
                                                std::to_string(offset) + " does not fit a buffer of " + std::to_string(b.count()));
  return View<T>{const_cast<Buffer*>(&b), offset, rows, cols, cols};
}
template <typename T>
View<T> vec(const Buffer& b, std::int64_t n, std::int64_t offset = 0) {
  return view<T>(b, 1, n, offset);
}

// The operations of the interface, for supports() and the op test.
enum class Op : std::uint8_t {
  Gemm, Syrk, Eigh, Cholesky, CholeskySolve, CholeskyInverse,   // BLAS / LAPACK
  Copy, Fill, Convert, Axpby, ScaleRowsCols, AddOuter, AddBroadcast, RowSums, ColSums,  // element-wise
  Shrink, ShrinkTargets,                                        // ridge: scaling by 1/(λ+α)
  Tridiagonalize, TriShrink, TriShrinkTargets,                  // ridge: the same along a tridiagonal basis
  FoldStats, Score, SelectBest, Improve,                        // ridge: per-target scores, best alpha
  FirstNonFinite,
  SamplerInit, SamplerStep,                                     // the sampler's fused step (sd_fused_step.h)
  Count_
};
const char* op_name(Op op);

// The diagonal shrinkage of ridge along an eigenbasis: the weight of eigenvalue λ at strength α.
enum class Shrink : std::uint8_t {
  Inverse,         // 1 / (λ + α)     (predictions and the primal refit)
  Complement,      // α / (λ + α)     (residuals of the kernel form)
  SqrtInverse,     // √(1 / (λ + α))  (leverage factors)
  SqrtComplement,  // √(α / (λ + α))
};
// Which axis of the source the eigenvalues index.
enum class Axis : std::uint8_t { Rows, Cols };

enum class ScoreKind : std::uint8_t { R2, Pearson };

// A target whose spread within a fold is no more than float32 rounding of its level is constant
// there: its SST is 0 and the fold scores 0 for it. Rounding to float32 moves a value by at most
// half an ulp, and an ulp is at most 2⁻²³ of the value, so values within 4 ulps of one another have
// an SD of at most 2 ulps ≤ 4·2⁻²⁴ of their level: constant means a relative SD ≤ 4·2⁻²⁴ (2.4e-7),
// SST ≤ (4·2⁻²⁴)²·(level²·m + Σy²) with y the centred values. A target with a resolved spread (tens
// of ulps of its level, relative SD ~3e-6 at a level of 1e3) is scored. The one constant-target rule
// of every ridge solver (fold_stats applies it).
constexpr double kConstantTargetRelVar = 0x1p-44;  // (4·2⁻²⁴)²

struct MemoryStats {
  std::size_t live = 0;   // bytes allocated now (buffers + operation workspaces)
  std::size_t peak = 0;   // most bytes allocated at once since the last reset_peak()
  std::size_t limit = 0;  // set_memory_limit() bound (0: none)
};

// One batch of the sampler's buffers on a backend (sd_fused_step.h): x and the history slots
// persist across steps, eps is the U-Net's output and unet_in its next input. Every view is
// contiguous (rows × per_image); on a device backend they are Device buffers, so that a whole
// denoising loop runs there without host round-trips (the U-Net runner binds the same buffers).
struct SamplerBatch {
  std::int64_t images = 0, per_image = 0;
  int groups = 1;                     // 2 with classifier-free guidance ([uncond rows; cond rows])
  ViewF x;                            // images × n
  ViewF history[kHistorySlots];       // images × n each; empty where the plan uses none
  ViewF eps;                          // groups·images × n
  ViewF unet_in;                      // groups·images × n
  ViewF step_noise;                   // images × n: this step's noise; empty: Philox
  std::vector<NoiseKey> keys;         // per image (a few bytes, passed with the launch)
};

class Backend {
 public:
  virtual ~Backend() = default;

  // ---- identity
  virtual std::string name() const = 0;         // "cpu", "cuda"
  virtual std::string description() const = 0;  // the device and library, for logs
  virtual bool supports(Op op, DType dtype) const = 0;
  // True when a float64 eigendecomposition costs no more than a float32 one here (a data-centre GPU,
  // whose float64 rate is half its float32 one): the ridge engine then takes float64 wherever its
  // precision rule would have accepted float32.
  virtual bool prefers_float64_eigh() const { return false; }

  // ---- memory
  // Uninitialised device memory for `count` elements. OutOfMemory when the limit or the device is exceeded.
  virtual BufferPtr alloc(DType dtype, std::size_t count) = 0;
  // Caller-owned host memory as a Host buffer, not copied: the caller keeps it alive and unchanged
  // while the buffer is used.
  virtual BufferPtr wrap_host(void* data, DType dtype, std::size_t count) = 0;
  // Backend-owned host memory (pinned on a GPU, for fast transfers): a Host buffer for staging.
  virtual BufferPtr alloc_host(DType dtype, std::size_t count) = 0;
  // True when Device buffers are host memory (the CPU): callers may then read and write their
  // data() directly instead of staging through copy().
  virtual bool host_visible() const = 0;
  // Bytes a new allocation can still get (device free memory; physical memory on the CPU).
  virtual std::size_t memory_available() const = 0;
  // 2-D copy between any two buffers of this backend (host→device, device→host, device→device).
  // Shapes must match; a copy onto itself is a no-op.
  virtual void copy(const ViewF& src, const ViewF& dst) = 0;
  virtual void copy(const ViewD& src, const ViewD& dst) = 0;
  virtual void copy(const ViewI& src, const ViewI& dst) = 0;
  // Waits until every operation issued so far has finished.
  virtual void synchronize() = 0;

  MemoryStats memory_stats() const { return {live_.load(), peak_.load(), limit_.load()}; }
  void reset_peak() { peak_.store(live_.load()); }
  // A hard bound on live bytes (0 removes it). Allocations past it throw OutOfMemory.
  void set_memory_limit(std::size_t bytes) { limit_.store(bytes); }

  // ---- BLAS / LAPACK
  // C = α·op(A)·op(B) + β·C; op(A) is m×k, op(B) k×n, C m×n.
  virtual void gemm(bool trans_a, bool trans_b, float alpha, const ViewF& a, const ViewF& b, float beta, const ViewF& c) = 0;
  virtual void gemm(bool trans_a, bool trans_b, double alpha, const ViewD& a, const ViewD& b, double beta, const ViewD& c) = 0;
  // trans = false: C = α·A·Aᵀ + β·C (A rows×k, C rows×rows); trans = true: C = α·Aᵀ·A + β·C
  // (C k×k). Both triangles of C are written.
  virtual void syrk(bool trans, float alpha, const ViewF& a, float beta, const ViewF& c) = 0;
  // Symmetric eigendecomposition (divide and conquer) of the n×n matrix in a, in place: row k of a
  // becomes the k-th eigenvector; w (1×n) gets the eigenvalues in ascending order.
  virtual void eigh(const ViewF& a, const ViewF& w) = 0;
  virtual void eigh(const ViewD& a, const ViewD& w) = 0;
  // The float32 eigh() with its workspace in `scratch` (a contiguous buffer the caller writes next,
  // overwritten here) where that holds eigh_scratch_count(n) floats: its pages serve twice instead
  // of the workspace's being faulted in fresh and freed. 0 where the backend takes none (the default).
  virtual std::size_t eigh_scratch_count(std::int64_t n) const {
    (void)n;
    return 0;
  }
  virtual void eigh_in_scratch(const ViewF& a, const ViewF& w, const ViewF& scratch) {
    (void)scratch;
    eigh(a, w);
  }
  // Reduction of the symmetric n×n matrix in a to tridiagonal form, in place: A = Q T Qᵀ, row k of a
  // becoming Q's column k (as eigh leaves its eigenvectors); d (1×n) gets T's diagonal and e (1×n)
  // its off-diagonal (e[k] = T(k, k+1), e[n − 1] = 0). False, a untouched, where the matrix's scale is
  // outside what the reduction takes unscaled: the caller decomposes it with eigh() instead. Ridge's
  // shrinkage f(A) = Q f(T) Qᵀ then needs no eigenvalues, only solves with T + αI (tri_shrink): the
  // exact kernel route's basis, without the eigensolver's tridiagonal step and back-transform.
  // `scratch`: as eigh_in_scratch's (may be empty; used where it holds eigh_scratch_count(n) floats).
  virtual bool tridiagonalize(const ViewF& a, const ViewF& d, const ViewF& e, const ViewF& scratch) {
    (void)a, (void)d, (void)e, (void)scratch;
    unsupported(Op::Tridiagonalize, DType::F32);
  }
  virtual bool tridiagonalize(const ViewD& a, const ViewD& d, const ViewD& e) {
    (void)a, (void)d, (void)e;
    unsupported(Op::Tridiagonalize, DType::F64);
  }
  // Cholesky factor of the SPD n×n matrix a, in place (the factor's layout is the backend's, for
  // the two calls below). False when a is not positive definite.
  virtual bool cholesky(const ViewF& a) = 0;
  virtual bool cholesky(const ViewD& a) = 0;
  // Solves A·X = B in place for B (n × cols) from A's cholesky() factor.
  virtual void cholesky_solve(const ViewF& factor, const ViewF& b) = 0;
  virtual void cholesky_solve(const ViewD& factor, const ViewD& b) = 0;
  // A⁻¹ from A's cholesky() factor, in place, both triangles.
  virtual void cholesky_inverse(const ViewF& a) = 0;
  virtual void cholesky_inverse(const ViewD& a) = 0;

  // ---- element-wise kernels (double arithmetic inside, stored in the destination's type)
  virtual void fill(const ViewF& a, float value) = 0;
  virtual void fill(const ViewD& a, double value) = 0;
  // dst = scale·src + shift + diag·I (I the identity of the view's shape).
  virtual void convert(const ViewF& src, const ViewD& dst, double scale = 1, double shift = 0, double diag = 0) = 0;
  virtual void convert(const ViewD& src, const ViewF& dst, double scale = 1, double shift = 0, double diag = 0) = 0;
  // y = α·x + β·y
  virtual void axpby(float alpha, const ViewF& x, float beta, const ViewF& y) = 0;
  // a[i, j] *= r[i]·c[j]; an empty r or c counts as ones.
  virtual void scale_rows_cols(const ViewF& a, const ViewD& r, const ViewD& c) = 0;
  // a += α·u·vᵀ; an empty u or v counts as a vector of ones.
  virtual void add_outer(const ViewF& a, double alpha, const ViewD& u, const ViewD& v) = 0;
  // a[i, j] += r[i] + c[j] + shift; an empty r or c counts as zeros.
  virtual void add_broadcast(const ViewF& a, const ViewD& r, const ViewD& c, double shift) = 0;
  // out (1×rows) = scale·Σ_j a[i, j];  col_sums: out (1×cols) = scale·Σ_i a[i, j]. Float64 sums.
  virtual void row_sums(const ViewF& a, const ViewD& out, double scale = 1) = 0;
  virtual void col_sums(const ViewF& a, const ViewD& out, double scale = 1) = 0;

  // ---- ridge kernels
  // Scaling by the ridge shrinkage: for each of the A alphas, block a of dst (rows × cols, stacked
  // along rows: dst is A·rows × cols) = src with the entry of eigen-index k multiplied by
  // w(lam[k], alphas[a]); k is the column index (axis Cols) or the row index (axis Rows).
  virtual void shrink(const ViewF& src, const ViewD& lam, const ViewD& alphas, Shrink kind, Axis axis, const ViewF& dst) = 0;
  // dst[k, j] = src[k, j]·w(lam[k], alpha[j]): every target (column) at its own alpha. dst may be src.
  virtual void shrink_targets(const ViewF& src, const ViewD& lam, const ViewD& alpha, Shrink kind, const ViewF& dst) = 0;
  // shrink() along a tridiagonal basis (T: diagonal d, off-diagonal e, e[k] = T(k, k+1), as from
  // tridiagonalize), the rows of src indexed by it: for each of the A alphas, block a of dst
  // (A·rows × cols) is F·src with, for T + αI = L D Lᵀ (L unit lower bidiagonal),
  //   Inverse  (T + αI)⁻¹          Complement      α(T + αI)⁻¹
  //   SqrtInverse  D^-½ L⁻¹        SqrtComplement  √α·D^-½ L⁻¹
  // (the square roots as factors: (F·src)ᵀ(F·src) = srcᵀ f(T) src, as shrink's √ weights give in an
  // eigenbasis). T + αI must be positive definite (no pivoting). dst may be src when A is 1.
  virtual void tri_shrink(const ViewF& src, const ViewD& d, const ViewD& e, const ViewD& alphas, Shrink kind, const ViewF& dst) {
    (void)src, (void)d, (void)e, (void)alphas, (void)kind, (void)dst;
    unsupported(Op::TriShrink, DType::F32);
  }
  // Column j of dst = F_j · column j of src with F_j as tri_shrink's at alpha[j] (Inverse or
  // Complement): every target at its own alpha. dst may be src.
  virtual void tri_shrink_targets(const ViewF& src, const ViewD& d, const ViewD& e, const ViewD& alpha, Shrink kind, const ViewF& dst) {
    (void)src, (void)d, (void)e, (void)alpha, (void)kind, (void)dst;
    unsupported(Op::TriShrinkTargets, DType::F32);
  }
  // Per fold v (rows fold_start[v]..fold_start[v+1]) and column j of y (n × t): sum[v, j] = Σy and
  // sst[v, j] = Σ(y − ȳ)², set to 0 when the target is constant in the fold up to float32 rounding
  // of its level (kConstantTargetRelVar; level[j] is the column's offset, e.g. its removed mean).
  virtual void fold_stats(const ViewF& y, const std::vector<std::int64_t>& fold_start, const ViewD& level,
                          const ViewD& sum, const ViewD& sst) = 0;
  // Scores `blocks` stacked predictions of one fold (pred is blocks·m × t) against y (m × t) and
  // adds weight·score to acc[b, j] (acc is blocks × t). residual = false: pred + offset[j] is the
  // prediction; residual = true: pred holds y − ŷ. sum and sst are the fold's row of fold_stats.
  // R²: 1 − SSE/SST; Pearson: r(ŷ, y). A column with SST 0 (constant) scores 0, as does a
  // constant prediction under Pearson.
  virtual void score(const ViewF& pred, std::int64_t blocks, const ViewF& y, const ViewD& offset, bool residual, ScoreKind kind,
                     const ViewD& sum, const ViewD& sst, double weight, const ViewD& acc) = 0;
  // Per column j of scores (A × t): the best row by score among rows with skip[a] == 0; exact ties
  // go to the larger alpha. Writes its index, score and alpha (each 1 × t). Needs one unskipped row.
  virtual void select_best(const ViewD& scores, const std::vector<double>& alphas, const std::vector<char>& skip,
                           const ViewI& best_index, const ViewD& best_score, const ViewD& best_alpha) = 0;
  // Where score[j] > best_score[j] strictly: best_score = score, best_index = index, best_tag = tag.
  virtual void improve(const ViewD& score, const ViewI& index, std::int32_t tag, const ViewD& best_score,
                       const ViewI& best_index, const ViewI& best_tag) = 0;
  // Row-major position (i·cols + j) of the first NaN/Inf in a, or −1 when all finite.
  virtual std::int64_t first_nonfinite(const ViewF& a) = 0;

  // ---- sampler kernels (sd_fused_step.h)
  // x = a·z + s·noise per image (noise empty: Philox stream 0 of the image's key) and the first
  // U-Net input, first_in_scale · x, into every guidance group. z and noise are images × n.
  virtual void sampler_init(const SamplerBatch& b, const ViewF& z, const ViewF& noise, double a, double s, double first_in_scale) {
    (void)b, (void)z, (void)noise, (void)a, (void)s, (void)first_in_scale;
    unsupported(Op::SamplerInit, DType::F32);
  }
  // One compiled step (compile_step() for the batch's groups and guidance): reads eps, updates x and
  // the history, writes the next U-Net input. Philox noise is drawn on the device from the keys.
  virtual void sampler_step(const CompiledStep& step, const SamplerBatch& b) {
    (void)step, (void)b;
    unsupported(Op::SamplerStep, DType::F32);
  }

 protected:
  // Counts an allocation against the limit (throws OutOfMemory past it) / releases it.
  void count_alloc(std::size_t bytes, const char* what);
  void count_free(std::size_t bytes);
  [[noreturn]] void unsupported(Op op, DType dtype) const;

 private:
  std::atomic<std::size_t> live_{0}, peak_{0}, limit_{0};
};

// ---- registry
struct BackendInfo {
  std::string name;        // "cpu", "cuda"
  bool compiled = false;   // built into this engine
  bool available = false;  // compiled and usable on this machine now
  std::string detail;      // the device when available, else why not
};
// Every backend the engine knows, compiled or not, and why each missing one is missing.
std::vector<BackendInfo> list_backends();
// "auto" (the first available of cuda, cpu), "cpu" or "cuda". A backend that is not compiled or
// not usable throws ErrorCode::BackendUnavailable with the reason; an unknown name, InvalidArgument.
std::unique_ptr<Backend> make_backend(const std::string& name);

}  // namespace brainlatent
