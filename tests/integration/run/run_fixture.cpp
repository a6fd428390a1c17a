#include "run_fixture.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "coffer/util/error.hpp"
#include "run_coffer.hpp"

namespace coffer::test {
namespace {

UniqueFd loopback_socket(int& port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw_errno("socket", "127.0.0.1", errno);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    throw_errno("bind", "127.0.0.1", errno);
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

}  // namespace

int closed_port() {
  int port = 0;
  UniqueFd fd = loopback_socket(port);
  return port;  // closed here: nothing listens on it
}

HttpRecorder::HttpRecorder() {
  listener_ = loopback_socket(port_);
  if (::listen(listener_.get(), 16) != 0) throw_errno("listen", "127.0.0.1", errno);
  thread_ = std::thread([this] { serve(); });
}

HttpRecorder::~HttpRecorder() {
  stop_ = true;
  thread_.join();
}

std::string HttpRecorder::url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/ping/5e1f";
}

std::vector<HttpRecorder::Request> HttpRecorder::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void HttpRecorder::serve() {
  while (!stop_) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    UniqueFd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) continue;
    std::string in;
    char buf[4096];
    std::size_t need = std::string::npos;
    while (need == std::string::npos || in.size() < need) {
      pollfd q{c.get(), POLLIN, 0};
      if (::poll(&q, 1, 2000) <= 0) break;
      ssize_t n = ::read(c.get(), buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
      auto end = in.find("\r\n\r\n");
      if (end != std::string::npos && need == std::string::npos) {
        std::size_t length = 0;
        std::istringstream headers(in.substr(0, end));
        for (std::string line; std::getline(headers, line);) {
          for (auto& ch : line)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          if (line.rfind("content-length:", 0) == 0) length = std::stoul(line.substr(15));
        }
        need = end + 4 + length;
      }
    }
    Request r;
    std::istringstream first(in.substr(0, in.find("\r\n")));
    first >> r.method >> r.path;
    if (auto end = in.find("\r\n\r\n"); end != std::string::npos) r.body = in.substr(end + 4);
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(r);
    }
    std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK";
    [[maybe_unused]] ssize_t w = ::write(c.get(), answer.data(), answer.size());
  }
}

RunFixture::RunFixture() {
  std::filesystem::create_directories(repo());
  std::filesystem::create_directories(mail_dir());
  // The fake MTA: what `sendmail -t` gets on stdin becomes one file per mail.
  write_text(tmp_ / "bin" / "sendmail",
             "#!/bin/sh\n[ \"$1\" = -t ] || exit 64\nn=$(ls '" + mail_dir().native() +
                 "' | wc -l)\ncat > '" + mail_dir().native() + "'/mail.$n\n",
             0755);
}

std::vector<std::string> RunFixture::env(const std::vector<std::string>& extra) const {
  const char* path = std::getenv("PATH");
  std::vector<std::string> e{
      "COFFER_CONFIG=" + config().native(), "COFFER_RUNTIME_DIR=" + (tmp_ / "run").native(),
      "PATH=" + (tmp_ / "bin").native() + ":" + (path ? path : "/usr/bin:/bin")};
  e.insert(e.end(), extra.begin(), extra.end());
  return e;
}

RunResult RunFixture::coffer(std::vector<std::string> args,
                             const std::vector<std::string>& extra) const {
  return run_coffer(args, {}, env(extra));
}

std::vector<std::string> RunFixture::mails() const {
  std::vector<std::string> out;
  for (int i = 0; std::filesystem::exists(mail_dir() / ("mail." + std::to_string(i))); ++i)
    out.push_back(read_file(mail_dir() / ("mail." + std::to_string(i))));
  return out;
}

std::map<std::string, double> parse_prometheus(const std::string& text) {
  std::map<std::string, double> m;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.rfind(' ');
    m[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return m;
}

std::vector<std::string> json_lines(const std::string& out, const std::string& type) {
  std::vector<std::string> r;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') continue;
    if (nlohmann::json::parse(line).value("type", "") == type) r.push_back(line);
  }
  return r;
}

}  // namespace coffer::test
