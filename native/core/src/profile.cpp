#include "brainlatent/profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#ifndef _WIN32
#include <sys/resource.h>
#endif

namespace brainlatent::profile {

namespace {
struct Total {
  const char* name;
  double seconds = 0, flops = 0;
  long calls = 0, faults = 0;
};
std::mutex g_mu;
std::vector<Total> g_totals;
}  // namespace

bool enabled() {
  static const bool on = [] {
    const char* e = std::getenv("BRAINLATENT_PROFILE");
    return e && *e && std::string(e) != "0";
  }();
  return on;
}

bool each_call() {
  static const bool on = [] {
    const char* e = std::getenv("BRAINLATENT_PROFILE");
    return e && std::string(e) == "2";
  }();
  return on;
}

long minor_faults() {
#ifdef _WIN32
  return 0;
#else
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
#endif
}

void add(const char* name, double seconds, double flops, long faults) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = std::find_if(g_totals.begin(), g_totals.end(), [&](const Total& t) { return t.name == name; });
  if (it == g_totals.end()) {
    g_totals.push_back(Total{name});
    it = g_totals.end() - 1;
  }
  it->seconds += seconds;
  it->flops += flops;
  ++it->calls;
  it->faults += faults;
}

std::string report_and_reset() {
  std::vector<Total> t;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    t.swap(g_totals);
  }
  std::sort(t.begin(), t.end(), [](const Total& a, const Total& b) { return a.seconds > b.seconds; });
  std::string out;
  char line[200], rate[40];
  for (const Total& x : t) {
    rate[0] = 0;
    if (x.flops > 0) std::snprintf(rate, sizeof rate, " %8.1f GFLOP/s", x.flops / 1e9 / x.seconds);
    // (page faults: first touches of fresh memory, ~2.5 µs each on a VM whose host backs the page)
    std::snprintf(line, sizeof line, "%-28s %8.3f s %7ld calls %7.1f MiB faulted%s\n", x.name, x.seconds, x.calls, x.faults * 4096.0 / (1 << 20), rate);
    out += line;
  }
  return out;
}

}  // namespace brainlatent::profile
