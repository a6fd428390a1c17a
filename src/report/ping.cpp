// Healthchecks-style pings over libcurl (http and https): a GET of `<url>/start`, a POST of the
// log tail to `<url>` or `<url>/fail`. Timeouts are short: a monitoring service that is down
// must not hold up the backup; the caller turns a failure into a warning.
#include <curl/curl.h>
#include <fmt/format.h>
#include <memory>
#include <mutex>

#include "coffer/report/report.hpp"
#include "coffer/util/error.hpp"

namespace coffer::report {
namespace {

struct EasyDeleter {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

// The answer's body is not needed; libcurl would print it to stdout without a callback.
std::size_t discard(char*, std::size_t size, std::size_t n, void*) {
  return size * n;
}

void init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string ping_url(std::string url, Ping kind) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (kind == Ping::start) return url + "/start";
  if (kind == Ping::failure) return url + "/fail";
  return url;
}

}  // namespace

void ping(const std::string& base, Ping kind, std::string_view body, std::chrono::seconds timeout) {
  init_once();
  std::string url = ping_url(base, kind);
  Easy c(curl_easy_init());
  if (!c) fail(ErrorKind::failed, "ping", url, "curl_easy_init failed");
  char errbuf[CURL_ERROR_SIZE] = {};
  std::string payload(body);
  std::unique_ptr<curl_slist, SlistDeleter> headers(
      curl_slist_append(nullptr, "Content-Type: text/plain; charset=utf-8"));
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for DNS timeouts in a daemon
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
  curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT, static_cast<long>(timeout.count()));
  curl_easy_setopt(c.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c.get(), CURLOPT_USERAGENT, "coffer");
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, discard);
  if (kind != Ping::start) {
    curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
  }
  CURLcode rc = curl_easy_perform(c.get());
  if (rc != CURLE_OK)
    fail(ErrorKind::failed, "ping", url, *errbuf ? errbuf : curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299)
    fail(ErrorKind::failed, "ping", url, fmt::format("HTTP status {}", status));
}

}  // namespace coffer::report
