// Plain-text tables for the CLI's human output.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace hwl::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // CSV (RFC 4180 quoting) instead of aligned columns, for every table this process prints.
  static void setFormat(bool csv) { csv_() = csv; }
  void print(std::ostream& out) const {
    if (csv_()) {
      auto cell = [&](const std::string& c) {
        if (c.find_first_of(",\"\r\n") == std::string::npos) return c;
        std::string q = "\"";
        for (char ch : c) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        return q + "\"";
      };
      auto row = [&](const std::vector<std::string>& r) {
        for (size_t i = 0; i < headers_.size(); ++i)
          out << (i ? "," : "") << cell(i < r.size() ? r[i] : "");
        out << "\r\n";
      };
      row(headers_);
      for (const auto& r : rows_) row(r);
      return;
    }
    std::vector<size_t> w(headers_.size(), 0);
    for (size_t i = 0; i < headers_.size(); ++i) w[i] = headers_[i].size();
    for (const auto& r : rows_)
      for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
    auto line = [&](const std::vector<std::string>& r) {
      for (size_t i = 0; i < w.size(); ++i) {
        std::string c = i < r.size() ? r[i] : "";
        out << c;
        if (i + 1 < w.size()) out << std::string(w[i] - c.size() + 2, ' ');
      }
      out << "\n";
    };
    line(headers_);
    for (const auto& r : rows_) line(r);
  }

 private:
  static bool& csv_() {
    static bool csv = false;
    return csv;
  }
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace hwl::cli
