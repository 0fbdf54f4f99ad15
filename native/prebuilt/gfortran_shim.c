/* The one libgfortran routine that Debian's static LAPACK objects call (?ORMTR, ?GESVD, ... build
 * option strings with it). libgfortran.a is not position-independent, so it cannot be linked into a
 * shared object; this is the same blank-padded concatenation, with libgfortran's signature. Only the
 * prebuilt flavour of the addon (static OpenBLAS) compiles it. */
#include <stddef.h>
#include <string.h>

void _gfortran_concat_string(size_t destlen, char *dest, size_t len1, const char *s1, size_t len2, const char *s2) {
  if (len1 >= destlen) {
    memcpy(dest, s1, destlen);
    return;
  }
  memcpy(dest, s1, len1);
  dest += len1;
  destlen -= len1;
  if (len2 >= destlen) {
    memcpy(dest, s2, destlen);
    return;
  }
  memcpy(dest, s2, len2);
  memset(dest + len2, ' ', destlen - len2);
}
