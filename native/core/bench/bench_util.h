// Small helpers shared by the engine's plain-C++ benchmarks (bench_ridge, bench_sampler): a one-line
// JSON record builder, the time, the load average and the peak RSS that every record carries, a stopwatch.
#pragma once
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

namespace brainlatent::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

class Json {
 public:
  Json& key(const char* k) {
    s_ += first_ ? "" : ",";
    first_ = false;
    s_ += "\"";
    s_ += k;
    s_ += "\":";
    return *this;
  }
  Json& str(const char* k, const std::string& v) {
    key(k);
    s_ += quote(v);
    return *this;
  }
  Json& num(const char* k, double v) {
    key(k);
    s_ += number(v);
    return *this;
  }
  Json& boolean(const char* k, bool v) {
    key(k);
    s_ += v ? "true" : "false";
    return *this;
  }
  Json& nums(const char* k, const std::vector<double>& v) {
    key(k);
    s_ += "[";
    for (std::size_t i = 0; i < v.size(); ++i) s_ += (i ? "," : "") + number(v[i]);
    s_ += "]";
    return *this;
  }
  std::string done() const { return "{" + s_ + "}"; }

  static std::string number(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
  }
  static std::string quote(const std::string& v) {
    std::string o = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') o += '\\', o += c;
      else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        o += buf;
      } else o += c;
    }
    return o + "\"";
  }

 private:
  std::string s_;
  bool first_ = true;
};

inline std::string utc_now() {
  char buf[32];
  std::time_t now = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

inline std::string load_average() {
  std::ifstream f("/proc/loadavg");
  double a = 0, b = 0, c = 0;
  if (!(f >> a >> b >> c)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", a, b, c);
  return buf;
}

inline double peak_rss_gib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is KiB on Linux
}

}  // namespace brainlatent::bench
