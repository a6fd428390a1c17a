#include "coffer/util/signals.hpp"

#include <csignal>
#include <cstring>
#include <string>

#include "coffer/util/error.hpp"

namespace coffer {
namespace {
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_signal(int sig) {
  g_signal = sig;
}
}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking read returns EINTR and sees the flag
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a dropped peer is an EPIPE error with a path, not a death
}

bool interrupted() noexcept {
  return g_signal != 0;
}
int interrupt_signal() noexcept {
  return g_signal;
}

void check_interrupted(const char* where) {
  if (g_signal != 0)
    fail(ErrorKind::interrupted, where, "", std::string("interrupted by ") + strsignal(g_signal));
}

}  // namespace coffer
