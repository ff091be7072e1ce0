// Table cells from server values, and the one way a command prints the server's answer.
#include "output.hpp"

#include <cstdio>
#include <ctime>

namespace hwl::cli {

std::string str(const bj::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "-";
  return bj::serialize(v);
}

std::string fmtTime(int64_t ms) {
  if (ms == 0) return "";
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string fmtDuration(int64_t ms) {
  if (ms < 0) return "-";
  const long long s = ms / 1000;
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%llds", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s / 60 % 60);
  return buf;
}

std::string gib(const bj::value& v) {
  if (!v.is_number()) return "-";
  boost::system::error_code ec;
  double d = v.to_number<double>(ec) / (1024.0 * 1024 * 1024);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", d);
  return buf;
}

std::string numStr(const bj::object& o, const char* key, const char* fmt) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_number()) return "-";
  boost::system::error_code ec;
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, it->value().to_number<double>(ec));
  return buf;
}

void printJson(std::ostream& out, const bj::value& v) { out << bj::serialize(v) << "\n"; }

int fail(std::ostream& err, const Error& e) {
  err << "error: " << e.message << "\n";
  return 1;
}

int usageError(std::ostream& err, const Error& e) {
  err << "error: " << e.message << "\n";
  return 2;
}

int show(const Context& ctx, const Result<bj::value>& answer,
         const std::function<int(const bj::value&)>& human) {
  if (!answer) return fail(ctx.err, answer.error());
  if (ctx.json) {
    printJson(ctx.out, *answer);
    return 0;
  }
  return human(*answer);
}

}  // namespace hwl::cli
