#include "fake_provider.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>

namespace hwl::itest {

std::filesystem::path fakesDir() { return HWL_FAKES_DIR; }

FakeProvider::FakeProvider(const std::string& name, const std::vector<std::string>& args,
                           const std::filesystem::path& log_dir) {
  std::vector<std::string> argv = {"python3", (fakesDir() / (name + "_fake.py")).string(), "--port",
                                   "0"};
  argv.insert(argv.end(), args.begin(), args.end());
  SpawnOptions opts;
  auto dir = log_dir.empty() ? std::filesystem::temp_directory_path() : log_dir;
  static int n = 0;
  auto stem = name + "-fake-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  opts.stdout_file = dir / (stem + ".out");
  opts.stderr_file = dir / (stem + ".err");
  proc_ = std::make_unique<Process>(argv, opts);
  if (!proc_->waitForOutput("LISTENING ", std::chrono::seconds(20))) {
    ADD_FAILURE() << name << " fake did not start: " << proc_->err();
    return;
  }
  auto out = proc_->out();
  auto at = out.find("LISTENING ");
  port_ = std::stoi(out.substr(at + 10));
}

FakeProvider::~FakeProvider() { kill(); }

void FakeProvider::kill() {
  if (proc_) proc_->kill();
}

std::string FakeProvider::baseUrl(const std::string& prefix) const {
  return "http://127.0.0.1:" + std::to_string(port_) + prefix;
}

boost::json::value FakeProvider::control(const std::string& method, const std::string& path,
                                         const std::string& body) {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", "10", "-X", method};
  if (!body.empty()) {
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", body});
  }
  argv.push_back("http://127.0.0.1:" + std::to_string(port_) + path);
  auto r = run(argv);
  EXPECT_EQ(r.code(), 0) << r.err;
  boost::system::error_code ec;
  auto v = boost::json::parse(r.out, ec);
  EXPECT_FALSE(ec) << "control answer: " << r.out;
  return ec ? boost::json::value() : v;
}

void FakeProvider::configure(const boost::json::object& knobs) {
  control("POST", "/_fake/config", boost::json::serialize(knobs));
}

std::string FakeProvider::inject(const boost::json::object& instance) {
  auto v = control("POST", "/_fake/instances", boost::json::serialize(instance));
  if (!v.is_object() || !v.as_object().contains("id")) return {};
  return boost::json::serialize(v.as_object().at("id"));
}

boost::json::object FakeProvider::state() {
  auto v = control("GET", "/_fake/state", "");
  return v.is_object() ? v.as_object() : boost::json::object{};
}

}  // namespace hwl::itest
