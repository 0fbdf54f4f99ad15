// The CUDA backend: one device, one stream, cuBLAS for GEMM/SYRK/TRSM, cuSOLVER for the symmetric
// eigendecomposition (syevd) and Cholesky, and the kernels of cuda_kernels.cu for the rest. Device
// buffers come from the stream-ordered allocator (cudaMallocAsync on the device's default pool,
// kept cached between a fit's batches); Host buffers are the caller's memory (wrap_host) or
// pinned memory (alloc_host) for staging. Matrices are row-major views; cuBLAS is column-major, so
// a row-major m×n matrix is passed as the column-major n×m matrix it is in memory and products are
// computed transposed (Cᵀ = op(B)ᵀ·op(A)ᵀ), which costs nothing.
//
// TF32 is off (results must match the CPU backend to float32 rounding); BRAINLATENT_CUDA_TF32=1
// allows cuBLAS to use TF32 tensor cores for float32 products. Large float32 products run as
// 3xTF32 instead (each operand split into two TF32 parts, three tensor-core GEMMs; float32's
// accuracy at several times SGEMM's rate, the split in bounded panels): BRAINLATENT_CUDA_F32_GEMM
// = auto (the default: products of at least kSplitMin in every dimension, on sm_80 and newer),
// sgemm (never) or 3xtf32 (every product: the op test's way to check it). BRAINLATENT_CUDA_DEVICE
// (or the backend name "cuda:N") picks the device.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <limits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "brainlatent/backend.h"
#include "brainlatent/parallel.h"
#include "brainlatent/profile.h"
#include "../backend_checks.h"
#include "cuda_kernels.h"

namespace brainlatent {
namespace {

using i64 = std::int64_t;
using checks::dims;
using checks::need_shape;
using checks::need_vec;
using checks::vstep;

[[noreturn]] void fail_cuda(cudaError_t e, const std::string& what) {
  cudaGetLastError();  // clear a sticky-free error so the next call is not blamed for it
  const std::string msg = "CUDA " + what + ": " + cudaGetErrorString(e);
  if (e == cudaErrorMemoryAllocation) throw Error::allocation_failed(msg);
  throw Error(ErrorCode::BackendUnavailable, msg);
}
void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail_cuda(e, what);
}
void ck(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return;
  const std::string msg = std::string("cuBLAS ") + what + " failed with status " + std::to_string(static_cast<int>(st));
  if (st == CUBLAS_STATUS_ALLOC_FAILED) throw Error::allocation_failed(msg);
  throw Error(ErrorCode::Internal, msg);
}
void ck(cusolverStatus_t st, const char* what) {
  if (st == CUSOLVER_STATUS_SUCCESS) return;
  const std::string msg = std::string("cuSOLVER ") + what + " failed with status " + std::to_string(static_cast<int>(st));
  if (st == CUSOLVER_STATUS_ALLOC_FAILED) throw Error::allocation_failed(msg);
  throw Error(ErrorCode::Internal, msg);
}

cuda::DVec dvec(const ViewD& v) { return v.empty() ? cuda::DVec{} : cuda::DVec{v.ptr(), vstep(v)}; }
int ld_of(i64 ld) {
  if (ld > INT_MAX) throw Error(ErrorCode::InvalidArgument, "matrix leading dimension too large for cuBLAS' 32-bit API");
  return static_cast<int>(std::max<i64>(1, ld));
}
int dim_of(i64 n) {
  if (n > INT_MAX) throw Error(ErrorCode::InvalidArgument, "matrix dimension too large for cuBLAS' 32-bit API");
  return static_cast<int>(n);
}

enum class F32Gemm { Auto, Sgemm, Split };
std::atomic<int> g_live_backends{0};  // CUDA backends alive in this process (the split scratch's share)
constexpr i64 kSplitMin = 512;  // (smaller products: the split's passes and three launches cost more than they save)

F32Gemm env_f32_gemm() {
  const char* e = std::getenv("BRAINLATENT_CUDA_F32_GEMM");
  if (!e || !*e || std::strcmp(e, "auto") == 0) return F32Gemm::Auto;
  if (std::strcmp(e, "sgemm") == 0) return F32Gemm::Sgemm;
  if (std::strcmp(e, "3xtf32") == 0) return F32Gemm::Split;
  throw Error(ErrorCode::InvalidArgument,
              std::string("BRAINLATENT_CUDA_F32_GEMM: expected auto, sgemm or 3xtf32, got '") + e + "'");
}

int env_device() {
  const char* e = std::getenv("BRAINLATENT_CUDA_DEVICE");
  return e && *e ? std::atoi(e) : 0;
}

// The device's description, or why it cannot be used.
bool probe(int device, std::string& detail) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    detail = std::string("no usable CUDA device: ") + cudaGetErrorString(e);
    return false;
  }
  if (count == 0) {
    detail = "no CUDA device on this machine";
    return false;
  }
  if (device < 0 || device >= count) {
    detail = "CUDA device " + std::to_string(device) + " requested but this machine has " + std::to_string(count) + " (0.." +
             std::to_string(count - 1) + ")";
    return false;
  }
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, device) != cudaSuccess) {
    cudaGetLastError();
    detail = "cannot read the properties of CUDA device " + std::to_string(device);
    return false;
  }
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  detail = "CUDA device " + std::to_string(device) + ": " + p.name + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
           std::to_string(p.totalGlobalMem >> 20) + " MiB), runtime " + std::to_string(runtime) + ", driver " + std::to_string(driver);
  return true;
}

class CudaBackend;

// An operation's profile scope (profile.h). With BRAINLATENT_PROFILE_SYNC=1 it waits for the stream
// before the scope closes, so that each operation's time is its own device time rather than whatever
// queued work the next synchronising call happened to wait for.
class OpScope {
 public:
  OpScope(const CudaBackend* be, const char* name, double flops = 0);
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  const CudaBackend* be_;
  profile::Scope scope_;
};

class CudaBackend final : public Backend {
  friend class OpScope;

 public:
  explicit CudaBackend(int device) : device_(device) {
    std::string detail;
    if (!probe(device, detail)) throw Error(ErrorCode::BackendUnavailable, "backend 'cuda': " + detail);
    description_ = detail;
    // The settings first, so that a bad one is refused before any stream or handle exists.
    const char* tf32 = std::getenv("BRAINLATENT_CUDA_TF32");
    tf32_ = tf32 && std::strcmp(tf32, "1") == 0;
    f32_gemm_ = env_f32_gemm();
    int major = 0;
    ck(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_), "reading the compute capability");
    if (major < 8 && f32_gemm_ == F32Gemm::Split)
      throw Error(ErrorCode::BackendUnavailable, "BRAINLATENT_CUDA_F32_GEMM=3xtf32: " + description_ + " has no TF32 tensor cores (sm_80 or newer)");
    ck(cudaSetDevice(device_), "cudaSetDevice");
    ck(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    // Keep freed blocks in the pool (a fit allocates and frees per batch).
    cudaMemPool_t pool;
    if (cudaDeviceGetDefaultMemPool(&pool, device_) == cudaSuccess) {
      std::uint64_t keep = UINT64_MAX;
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
      pool_ = pool;
    }
    ck(cublasCreate(&blas_), "cublasCreate");
    ck(cublasSetStream(blas_, stream_), "cublasSetStream");
    ck(cublasSetMathMode(blas_, tf32_ ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    ck(cusolverDnCreate(&solver_), "cusolverDnCreate");
    ck(cusolverDnSetStream(solver_, stream_), "cusolverDnSetStream");
    ck(cudaMallocAsync(reinterpret_cast<void**>(&scratch_), 64, stream_), "cudaMallocAsync");
    if (tf32_) description_ += ", TF32 allowed";
    // (H100/H200: 2 — their float64 syevd measured as fast as float32's, 0.54 against 0.64 s at 8,000)
    if (cudaDeviceGetAttribute(&fp64_ratio_, cudaDevAttrSingleToDoublePrecisionPerfRatio, device_) != cudaSuccess) cudaGetLastError();
    const char* psync = std::getenv("BRAINLATENT_PROFILE_SYNC");
    profile_sync_ = profile::enabled() && psync && std::strcmp(psync, "1") == 0;
    if (major < 8 || tf32_) f32_gemm_ = F32Gemm::Sgemm;
    if (f32_gemm_ == F32Gemm::Auto) description_ += ", float32 GEMMs from " + std::to_string(kSplitMin) + "³ as 3xTF32";
    if (f32_gemm_ == F32Gemm::Split) description_ += ", every float32 GEMM as 3xTF32";
    // The split operands' scratch: up to 1/32 of the device, at most 4 GiB, shared by the backends alive
    // at once (ridge_cv_fit_many's fits: each one's share of the device leaves 15 % outside the fits'
    // budgets) (BRAINLATENT_CUDA_SPLIT_SCRATCH: floats, for tests of the panel loop).
    std::size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) cudaGetLastError();
    split_cap_ = static_cast<i64>(std::min<std::size_t>(std::size_t{1} << 30, total_b / 32 / sizeof(float)));
    if (const char* cap = std::getenv("BRAINLATENT_CUDA_SPLIT_SCRATCH"); cap && *cap) split_cap_ = std::max<i64>(16, std::atoll(cap));
    const char* poison = std::getenv("BRAINLATENT_CUDA_POISON");
    poison_ = poison && std::strcmp(poison, "1") == 0;
    g_live_backends.fetch_add(1);
  }
  ~CudaBackend() override {
    g_live_backends.fetch_sub(1);
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    if (scratch_) cudaFreeAsync(scratch_, stream_);
    if (split_buf_) cudaFreeAsync(split_buf_, stream_);
    cudaStreamSynchronize(stream_);
    if (solver_) cusolverDnDestroy(solver_);
    if (blas_) cublasDestroy(blas_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  std::string name() const override { return "cuda"; }
  bool prefers_float64_eigh() const override { return fp64_ratio_ > 0 && fp64_ratio_ <= 2; }
  std::string description() const override { return description_; }
  bool supports(Op op, DType dtype) const override {
    switch (op) {
      case Op::Gemm:
      case Op::Eigh:
      case Op::Cholesky:
      case Op::CholeskySolve:
      case Op::Fill: return dtype == DType::F32 || dtype == DType::F64;
      case Op::Copy: return dtype == DType::F32 || dtype == DType::F64 || dtype == DType::I32;
      case Op::CholeskyInverse: return dtype == DType::F32 || dtype == DType::F64;
      case Op::Convert: return dtype == DType::F32 || dtype == DType::F64;
      case Op::SelectBest:
      case Op::Improve: return dtype == DType::F64;
      // (the exact kernel route keeps its eigenbasis here: cuSOLVER's syevd)
      case Op::Tridiagonalize:
      case Op::TriShrink:
      case Op::TriShrinkTargets:
      case Op::Count_: return false;
      default: return dtype == DType::F32;
    }
  }

  // ---- memory
  BufferPtr alloc(DType dtype, std::size_t count) override {
    const std::size_t bytes = count * dtype_size(dtype);
    count_alloc(bytes, "allocating a device buffer");
    void* p = nullptr;
    if (bytes > 0) {
      const cudaError_t e = cudaMallocAsync(&p, bytes, stream_);
      if (e != cudaSuccess) {
        cudaGetLastError();
        count_free(bytes);
        const std::string msg = "allocating " + std::to_string(bytes) + " bytes on " + description_ + " failed (" +
                                cudaGetErrorString(e) + "; " + std::to_string(memory_available() >> 20) + " MiB free)";
        if (e == cudaErrorMemoryAllocation) throw Error::allocation_failed(msg);
        throw Error(ErrorCode::BackendUnavailable, msg);
      }
      // Tests: new buffers full of NaN, so that an operation reading memory nobody wrote shows.
      if (poison_) ck(cudaMemsetAsync(p, 0xFF, bytes, stream_), "poisoning a new buffer");
    }
    return std::make_unique<Buffer>(this, dtype, count, p, Residence::Device, [this, bytes](void* q) {
      if (q) cudaFreeAsync(q, stream_);
      count_free(bytes);
    });
  }
  BufferPtr alloc_host(DType dtype, std::size_t count) override {
    const std::size_t bytes = count * dtype_size(dtype);
    void* p = nullptr;
    if (bytes > 0) ck(cudaMallocHost(&p, bytes), "cudaMallocHost (pinned staging memory)");
    return std::make_unique<Buffer>(this, dtype, count, p, Residence::Host, [this](void* q) {
      if (!q) return;
      cudaStreamSynchronize(stream_);  // a copy may still read it
      cudaFreeHost(q);
    });
  }
  BufferPtr wrap_host(void* data, DType dtype, std::size_t count) override {
    return std::make_unique<Buffer>(this, dtype, count, data, Residence::Host, [this](void*) {
      cudaStreamSynchronize(stream_);  // the caller may free or reuse its memory after this
    });
  }
  bool host_visible() const override { return false; }
  std::size_t memory_available() const override {
    std::size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    if (pool_) {  // blocks the pool keeps for reuse are free for this backend
      std::uint64_t reserved = 0, used = 0;
      cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &reserved);
      cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrUsedMemCurrent, &used);
      if (reserved > used) free_b += static_cast<std::size_t>(reserved - used);
    }
    return free_b;
  }

  template <typename T>
  void copy_impl(const View<T>& src, const View<T>& dst) {
    OpScope ps(this, "op copy");
    need_shape(dst, src.rows, src.cols, "copy", "destination");
    if (src.size() == 0 || (src.ptr() == dst.ptr() && src.ld == dst.ld)) return;
    const std::size_t w = static_cast<std::size_t>(src.cols) * sizeof(T);
    // Into pageable host memory never touched yet (a fit's coefficients: 1.9 GB at NSD's c shape), the
    // copy would take its page faults one by one (1.4 s of a 13 s fit on an H200's VM): touch the pages
    // first, in parallel. (Contiguous destinations only: a strided view's gaps are not ours to write.)
    if (dst.buf->residence() == Residence::Host && dst.contiguous() && !pinned(dst.buf) && w * static_cast<std::size_t>(src.rows) >= (std::size_t{64} << 20))
      touch_pages(reinterpret_cast<char*>(dst.ptr()), w * static_cast<std::size_t>(src.rows));
    if ((src.contiguous() && dst.contiguous()) || src.rows == 1) {
      ck(cudaMemcpyAsync(dst.ptr(), src.ptr(), w * static_cast<std::size_t>(src.rows), cudaMemcpyDefault, stream_), "copy");
    } else {
      ck(cudaMemcpy2DAsync(dst.ptr(), static_cast<std::size_t>(dst.ld) * sizeof(T), src.ptr(), static_cast<std::size_t>(src.ld) * sizeof(T), w,
                           static_cast<std::size_t>(src.rows), cudaMemcpyDefault, stream_),
         "copy");
    }
    // A copy into host memory returns the data: wait for it.
    if (dst.buf->residence() == Residence::Host) synchronize();
  }
  static bool pinned(const Buffer* b) {
    cudaPointerAttributes at{};
    if (cudaPointerGetAttributes(&at, b->data()) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return at.type == cudaMemoryTypeHost;
  }
  // Writes a zero into each 4 KiB page of [p, p + bytes) (p's first page from its own start), so the
  // kernel maps them all before the copy fills them.
  static void touch_pages(char* p, std::size_t bytes) {
    constexpr std::size_t kPage = 4096;
    const std::uintptr_t first = (reinterpret_cast<std::uintptr_t>(p) + kPage - 1) & ~(kPage - 1);
    const std::uintptr_t end = reinterpret_cast<std::uintptr_t>(p) + bytes;
    if (first >= end) return;
    const i64 pages = static_cast<i64>((end - first + kPage - 1) / kPage);
    parallel_for(0, pages, 256, [&](i64 b, i64 e) {
      for (i64 k = b; k < e; ++k) *reinterpret_cast<volatile char*>(first + static_cast<std::uintptr_t>(k) * kPage) = 0;
    });
  }
  void copy(const ViewF& src, const ViewF& dst) override { copy_impl(src, dst); }
  void copy(const ViewD& src, const ViewD& dst) override { copy_impl(src, dst); }
  void copy(const ViewI& src, const ViewI& dst) override { copy_impl(src, dst); }
  void synchronize() override { ck(cudaStreamSynchronize(stream_), "synchronize"); }

  // ---- BLAS / LAPACK
  void need_device(const void* buf_owner_check, Buffer* b, const char* op) const {
    (void)buf_owner_check;
    if (b && b->residence() != Residence::Device)
      throw Error(ErrorCode::InvalidArgument, std::string(op) + ": the cuda backend operates on device buffers; copy() host data first");
  }

  template <typename T>
  void gemm_impl(bool ta, bool tb, T alpha, const View<T>& a, const View<T>& b, T beta, const View<T>& c) {
    const auto [m, n, k] = checks::gemm(ta, tb, a, b, c);
    OpScope ps(this, sizeof(T) == 4 ? "op gemm f32" : "op gemm f64", 2.0 * double(m) * double(n) * double(k));
    if (m == 0 || n == 0) return;
    need_device(nullptr, a.buf, "gemm");
    need_device(nullptr, b.buf, "gemm");
    need_device(nullptr, c.buf, "gemm");
    if (k == 0) {  // C = β·C
      if (beta == T(0)) fill_impl(c, T(0));
      else scale(c, beta);
      return;
    }
    // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ.
    const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if constexpr (sizeof(T) == 4) {
      const bool split = f32_gemm_ == F32Gemm::Split || (f32_gemm_ == F32Gemm::Auto && std::min({m, n, k}) >= kSplitMin);
      if (split && gemm_3xtf32(ta, tb, alpha, a, b, beta, c, m, n, k)) return;
    }
    if constexpr (sizeof(T) == 4)
      ck(cublasSgemm(blas_, opb, opa, dim_of(n), dim_of(m), dim_of(k), &alpha, b.ptr(), ld_of(b.ld), a.ptr(), ld_of(a.ld), &beta, c.ptr(),
                     ld_of(c.ld)),
         "sgemm");
    else
      ck(cublasDgemm(blas_, opb, opa, dim_of(n), dim_of(m), dim_of(k), &alpha, b.ptr(), ld_of(b.ld), a.ptr(), ld_of(a.ld), &beta, c.ptr(),
                     ld_of(c.ld)),
         "dgemm");
  }
  // The split operands' scratch (not counted against the fit's budget: bounded by split_cap_, and a
  // product that cannot have it runs as SGEMM instead).
  float* split_scratch(i64 floats) {
    const std::size_t bytes = static_cast<std::size_t>(floats) * sizeof(float);
    if (bytes <= split_bytes_) return split_buf_;
    if (split_buf_) cudaFreeAsync(split_buf_, stream_);
    split_buf_ = nullptr;
    split_bytes_ = 0;
    void* p = nullptr;
    if (cudaMallocAsync(&p, bytes, stream_) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    split_buf_ = static_cast<float*>(p);
    split_bytes_ = bytes;
    return split_buf_;
  }

  // C = α·op(A)·op(B) + β·C as 3xTF32 (cuda::split_tf32): op(A) in row panels of h rows and op(B)
  // in column panels of w columns, each panel split once into contiguous hi/lo copies, and per
  // block the three products, the small terms first. False (nothing done) when no panel fits.
  bool gemm_3xtf32(bool ta, bool tb, float alpha, const ViewF& a, const ViewF& b, float beta, const ViewF& c, i64 m, i64 n, i64 k) {
    i64 cap = std::max<i64>(16, split_cap_ / std::max(1, g_live_backends.load())), h = m, w = n;
    const auto panels = [&] {
      h = m, w = n;
      if (2 * (m * k + k * n) > cap) {
        if (4 * m * k <= cap) w = (cap - 2 * m * k) / (2 * k);
        else if (4 * k * n <= cap) h = (cap - 2 * k * n) / (2 * k);
        else h = w = cap / (4 * k);
      }
      // (a panel edge inside a matrix on a multiple of 128: the next panel's columns then start aligned)
      // (panels under 128 — tests' small scratch — stay as they are)
      const auto edge = [](i64 v, i64 whole) { return v >= whole ? whole : v >= 128 ? v / 128 * 128 : v; };
      h = edge(h, m);
      w = edge(w, n);
    };
    panels();
    const i64 least = f32_gemm_ == F32Gemm::Split ? 1 : std::min<i64>(kSplitMin, std::min(m, n));
    // (profiled: why a product fell back to SGEMM, once per process)
    const auto fallback = [&](const char* why) {
      if (profile::enabled()) {
        static std::atomic<bool> said{false};
        if (!said.exchange(true))
          std::fprintf(stderr, "cuda: a %lld×%lld×%lld float32 product as SGEMM: %s (panels %lld×%lld, scratch cap %lld floats)\n",
                       (long long)m, (long long)n, (long long)k, why, (long long)h, (long long)w, (long long)cap);
      }
      return false;
    };
    if (h < least || w < least) return fallback("no panel fits the split scratch");
    // The split copies' leading dimensions padded to 4 floats (16 bytes), as tensor-core kernels want.
    const auto pad = [](i64 v) { return (v + 3) / 4 * 4; };
    const auto scratch_floats = [&] { return 2 * (pad(h) * pad(k) + pad(k) * pad(w)); };
    float* buf = split_scratch(scratch_floats());
    // (a device short of memory: smaller panels, down to a sixteenth)
    for (int tries = 0; !buf && tries < 4 && cap > 16; ++tries) {
      cap /= 2;
      panels();
      if (h < least || w < least) break;
      buf = split_scratch(scratch_floats());
    }
    if (!buf) return fallback("the split scratch could not be allocated");
    OpScope ps(this, "op gemm f32 (3xTF32 part)", 2.0 * double(m) * double(n) * double(k));
    const i64 a_size = pad(h) * pad(k), b_size = pad(k) * pad(w);
    float *ah = buf, *al = buf + a_size, *bh = al + a_size, *bl = bh + b_size;
    const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const float one = 1.0f;
    // (B in one panel: split once, not again for each panel of A)
    const bool b_whole = w >= n;
    const auto split_b = [&](i64 j0, i64 ww) {
      const ViewF bp = tb ? b.row_range(j0, ww) : b.col_range(j0, ww);
      const int ldb = ld_of(pad(bp.cols));
      cuda::split_tf32(bp.ptr(), bp.rows, bp.cols, bp.ld, bh, bl, ldb, stream_);
      return ldb;
    };
    const int ldb_whole = b_whole ? split_b(0, n) : 0;
    for (i64 i0 = 0; i0 < m; i0 += h) {
      const i64 hh = std::min(h, m - i0);
      // op(A)'s rows i0.. are A's rows (stored hh × k) or, transposed, A's columns (stored k × hh).
      const ViewF ap = ta ? a.col_range(i0, hh) : a.row_range(i0, hh);
      const int lda = ld_of(pad(ap.cols));
      cuda::split_tf32(ap.ptr(), ap.rows, ap.cols, ap.ld, ah, al, lda, stream_);
      for (i64 j0 = 0; j0 < n; j0 += w) {
        const i64 ww = std::min(w, n - j0);
        const int ldb = b_whole ? ldb_whole : split_b(j0, ww);
        const ViewF cp = c.row_range(i0, hh).col_range(j0, ww);
        const float* terms[3][2] = {{bh, al}, {bl, ah}, {bh, ah}};
        for (int q = 0; q < 3; ++q)
          ck(cublasGemmEx(blas_, opb, opa, dim_of(ww), dim_of(hh), dim_of(k), &alpha, terms[q][0], CUDA_R_32F, ldb, terms[q][1], CUDA_R_32F,
                          lda, q == 0 ? &beta : &one, cp.ptr(), CUDA_R_32F, ld_of(c.ld), CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
             "3xTF32 gemm");
      }
    }
    return true;
  }

  void scale(const ViewF& c, float beta) { cuda::axpby(0.0f, c.ptr(), c.ld, beta, c.ptr(), c.ld, c.rows, c.cols, stream_); }
  void scale(const ViewD& c, double beta) { cuda::scale_f64(c.ptr(), c.rows, c.cols, c.ld, beta, stream_); }
  void gemm(bool ta, bool tb, float alpha, const ViewF& a, const ViewF& b, float beta, const ViewF& c) override {
    gemm_impl(ta, tb, alpha, a, b, beta, c);
  }
  void gemm(bool ta, bool tb, double alpha, const ViewD& a, const ViewD& b, double beta, const ViewD& c) override {
    gemm_impl(ta, tb, alpha, a, b, beta, c);
  }

  void syrk(bool trans, float alpha, const ViewF& a, float beta, const ViewF& c) override {
    const i64 n = trans ? a.cols : a.rows, k = trans ? a.rows : a.cols;
    need_shape(c, n, n, "syrk", "C");
    OpScope ps(this, "op syrk", double(n) * double(n) * double(k));
    if (n == 0) return;
    need_device(nullptr, a.buf, "syrk");
    need_device(nullptr, c.buf, "syrk");
    if (k == 0) {
      if (beta == 0.0f) fill_impl(c, 0.0f);
      else scale(c, beta);
      return;
    }
    // a in memory is the column-major M = Aᵀ (cols × rows). AᵀA = M·Mᵀ (OP_N), A·Aᵀ = Mᵀ·M (OP_T).
    // cuBLAS writes the column-major lower triangle = the row-major upper one; then mirrored.
    ck(cublasSsyrk(blas_, CUBLAS_FILL_MODE_LOWER, trans ? CUBLAS_OP_N : CUBLAS_OP_T, dim_of(n), dim_of(k), &alpha, a.ptr(), ld_of(a.ld), &beta,
                   c.ptr(), ld_of(c.ld)),
       "ssyrk");
    cuda::symmetrize_f32(c.ptr(), n, c.ld, stream_);
  }

  // A counted device workspace for one library call.
  struct Workspace {
    CudaBackend* be;
    void* p = nullptr;
    std::size_t bytes = 0;
    Workspace(CudaBackend* b, std::size_t n, const char* what) : be(b), bytes(n) {
      be->count_alloc(bytes, what);
      if (bytes == 0) return;
      const cudaError_t e = cudaMallocAsync(&p, bytes, be->stream_);
      if (e != cudaSuccess) {
        be->count_free(bytes);
        fail_cuda(e, std::string(what) + " (" + std::to_string(bytes) + " bytes)");
      }
    }
    ~Workspace() {
      if (p) cudaFreeAsync(p, be->stream_);
      be->count_free(bytes);
    }
  };

  int read_info() {
    int info = 0;
    ck(cudaMemcpyAsync(&info, scratch_, sizeof(int), cudaMemcpyDeviceToHost, stream_), "reading a solver's status");
    synchronize();
    return info;
  }

  template <typename T>
  void eigh_impl(const View<T>& a, const View<T>& w) {
    const i64 n = a.rows;
    need_shape(a, n, n, "eigh", "A");
    need_vec(w, n, "eigh", "w");
    if (n == 0) return;
    if (!w.contiguous()) throw Error(ErrorCode::InvalidArgument, "eigh: w must be contiguous");
    need_device(nullptr, a.buf, "eigh");
    need_device(nullptr, w.buf, "eigh");
    OpScope ps(this, sizeof(T) == 4 ? "op eigh f32" : "op eigh f64");
    int lwork = 0;
    // Symmetric input: its column-major reading is the same matrix, and the eigenvectors come back
    // as columns of the column-major result, i.e. rows of the row-major one, as the seam defines.
    if constexpr (sizeof(T) == 4)
      ck(cusolverDnSsyevd_bufferSize(solver_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, dim_of(n), a.ptr(), ld_of(a.ld), w.ptr(), &lwork),
         "syevd workspace");
    else
      ck(cusolverDnDsyevd_bufferSize(solver_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, dim_of(n), a.ptr(), ld_of(a.ld), w.ptr(), &lwork),
         "syevd workspace");
    Workspace ws(this, static_cast<std::size_t>(lwork) * sizeof(T), "eigendecomposition workspace");
    if constexpr (sizeof(T) == 4)
      ck(cusolverDnSsyevd(solver_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, dim_of(n), a.ptr(), ld_of(a.ld), w.ptr(),
                          static_cast<T*>(ws.p), lwork, scratch_),
         "syevd");
    else
      ck(cusolverDnDsyevd(solver_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, dim_of(n), a.ptr(), ld_of(a.ld), w.ptr(),
                          static_cast<T*>(ws.p), lwork, scratch_),
         "syevd");
    const int info = read_info();
    if (info != 0)
      throw Error(ErrorCode::NumericalFailure, "symmetric eigendecomposition of " + dims(n, n) + " on the GPU did not converge (cuSOLVER info " +
                                                   std::to_string(info) + ")");
  }
  void eigh(const ViewF& a, const ViewF& w) override { eigh_impl(a, w); }
  void eigh(const ViewD& a, const ViewD& w) override { eigh_impl(a, w); }

  // The factor: cuSOLVER's column-major lower Cholesky factor L (A = L·Lᵀ) in place.
  template <typename T>
  bool cholesky_impl(const View<T>& a) {
    OpScope ps(this, "op cholesky");
    need_shape(a, a.rows, a.rows, "cholesky", "A");
    const i64 n = a.rows;
    if (n == 0) return true;
    need_device(nullptr, a.buf, "cholesky");
    int lwork = 0;
    if constexpr (sizeof(T) == 4)
      ck(cusolverDnSpotrf_bufferSize(solver_, CUBLAS_FILL_MODE_LOWER, dim_of(n), a.ptr(), ld_of(a.ld), &lwork), "potrf workspace");
    else
      ck(cusolverDnDpotrf_bufferSize(solver_, CUBLAS_FILL_MODE_LOWER, dim_of(n), a.ptr(), ld_of(a.ld), &lwork), "potrf workspace");
    Workspace ws(this, static_cast<std::size_t>(lwork) * sizeof(T), "Cholesky workspace");
    if constexpr (sizeof(T) == 4)
      ck(cusolverDnSpotrf(solver_, CUBLAS_FILL_MODE_LOWER, dim_of(n), a.ptr(), ld_of(a.ld), static_cast<T*>(ws.p), lwork, scratch_), "potrf");
    else
      ck(cusolverDnDpotrf(solver_, CUBLAS_FILL_MODE_LOWER, dim_of(n), a.ptr(), ld_of(a.ld), static_cast<T*>(ws.p), lwork, scratch_), "potrf");
    return read_info() == 0;
  }
  bool cholesky(const ViewF& a) override { return cholesky_impl(a); }
  bool cholesky(const ViewD& a) override { return cholesky_impl(a); }

  // A·X = B for row-major B (n × cols) = column-major Bᵀ: Xᵀ = Bᵀ·L⁻ᵀ·L⁻¹, two right-side solves.
  template <typename T>
  void cholesky_solve_impl(const View<T>& f, const View<T>& b) {
    OpScope ps(this, "op cholesky_solve");
    need_shape(f, b.rows, b.rows, "cholesky_solve", "factor");
    if (b.size() == 0) return;
    need_device(nullptr, f.buf, "cholesky_solve");
    need_device(nullptr, b.buf, "cholesky_solve");
    const T one = 1;
    const int m = dim_of(b.cols), n = dim_of(b.rows);
    if constexpr (sizeof(T) == 4) {
      ck(cublasStrsm(blas_, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, CUBLAS_DIAG_NON_UNIT, m, n, &one, f.ptr(), ld_of(f.ld),
                     b.ptr(), ld_of(b.ld)),
         "strsm");
      ck(cublasStrsm(blas_, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT, m, n, &one, f.ptr(), ld_of(f.ld),
                     b.ptr(), ld_of(b.ld)),
         "strsm");
    } else {
      ck(cublasDtrsm(blas_, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, CUBLAS_DIAG_NON_UNIT, m, n, &one, f.ptr(), ld_of(f.ld),
                     b.ptr(), ld_of(b.ld)),
         "dtrsm");
      ck(cublasDtrsm(blas_, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT, m, n, &one, f.ptr(), ld_of(f.ld),
                     b.ptr(), ld_of(b.ld)),
         "dtrsm");
    }
  }
  void cholesky_solve(const ViewF& f, const ViewF& b) override { cholesky_solve_impl(f, b); }
  void cholesky_solve(const ViewD& f, const ViewD& b) override { cholesky_solve_impl(f, b); }

  template <typename T>
  void cholesky_inverse_impl(const View<T>& a) {
    OpScope ps(this, "op cholesky_inverse");
    need_shape(a, a.rows, a.rows, "cholesky_inverse", "A");
    const i64 n = a.rows;
    if (n == 0) return;
    need_device(nullptr, a.buf, "cholesky_inverse");
    int lwork = 0;
    if constexpr (sizeof(T) == 4)
      ck(cusolverDnSpotri_bufferSize(solver_, CUBLAS_FILL_MODE_LOWER, dim_of(n), a.ptr(), ld_of(a.ld), &lwork), "potri workspace");
    else
      ck(cusolverDnDpotri_bufferSize(solver_, CUBLAS_FILL_MODE_LOWER, dim_of(n), a.ptr(), ld_of(a.ld), &lwork), "potri workspace");
    Workspace ws(this, static_cast<std::size_t>(lwork) * sizeof(T), "Cholesky inverse workspace");
    if constexpr (sizeof(T) == 4)
      ck(cusolverDnSpotri(solver_, CUBLAS_FILL_MODE_LOWER, dim_of(n), a.ptr(), ld_of(a.ld), static_cast<T*>(ws.p), lwork, scratch_), "potri");
    else
      ck(cusolverDnDpotri(solver_, CUBLAS_FILL_MODE_LOWER, dim_of(n), a.ptr(), ld_of(a.ld), static_cast<T*>(ws.p), lwork, scratch_), "potri");
    const int info = read_info();
    if (info != 0) throw Error(ErrorCode::NumericalFailure, "cholesky_inverse: singular matrix (info " + std::to_string(info) + ")");
    // column-major lower = row-major upper → both
    if constexpr (sizeof(T) == 4) cuda::symmetrize_f32(a.ptr(), n, a.ld, stream_);
    else cuda::symmetrize_f64(a.ptr(), n, a.ld, stream_);
  }
  void cholesky_inverse(const ViewF& a) override { cholesky_inverse_impl(a); }
  void cholesky_inverse(const ViewD& a) override { cholesky_inverse_impl(a); }

  // ---- element-wise kernels
  void fill_impl(const ViewF& a, float v) { cuda::fill_f32(a.ptr(), a.rows, a.cols, a.ld, v, stream_); }
  void fill_impl(const ViewD& a, double v) { cuda::fill_f64(a.ptr(), a.rows, a.cols, a.ld, v, stream_); }
  void fill(const ViewF& a, float value) override {
    if (a.size() == 0) return;
    need_device(nullptr, a.buf, "fill");
    fill_impl(a, value);
  }
  void fill(const ViewD& a, double value) override {
    if (a.size() == 0) return;
    need_device(nullptr, a.buf, "fill");
    fill_impl(a, value);
  }
  void convert(const ViewF& src, const ViewD& dst, double scale, double shift, double diag) override {
    OpScope ps(this, "op convert");
    need_shape(dst, src.rows, src.cols, "convert", "destination");
    if (src.size() == 0) return;
    cuda::convert_f32_f64(src.ptr(), src.ld, dst.ptr(), dst.ld, src.rows, src.cols, scale, shift, diag, stream_);
  }
  void convert(const ViewD& src, const ViewF& dst, double scale, double shift, double diag) override {
    OpScope ps(this, "op convert");
    need_shape(dst, src.rows, src.cols, "convert", "destination");
    if (src.size() == 0) return;
    cuda::convert_f64_f32(src.ptr(), src.ld, dst.ptr(), dst.ld, src.rows, src.cols, scale, shift, diag, stream_);
  }
  void axpby(float alpha, const ViewF& x, float beta, const ViewF& y) override {
    OpScope ps(this, "op elementwise");
    need_shape(y, x.rows, x.cols, "axpby", "y");
    if (y.size() == 0) return;
    cuda::axpby(alpha, x.ptr(), x.ld, beta, y.ptr(), y.ld, y.rows, y.cols, stream_);
  }
  void scale_rows_cols(const ViewF& a, const ViewD& r, const ViewD& c) override {
    OpScope ps(this, "op elementwise");
    if (!r.empty()) need_vec(r, a.rows, "scale_rows_cols", "row scale");
    if (!c.empty()) need_vec(c, a.cols, "scale_rows_cols", "column scale");
    if (a.size() == 0) return;
    cuda::scale_rows_cols(a.ptr(), a.rows, a.cols, a.ld, dvec(r), dvec(c), stream_);
  }
  void add_outer(const ViewF& a, double alpha, const ViewD& u, const ViewD& v) override {
    OpScope ps(this, "op elementwise");
    if (!u.empty()) need_vec(u, a.rows, "add_outer", "u");
    if (!v.empty()) need_vec(v, a.cols, "add_outer", "v");
    if (a.size() == 0) return;
    cuda::add_outer(a.ptr(), a.rows, a.cols, a.ld, alpha, dvec(u), dvec(v), stream_);
  }
  void add_broadcast(const ViewF& a, const ViewD& r, const ViewD& c, double shift) override {
    OpScope ps(this, "op elementwise");
    if (!r.empty()) need_vec(r, a.rows, "add_broadcast", "r");
    if (!c.empty()) need_vec(c, a.cols, "add_broadcast", "c");
    if (a.size() == 0) return;
    cuda::add_broadcast(a.ptr(), a.rows, a.cols, a.ld, dvec(r), dvec(c), shift, stream_);
  }
  void row_sums(const ViewF& a, const ViewD& out, double scale) override {
    need_vec(out, a.rows, "row_sums", "out");
    if (a.rows == 0) return;
    cuda::row_sums(a.size() == 0 ? nullptr : a.ptr(), a.rows, a.cols, a.ld, out.ptr(), vstep(out), scale, stream_);
  }
  void col_sums(const ViewF& a, const ViewD& out, double scale) override {
    need_vec(out, a.cols, "col_sums", "out");
    if (a.cols == 0) return;
    cuda::col_sums(a.size() == 0 ? nullptr : a.ptr(), a.rows, a.cols, a.ld, out.ptr(), vstep(out), scale, stream_);
  }

  // ---- ridge kernels
  void shrink(const ViewF& src, const ViewD& lam, const ViewD& alphas, Shrink kind, Axis axis, const ViewF& dst) override {
    OpScope ps(this, "op shrink");
    const i64 r = checks::shrink(src, lam, alphas, axis, dst);
    const i64 na = alphas.size();
    if (na * r == 0) return;
    Workspace w(this, static_cast<std::size_t>(na * r) * sizeof(double), "shrinkage weights");
    cuda::shrink(src.ptr(), src.rows, src.cols, src.ld, dvec(lam), dvec(alphas), na, static_cast<int>(kind), axis == Axis::Cols,
                 static_cast<double*>(w.p), dst.ptr(), dst.ld, stream_);
  }
  void shrink_targets(const ViewF& src, const ViewD& lam, const ViewD& alpha, Shrink kind, const ViewF& dst) override {
    OpScope ps(this, "op shrink_targets");
    checks::shrink_targets(src, lam, alpha, dst);
    if (src.size() == 0) return;
    cuda::shrink_targets(src.ptr(), src.rows, src.cols, src.ld, dvec(lam), dvec(alpha), static_cast<int>(kind), dst.ptr(), dst.ld, stream_);
  }
  void fold_stats(const ViewF& y, const std::vector<i64>& start, const ViewD& level, const ViewD& sum, const ViewD& sst) override {
    OpScope ps(this, "op fold_stats");
    const i64 k = checks::fold_stats(y, start, level, sum, sst), t = y.cols;
    for (i64 v = 0; v < k; ++v)
      cuda::fold_stats(y.size() == 0 ? nullptr : y.ptr(), y.ld, start[static_cast<std::size_t>(v)], start[static_cast<std::size_t>(v) + 1], t,
                       dvec(level), sum.ptr() + v * sum.ld, sst.ptr() + v * sst.ld, kConstantTargetRelVar, stream_);
  }
  void score(const ViewF& pred, i64 blocks, const ViewF& y, const ViewD& offset, bool residual, ScoreKind kind, const ViewD& sum,
             const ViewD& sst, double weight, const ViewD& acc) override {
    OpScope ps(this, "op score");
    const i64 m = y.rows, t = y.cols;
    checks::score(pred, blocks, y, offset, residual, sum, sst, acc);
    for (i64 blk = 0; blk < blocks; ++blk)
      cuda::score(m == 0 ? nullptr : pred.ptr() + blk * m * pred.ld, pred.ld, m == 0 ? nullptr : y.ptr(), y.ld, m, t,
                  residual ? cuda::DVec{} : dvec(offset), residual, kind == ScoreKind::Pearson, dvec(sum), dvec(sst), weight,
                  acc.ptr() + blk * acc.ld, stream_);
  }
  void select_best(const ViewD& scores, const std::vector<double>& alphas, const std::vector<char>& skip, const ViewI& best_index,
                   const ViewD& best_score, const ViewD& best_alpha) override {
    const i64 na = scores.rows, t = scores.cols;
    checks::select_best(scores, alphas, skip, best_index, best_score, best_alpha);
    if (t == 0) return;
    // The grid (a few numbers) travels in one small workspace: alphas, then the skip flags.
    Workspace w(this, static_cast<std::size_t>(na) * (sizeof(double) + 1), "alpha grid");
    std::vector<unsigned char> host(static_cast<std::size_t>(na) * (sizeof(double) + 1));
    std::memcpy(host.data(), alphas.data(), static_cast<std::size_t>(na) * sizeof(double));
    for (i64 a = 0; a < na; ++a) host[static_cast<std::size_t>(na) * sizeof(double) + static_cast<std::size_t>(a)] = skip[static_cast<std::size_t>(a)] ? 1 : 0;
    ck(cudaMemcpyAsync(w.p, host.data(), host.size(), cudaMemcpyHostToDevice, stream_), "uploading the alpha grid");
    const double* da = static_cast<const double*>(w.p);
    const auto* ds = reinterpret_cast<const std::uint8_t*>(da + na);
    cuda::select_best(scores.ptr(), scores.ld, na, t, da, ds, best_index.ptr(), vstep(best_index), best_score.ptr(), vstep(best_score),
                      best_alpha.ptr(), vstep(best_alpha), stream_);
    synchronize();  // the host vector above goes out of scope
  }
  void improve(const ViewD& score, const ViewI& index, std::int32_t tag, const ViewD& best_score, const ViewI& best_index,
               const ViewI& best_tag) override {
    const i64 t = score.size();
    checks::improve(score, index, best_score, best_index, best_tag);
    cuda::improve(score.ptr(), vstep(score), index.ptr(), vstep(index), tag, best_score.ptr(), vstep(best_score), best_index.ptr(),
                  vstep(best_index), best_tag.ptr(), vstep(best_tag), t, stream_);
  }
  i64 first_nonfinite(const ViewF& a) override {
    OpScope ps(this, "op first_nonfinite");
    if (a.size() == 0) return -1;
    if (a.buf->residence() == Residence::Host) {  // a result already on the host (the refit's coefficients)
      std::atomic<i64> bad{std::numeric_limits<i64>::max()};
      parallel_for(0, a.rows, std::max<i64>(1, 16384 / std::max<i64>(1, a.cols)), [&](i64 b, i64 e) {
        for (i64 i = b; i < e && i * a.cols < bad.load(); ++i)
          for (i64 j = 0; j < a.cols; ++j)
            if (!std::isfinite(a.ptr()[i * a.ld + j])) {
              i64 cur = bad.load(), pos = i * a.cols + j;
              while (pos < cur && !bad.compare_exchange_weak(cur, pos)) {
              }
              return;
            }
      });
      return bad.load() == std::numeric_limits<i64>::max() ? -1 : bad.load();
    }
    const unsigned long long none = ULLONG_MAX;
    unsigned long long* pos = reinterpret_cast<unsigned long long*>(scratch_) + 1;
    ck(cudaMemcpyAsync(pos, &none, sizeof none, cudaMemcpyHostToDevice, stream_), "first_nonfinite");
    cuda::first_nonfinite(a.ptr(), a.rows, a.cols, a.ld, pos, stream_);
    unsigned long long got = 0;
    ck(cudaMemcpyAsync(&got, pos, sizeof got, cudaMemcpyDeviceToHost, stream_), "first_nonfinite");
    synchronize();
    return got == ULLONG_MAX ? -1 : static_cast<i64>(got);
  }

  // ---- sampler kernels
  // The batch's views (checked by the caller: checks::sampler_init / sampler_step) as kernel pointers.
  static cuda::SamplerPtrs sampler_ptrs(const SamplerBatch& b) {
    cuda::SamplerPtrs p;
    p.images = b.images;
    p.n = b.per_image;
    p.groups = b.groups;
    p.x = b.x.ptr();
    p.unet_in = b.unet_in.ptr();
    p.eps = b.eps.empty() ? nullptr : b.eps.ptr();
    for (int h = 0; h < kHistorySlots; ++h)
      if (!b.history[h].empty()) p.history[h] = b.history[h].ptr();
    p.step_noise = b.step_noise.empty() ? nullptr : b.step_noise.ptr();
    p.keys = b.keys.empty() ? nullptr : b.keys.data();
    return p;
  }
  void sampler_init(const SamplerBatch& b, const ViewF& z, const ViewF& noise, double a, double s, double first_in_scale) override {
    checks::sampler_init(b, z, noise);
    const cuda::SamplerPtrs p = sampler_ptrs(b);
    cuda::sampler_init(p, z.ptr(), noise.empty() ? nullptr : noise.ptr(), a, s, first_in_scale, stream_);
  }
  void sampler_step(const CompiledStep& c, const SamplerBatch& b) override {
    checks::sampler_step(b);
    const cuda::SamplerPtrs p = sampler_ptrs(b);
    bool history[kHistorySlots];
    for (int h = 0; h < kHistorySlots; ++h) history[h] = p.history[h] != nullptr;
    check_step_buffers(c, history, b.groups, p.step_noise != nullptr, p.keys != nullptr);
    cuda::sampler_step(c, p, stream_);
  }

 private:
  int device_;
  std::string description_;
  cudaStream_t stream_ = nullptr;
  cudaMemPool_t pool_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cusolverDnHandle_t solver_ = nullptr;
  int* scratch_ = nullptr;  // solver status (int) and a 64-bit result slot
  bool tf32_ = false;
  int fp64_ratio_ = 0;
  bool profile_sync_ = false;
  F32Gemm f32_gemm_ = F32Gemm::Auto;
  i64 split_cap_ = 0;  // floats
  float* split_buf_ = nullptr;
  std::size_t split_bytes_ = 0;
  bool poison_ = false;
};

OpScope::OpScope(const CudaBackend* be, const char* name, double flops) : be_(be), scope_(name, flops) {}
OpScope::~OpScope() {
  if (be_->profile_sync_) cudaStreamSynchronize(be_->stream_);
}

}  // namespace

// Registry hooks (backend_registry.cpp).
BackendInfo cuda_backend_info(int device) {
  BackendInfo info{"cuda", true, false, ""};
  info.available = probe(device < 0 ? env_device() : device, info.detail);
  return info;
}
std::unique_ptr<Backend> make_cuda_backend(int device) { return std::make_unique<CudaBackend>(device < 0 ? env_device() : device); }

}  // namespace brainlatent
