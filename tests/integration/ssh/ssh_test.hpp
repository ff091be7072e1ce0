// The base of the SSH client's integration tests: a real sshd per test (skipped, with the
// reason, where sshd cannot run) and settings that point the client at it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "ssh/ssh_session.hpp"
#include "sshd_fixture.hpp"

namespace hwl::ssh {

class SshTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = itest::sshdUnavailableReason();
    if (!why.empty()) GTEST_SKIP() << why;
    sshd_ = std::make_unique<itest::SshdFixture>(sshdOptions());
    sshd_->start();
  }

  virtual itest::SshdOptions sshdOptions() { return {}; }

  // The default client: the authorized key, the host key pinned as ssh-keygen prints it.
  SshSettings pinnedSettings() {
    SshSettings s;
    s.host = "127.0.0.1";
    s.port = sshd_->port();
    s.user = sshd_->user();
    s.key = KeyFile{sshd_->clientKey()};
    s.pinned_fingerprint = sshd_->hostKeyFingerprint();
    s.connect_timeout = std::chrono::seconds(20);
    return s;
  }

  // The same client trusting through the fixture's known_hosts instead of a pin.
  SshSettings knownHostsSettings(bool tofu) {
    SshSettings s = pinnedSettings();
    s.pinned_fingerprint.clear();
    s.known_hosts = sshd_->knownHosts();
    s.trust_on_first_use = tofu;
    return s;
  }

  std::unique_ptr<SshSession> connectOrFail(SshSettings s) {
    auto r = SshSession::connect(std::move(s));
    if (!r) ADD_FAILURE() << "connect: " << r.error().toString();
    return r ? std::move(*r) : nullptr;
  }

  // sshd logs asynchronously from its per-connection processes: give them a moment.
  std::string settledLog() {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return sshd_->log();
  }

  std::unique_ptr<itest::SshdFixture> sshd_;
};

inline bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace hwl::ssh
