// Export checks shared by the probe parser targets.
#include "probe_check.hpp"

#include <boost/json.hpp>
#include <cctype>
#include <cstdlib>
#include <string>

#include "fuzz_support.hpp"
#include "hwl/probes/exporters.hpp"

namespace hwl::fuzz {

namespace {

bool nameChar(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// name{label="value",…} value
bool wellFormedSample(std::string_view line) {
  size_t i = 0;
  if (i >= line.size() || !nameChar(line[i], true)) return false;
  while (i < line.size() && nameChar(line[i], false)) ++i;
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      size_t start = i;
      while (i < line.size() && nameChar(line[i], i == start)) ++i;
      if (i == start || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return false;
      i += 2;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\') {
          if (i + 1 >= line.size() ||
              (line[i + 1] != '\\' && line[i + 1] != '"' && line[i + 1] != 'n'))
            return false;
          ++i;
        }
        ++i;
      }
      if (i >= line.size()) return false;
      ++i;  // closing quote
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return false;
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return false;
  std::string value(line.substr(i + 1));
  if (value == "NaN" || value == "+Inf" || value == "-Inf") return true;
  char* end = nullptr;
  std::strtod(value.c_str(), &end);
  return !value.empty() && end == value.c_str() + value.size();
}

}  // namespace

void checkExport(const std::vector<probes::GpuSample>& gpus) {
  probes::Sample s;
  s.time_ms = 1'700'000'000'000;
  s.gpus = gpus;
  auto json = boost::json::serialize(probes::toJson(s));
  boost::system::error_code ec;
  auto back = boost::json::parse(json, ec);
  HWL_FUZZ_CHECK(!ec && back.is_object(), json.substr(0, 1000));
  for (bool exact : {false, true}) {
    std::string text = probes::renderPrometheus(s, "host-a", {}, {.dcgm_exact_labels = exact});
    std::string_view rest = text;
    while (!rest.empty()) {
      auto [line, tail] = splitOnce(rest, '\n');
      rest = tail;
      if (line.empty() || line.front() == '#') continue;
      HWL_FUZZ_CHECK(wellFormedSample(line), std::string(line.substr(0, 1000)));
    }
  }
}

}  // namespace hwl::fuzz
