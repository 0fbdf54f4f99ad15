/* arc4random for the static libstdc++ the prebuilt links (CMakeLists.txt): GCC 12's libstdc++.a, built on
 * glibc 2.36, calls it from std::random_device, and the linker pulls that object in through libstdc++'s own
 * string code, so the binary would need glibc 2.36 (GLIBC_2.36) where it promises 2.34. This local
 * definition (hidden by exports.map) takes the call instead, from getrandom (glibc 2.25). The engine never
 * uses std::random_device; this only keeps the symbol version out. Only the prebuilt flavour compiles it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>

uint32_t arc4random(void) {
  uint32_t value;
  for (;;) {
    ssize_t got = getrandom(&value, sizeof value, 0);
    if (got == (ssize_t)sizeof value) return value;
    if (got < 0 && errno != EINTR) abort(); /* as glibc's arc4random does when the kernel has no entropy source */
  }
}
