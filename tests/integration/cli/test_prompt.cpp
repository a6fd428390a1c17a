// The passphrase prompt on a real pseudo-terminal: it is read without echo, and repeated and
// compared when a new passphrase is set.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <nlohmann/json.hpp>

#include "coffer/util/process.hpp"
#include "run_coffer.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using namespace coffer::test;

namespace {

// Runs argv on a new pty; whenever the output ends with a prompt, types the next answer.
struct PtyRun {
  int exit_code = -1;
  std::string screen;
};

PtyRun run_on_pty(const std::vector<std::string>& argv, std::vector<std::string> answers) {
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  PtyRun run;
  std::size_t answered = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) {
      char buf[512];
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;  // EIO: the child closed the terminal
      run.screen.append(buf, static_cast<std::size_t>(n));
    }
    // Answer only once the prompt is visible: by then echo is off (it is turned off first).
    std::size_t prompts = 0;
    for (std::size_t at = 0; (at = run.screen.find(": ", at)) != std::string::npos; at += 2)
      ++prompts;
    if (answered < answers.size() && prompts > answered && run.screen.size() >= 2 &&
        run.screen.compare(run.screen.size() - 2, 2, ": ") == 0) {
      ::usleep(100000);
      std::string line = answers[answered++] + "\n";
      (void)::write(master, line.data(), line.size());
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

}  // namespace

TEST(Prompt, PassphraseIsReadFromTheTerminalWithoutEcho) {
  TempDir dir;
  std::filesystem::path img = dir / "vault.img";
  write_text(dir / "pass", "typed secret 1\n", 0600);
  run_checked({"truncate", "-s", "40M", img}, "make", "image");
  run_checked({"cryptsetup", "luksFormat", "-q", "--type", "luks2", "--pbkdf", "argon2id",
               "--pbkdf-memory", "4096", "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "1",
               "--key-file", dir / "pass", "--keyfile-size", "14", img},
              "luksFormat", img.native());
  // add-key with no key options: asks for the existing passphrase, then the new one twice.
  PtyRun r =
      run_on_pty({"/usr/bin/env", "COFFER_CONFIG=", "COFFER_RUNTIME_DIR=" + (dir / "run").native(),
                  coffer_bin(), "vault", "add-key", img.native(), "--kdf-memory", "4M",
                  "--kdf-iterations", "4", "--kdf-parallel", "1"},
                 {"typed secret 1", "second secret", "second secret"});
  EXPECT_EQ(r.exit_code, 0) << r.screen;
  EXPECT_NE(r.screen.find("Passphrase for"), std::string::npos) << r.screen;
  EXPECT_NE(r.screen.find("Repeat passphrase"), std::string::npos) << r.screen;
  EXPECT_EQ(r.screen.find("typed secret"), std::string::npos) << "echoed: " << r.screen;
  EXPECT_EQ(r.screen.find("second secret"), std::string::npos) << "echoed: " << r.screen;
  // The new passphrase opens a slot.
  write_text(dir / "second", "second secret\n", 0600);
  RunResult check =
      run_coffer({"vault", "remove-key", img, "--passphrase-file", dir / "second"}, {},
                 {"COFFER_CONFIG=", "COFFER_RUNTIME_DIR=" + (dir / "run").native()});
  EXPECT_EQ(check.exit_code, 0) << check.err;

  // Two different new passphrases: refused, nothing added.
  r = run_on_pty({"/usr/bin/env", "COFFER_CONFIG=", "COFFER_RUNTIME_DIR=" + (dir / "run").native(),
                  coffer_bin(), "vault", "add-key", img.native(), "--passphrase-file",
                  (dir / "pass").native()},
                 {"one", "two"});
  EXPECT_EQ(r.exit_code, 2) << r.screen;
  EXPECT_NE(r.screen.find("differ"), std::string::npos) << r.screen;
}
