// A fake cloud provider (tests/fakes/<name>_fake.py) running on loopback for a test: started on a
// free port, driven through its /_fake/ control API, killed with the fixture.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "process.hpp"

namespace hwl::itest {

class FakeProvider {
 public:
  // `name`: vast, runpod or lambda. `args` go to the fake after the defaults (--port 0).
  FakeProvider(const std::string& name, const std::vector<std::string>& args = {},
               const std::filesystem::path& log_dir = {});
  ~FakeProvider();
  FakeProvider(const FakeProvider&) = delete;
  FakeProvider& operator=(const FakeProvider&) = delete;

  [[nodiscard]] bool ok() const { return port_ != 0; }
  [[nodiscard]] int port() const { return port_; }
  // http://127.0.0.1:PORT followed by the API's path prefix for the provider, if any.
  [[nodiscard]] std::string baseUrl(const std::string& prefix = "") const;

  // POST /_fake/config with `knobs`.
  void configure(const boost::json::object& knobs);
  // POST /_fake/instances: an instance the ledger never launched; returns its id.
  std::string inject(const boost::json::object& instance);
  // GET /_fake/state.
  boost::json::object state();
  void kill();

 private:
  boost::json::value control(const std::string& method, const std::string& path,
                             const std::string& body);
  std::unique_ptr<Process> proc_;
  int port_ = 0;
};

// The directory of the fakes (tests/fakes).
std::filesystem::path fakesDir();

}  // namespace hwl::itest
