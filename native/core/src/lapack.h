// The Fortran BLAS/LAPACK routines the engine calls (LP64), and their float/double pairs by element
// type (Lapack<T>), for linalg.cpp and tridiagonal_eigh.cpp. Internal to the engine.
#pragma once

extern "C" {
// Fortran BLAS/LAPACK (LP64). Hidden string lengths are omitted, as every C caller of these
// single-character arguments does; all vendors accept it.
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*);
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
            const int*, const double*, const int*, const double*, double*, const int*);
void ssyrk_(const char*, const char*, const int*, const int*, const float*, const float*, const int*,
            const float*, float*, const int*);
void ssyevd_(const char*, const char*, const int*, float*, const int*, float*, float*, const int*, int*,
             const int*, int*);
void dsyevd_(const char*, const char*, const int*, double*, const int*, double*, double*, const int*, int*,
             const int*, int*);
void slatrd_(const char*, const int*, const int*, float*, const int*, float*, float*, float*, const int*);
void dlatrd_(const char*, const int*, const int*, double*, const int*, double*, double*, double*, const int*);
void ssytd2_(const char*, const int*, float*, const int*, float*, float*, float*, int*);
void dsytd2_(const char*, const int*, double*, const int*, double*, double*, double*, int*);
void ssyr2k_(const char*, const char*, const int*, const int*, const float*, const float*, const int*, const float*, const int*,
             const float*, float*, const int*);
void dsyr2k_(const char*, const char*, const int*, const int*, const double*, const double*, const int*, const double*, const int*,
             const double*, double*, const int*);
void sstedc_(const char*, const int*, float*, float*, float*, const int*, float*, const int*, int*, const int*, int*);
void dstedc_(const char*, const int*, double*, double*, double*, const int*, double*, const int*, int*, const int*, int*);
void slarft_(const char*, const char*, const int*, const int*, const float*, const int*, const float*, float*, const int*);
void dlarft_(const char*, const char*, const int*, const int*, const double*, const int*, const double*, double*, const int*);
void slarfb_(const char*, const char*, const char*, const char*, const int*, const int*, const int*, const float*, const int*,
             const float*, const int*, float*, const int*, float*, const int*);
void dlarfb_(const char*, const char*, const char*, const char*, const int*, const int*, const int*, const double*, const int*,
             const double*, const int*, double*, const int*, double*, const int*);
void spotrf_(const char*, const int*, float*, const int*, int*);
void dpotrf_(const char*, const int*, double*, const int*, int*);
void dpotri_(const char*, const int*, double*, const int*, int*);
void spotri_(const char*, const int*, float*, const int*, int*);
void strsm_(const char*, const char*, const char*, const char*, const int*, const int*, const float*,
            const float*, const int*, float*, const int*);
void dtrsm_(const char*, const char*, const char*, const char*, const int*, const int*, const double*,
            const double*, const int*, double*, const int*);
void slaed2_(int*, const int*, const int*, float*, float*, const int*, int*, float*, float*, float*, float*, float*, int*, int*, int*,
             int*, int*);
void dlaed2_(int*, const int*, const int*, double*, double*, const int*, int*, double*, double*, double*, double*, double*, int*,
             int*, int*, int*, int*);
void slaed4_(const int*, const int*, const float*, const float*, float*, const float*, float*, int*);
void dlaed4_(const int*, const int*, const double*, const double*, double*, const double*, double*, int*);
void slamrg_(const int*, const int*, const float*, const int*, const int*, int*);
void dlamrg_(const int*, const int*, const double*, const int*, const int*, int*);
}

namespace brainlatent::linalg {

template <typename T>
struct Lapack;
template <>
struct Lapack<float> {
  static constexpr auto syevd = ssyevd_;
  static constexpr auto latrd = slatrd_;
  static constexpr auto sytd2 = ssytd2_;
  static constexpr auto syr2k = ssyr2k_;
  static constexpr auto stedc = sstedc_;
  static constexpr auto larft = slarft_;
  static constexpr auto larfb = slarfb_;
  static constexpr auto laed2 = slaed2_;
  static constexpr auto laed4 = slaed4_;
  static constexpr auto lamrg = slamrg_;
};
template <>
struct Lapack<double> {
  static constexpr auto syevd = dsyevd_;
  static constexpr auto latrd = dlatrd_;
  static constexpr auto sytd2 = dsytd2_;
  static constexpr auto syr2k = dsyr2k_;
  static constexpr auto stedc = dstedc_;
  static constexpr auto larft = dlarft_;
  static constexpr auto larfb = dlarfb_;
  static constexpr auto laed2 = dlaed2_;
  static constexpr auto laed4 = dlaed4_;
  static constexpr auto lamrg = dlamrg_;
};

}  // namespace brainlatent::linalg
