// `coffer run` against a plain repository directory as B (no vault, so no UML): a config
// written per test, a recording `sendmail` on PATH and a local HTTP listener for the pings.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coffer/util/fd.hpp"
#include "coffer/util/process.hpp"
#include "temp_dir.hpp"

namespace coffer::test {

// Accepts HTTP/1.1 requests on 127.0.0.1 and answers 200; records "METHOD PATH" and the body.
class HttpRecorder {
 public:
  HttpRecorder();
  ~HttpRecorder();
  std::string url() const;  // http://127.0.0.1:PORT/ping/uuid
  struct Request {
    std::string method, path, body;
  };
  std::vector<Request> requests() const;

 private:
  void serve();
  UniqueFd listener_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<Request> requests_;
  std::thread thread_;
};

class RunFixture {
 public:
  RunFixture();
  const std::filesystem::path& dir() const { return tmp_.path(); }
  std::filesystem::path repo() const { return tmp_ / "B"; }
  std::filesystem::path config() const { return tmp_ / "coffer.toml"; }
  std::filesystem::path mail_dir() const { return tmp_ / "mail"; }
  std::filesystem::path prom() const { return tmp_ / "textfile" / "coffer.prom"; }
  // Runs coffer with COFFER_CONFIG, a runtime dir, the recording sendmail first on PATH and
  // `extra` environment (the sshd fixture's, for SSH sources).
  RunResult coffer(std::vector<std::string> args, const std::vector<std::string>& extra = {}) const;
  std::vector<std::string> env(const std::vector<std::string>& extra = {}) const;
  // The mails the fake sendmail recorded, in order.
  std::vector<std::string> mails() const;

 private:
  TempDir tmp_;
};

// Parses a Prometheus textfile: "name{labels}" -> value (comments skipped).
std::map<std::string, double> parse_prometheus(const std::string& text);
// The JSON lines of type `type` in `out`, one string each.
std::vector<std::string> json_lines(const std::string& out, const std::string& type);
// A TCP port on 127.0.0.1 that nothing listens on (bound and closed again).
int closed_port();

}  // namespace coffer::test
