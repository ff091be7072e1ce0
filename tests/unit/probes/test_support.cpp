// Test support: capture paths, temporary directories and a ttar unpacker.
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "hwl/test_fixtures.hpp"

namespace hwl::probes::testing {
namespace fs = std::filesystem;

std::string capture(const std::string& name) {
  return hwl::test_fixtures::find("telemetry", name).string();
}

std::string readCapture(const std::string& name) {
  std::ifstream in(capture(name), std::ios::binary);
  if (!in) throw std::runtime_error("missing capture " + capture(name));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "hwl-probes-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

fs::path TempDir::write(const std::string& relative, const std::string& content) const {
  const fs::path p = path_ / relative;
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
  return p;
}

void unpackTtar(const std::string& archivePath, const fs::path& dest) {
  std::ifstream in(archivePath);
  if (!in) throw std::runtime_error("cannot open " + archivePath);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  auto value = [](const std::string& line, const std::string& key) -> std::string {
    if (line.rfind(key, 0) != 0) return {};
    return line.substr(key.size());
  };
  std::string pendingPath;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.empty() || line.rfind("# ttar", 0) == 0 || line.rfind("Mode: ", 0) == 0) continue;
    if (auto d = value(line, "Directory: "); !d.empty()) {
      fs::create_directories(dest / d);
    } else if (auto p = value(line, "Path: "); !p.empty()) {
      pendingPath = p;
    } else if (auto t = value(line, "SymlinkTo: "); !t.empty()) {
      if (pendingPath.empty()) throw std::runtime_error("ttar: SymlinkTo without Path");
      fs::create_directories((dest / pendingPath).parent_path());
      fs::create_symlink(t, dest / pendingPath);
      pendingPath.clear();
    } else if (auto n = value(line, "Lines: "); !n.empty()) {
      if (pendingPath.empty()) throw std::runtime_error("ttar: Lines without Path");
      const std::size_t count = std::stoul(n);
      if (i + count >= lines.size() + 1) throw std::runtime_error("ttar: truncated file");
      std::string content;
      for (std::size_t k = 0; k < count; ++k) {
        std::string l = lines[i + 1 + k];
        // ttar marks a file without a final newline with a trailing "EOF" line.
        if (k + 1 == count && l == "EOF") {
          if (!content.empty()) content.pop_back();
          break;
        }
        const std::string nul = "NULLBYTE";
        for (std::size_t pos; (pos = l.find(nul)) != std::string::npos;)
          l.replace(pos, nul.size(), 1, '\0');
        content += l + "\n";
      }
      fs::create_directories((dest / pendingPath).parent_path());
      std::ofstream out(dest / pendingPath, std::ios::binary);
      out << content;
      pendingPath.clear();
      i += count;
    } else {
      throw std::runtime_error("ttar: unexpected line '" + line + "'");
    }
  }
}

}  // namespace hwl::probes::testing
