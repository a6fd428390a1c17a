#include "bounded_run.hpp"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <thread>

#include "run_coffer.hpp"

namespace coffer::test {

bool exited_by(Process& p, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    siginfo_t info{};
    // WNOWAIT: the child stays a zombie, so Process::wait() still reaps it and gets its code.
    if (::waitid(P_PID, static_cast<id_t>(p.pid()), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == p.pid())
      return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

BoundedResult run_coffer_bounded(const std::vector<std::string>& args, std::chrono::seconds limit) {
  std::vector<std::string> argv{coffer_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  SpawnOptions o;
  o.pipe_stderr = true;
  o.null_stdin = true;
  auto start = std::chrono::steady_clock::now();
  Process p(argv, o);
  BoundedResult r;
  // stderr is read while waiting, so a chatty child never blocks on a full pipe.
  auto deadline = start + limit;
  char buf[4096];
  for (;;) {
    pollfd pfd{p.stderr_fd().get(), POLLIN, 0};
    int wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       deadline - std::chrono::steady_clock::now())
                                       .count());
    if (wait_ms <= 0) break;
    if (::poll(&pfd, 1, std::min(wait_ms, 100)) > 0) {
      ssize_t n = ::read(p.stderr_fd().get(), buf, sizeof buf);
      if (n <= 0) break;  // the child closed stderr: it is exiting
      r.err.append(buf, static_cast<std::size_t>(n));
    }
  }
  if (!exited_by(p, deadline)) {
    p.kill(SIGKILL);
    p.wait();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
  }
  r.exit_code = p.wait();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace coffer::test
