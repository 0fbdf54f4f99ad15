/** Typings of the engine's process-wide functions (native/addon/addon_engine.cpp) and bench probes (addon_bench.cpp). */

/** Opaque handle of a native cancel token (createCancelToken); every async job accepts one. */
export type CancelToken = { readonly __brand: 'CancelToken' };

/** One backend the engine knows: compiled in or not, usable here or not, and the device or the reason. */
export interface NativeBackendInfo {
  name: 'cpu' | 'cuda';
  compiled: boolean;
  available: boolean;
  /** The device and library when available, otherwise why not. */
  detail: string;
}

/** OpenBLAS's CPU kernels and who chose them (native/core/src/blas_core.cpp). */
export interface NativeBlasCore {
  /** OpenBLAS's core (Haswell, SkylakeX, Cooperlake, …; an OpenBLAS built for one CPU: its target); empty for another BLAS. */
  name: string;
  /**
   * 'OpenBLAS' (its own detection, or its build's target), 'OPENBLAS_CORETYPE' (the user's choice, always kept; read
   * only by an OpenBLAS built with DYNAMIC_ARCH), 'engine', or '' for another BLAS. 'engine': every OpenBLAS before
   * 0.3.25 takes Intel CPUs past its table (in Debian 12's 0.3.21, extended model 11 and up: Raptor Lake, Arrow and
   * Lunar Lake, Emerald Rapids) for a Prescott and runs SSE3 kernels, a fifth of an AVX-512 GEMM rate; the engine
   * then picks the core OpenBLAS 0.3.25 picks from the features.
   */
  source: 'OpenBLAS' | 'OPENBLAS_CORETYPE' | 'engine' | '';
  /** Why the engine chose, or what the user can do; empty when nothing was wrong. */
  note: string;
}

/** How the native engine was built and what this machine offers it (BuildInfo adds where the addon came from). */
export interface NativeBuildInfo {
  blas: string;
  blasCore: NativeBlasCore;
  threads: number;
  /** The backends available on this machine, in preference order. */
  backends: string[];
  /** Every backend, with why each missing one is missing. */
  backendList: NativeBackendInfo[];
  cuda: boolean;
  cudaReason: string;
  /** Whether large arrays go in 2 MiB pages: measured at the first large allocation (BRAINLATENT_HUGE_PAGES=1|0 decides instead). */
  hugePages: boolean;
  /**
   * Whether the engine was built with its test hooks (CMake BRAINLATENT_TEST_HOOKS: environment variables read
   * around a model's load that flip a link or truncate a file, and a list of OpenBLAS cores to walk, for the
   * checkout's tests). Never in a package's build;
   * compiled in, they act only in a process with BRAINLATENT_TEST_HOOKS=1 in its environment.
   */
  testHooks: boolean;
}

export interface EngineBinding {
  createCancelToken(): CancelToken;
  cancel(token: CancelToken): void;
  setThreads(n: number): number;
  getThreads(): number;
  buildInfo(): NativeBuildInfo;
  /**
   * An ArrayBuffer of `bytes` for a large array read from a file (in huge pages where they pay: `hugePages` of
   * buildInfo()), zero-filled unless `zeroFill` is false
   * (for a reader that overwrites every byte: its contents are then unspecified until it does).
   */
  allocLargeBuffer(bytes: number, zeroFill?: boolean): ArrayBuffer;
  /** Node's limit for memory of the engine's handed to JS (buffer.constants.MAX_LENGTH): results past it are copied. */
  setMaxExternalBytes(bytes: number): void;
  /** Results copied past that limit so far in this process (for the tests). */
  largeResultCopies(): number;
  /**
   * An ArrayBuffer over bytes [offset, offset + bytes) of the open file `fd`, mapped copy-on-write (writes to it stay in
   * this process; the mapping outlives the descriptor): a large array read from a file without copying it. Throws an
   * Error saying what failed. Not on Windows.
   */
  mapFile?(fd: number, offset: number, bytes: number): ArrayBuffer;
  /**
   * execv(file, args): this process becomes a new program with the same pid, parent, stdio and environment. Returns
   * only by throwing (code ENOENT, EACCES or EEXEC). Not on Windows.
   */
  replaceProcess(file: string, args: string[]): never;
  /**
   * This process's engine jobs (every async call: fits, the sampler, decoding) from now on compute on a thread of
   * their own `niceness` steps below the process's CPU priority (0: on the engine's job threads, the default). Linux.
   */
  setJobNiceness(niceness: number): void;
  /**
   * Ends every engine job of the process (cancels those computing, withdraws those queued) and joins the engine's job
   * threads. The binding loader calls it from the main thread's process 'exit' event: exit() then runs the libraries' exit
   * handlers, and OpenBLAS's, which joins its worker threads, hung for ever while a job thread still computed in them.
   * The engine stays closed afterwards: a job started later (in another 'exit' listener) rejects with a Cancelled error
   * ('the process is exiting') instead of computing while exit() runs those handlers.
   */
  stopJobThreads(): void;
  /**
   * Writes `chunks` one after another at `fd`'s position, through to the disk in 8 MiB pieces dropped from the page
   * cache as they go (Linux; plain writes elsewhere), on one of the engine's job threads. Resolves with the bytes written and, on
   * failure, the errno (0: none) and its text.
   */
  writeThrough(fd: number, chunks: Uint8Array[]): Promise<{ written: number; errno: number; message: string }>;
}

export interface BenchBinding {
  /** The best single-precision GEMM rate on n×n×n, GFLOP/s. */
  sgemmGflops(n: number, reps: number): number;
  /**
   * The process's BLAS turns now (native/core/include/brainlatent/blas_turn.h): threads waiting for one, turns taken
   * so far, calls that ran beside the turn's holder (synchronous calls never wait for a turn), and the BLAS library's
   * thread count (turns are taken only above one).
   */
  blasTurns(): { waiting: number; taken: number; beside: number; blasThreads: number };
  /** Micro-benchmark probe: the fused step, the hand-specialised loop it replaced (ddim, dpmpp2m with guidance), one plan. */
  sdFusedStepProbe(elementsPerImage: number, images: number, groups: number, scheduler: string): { step(): void; reference?: () => void; update(): number };
}
