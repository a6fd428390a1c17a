#include <gtest/gtest.h>
#include <csignal>
#include <optional>

#include "coffer/util/error.hpp"
#include "coffer/util/process.hpp"

using namespace coffer;

TEST(Process, NoShellInterpretsArguments) {
  RunResult r = run_process({"printf", "%s|", "$HOME", "a b", ";ls"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "$HOME|a b|;ls|");
}

TEST(Process, FeedsLargeInputAndCollectsOutput) {
  std::string input(3 << 20, 'x');  // bigger than any pipe buffer
  RunResult r = run_process({"cat"}, input);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.size(), input.size());
}

TEST(Process, ExitCodeAndSignal) {
  EXPECT_EQ(run_process({"sh", "-c", "exit 7"}).exit_code, 7);
  EXPECT_EQ(run_process({"sh", "-c", "kill -9 $$"}).exit_code, 128 + 9);
}

TEST(Process, RunCheckedNamesProgramAndLastStderrLine) {
  try {
    run_checked({"sh", "-c", "echo first >&2; echo 'the real cause' >&2; exit 3"}, "format",
                "x.img");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "format x.img: sh exited with status 3 (the real cause)");
  }
}

TEST(Process, MissingProgramIsAnError) {
  EXPECT_THROW(Process({"/nonexistent/program"}), Error);
}

TEST(SplitCommand, QuotesAndEscapes) {
  EXPECT_EQ(split_command("pass show 'backup/vault key'"),
            (std::vector<std::string>{"pass", "show", "backup/vault key"}));
  EXPECT_EQ(split_command(R"(a "b \"c\"" d\ e)"),
            (std::vector<std::string>{"a", "b \"c\"", "d e"}));
  EXPECT_EQ(split_command("  "), std::vector<std::string>{});
  EXPECT_THROW(split_command("'open"), Error);
}

namespace coffer {
namespace {

TEST(ProcessMove, TheMovedFromObjectKillsNothingAndWaitsForNothing) {
  SpawnOptions o;
  o.pipe_stdin = true;
  o.pipe_stdout = true;
  std::optional<Process> first(std::in_place, std::vector<std::string>{"cat"}, o);
  pid_t pid = first->pid();
  Process second(std::move(*first));
  EXPECT_EQ(second.pid(), pid);
  EXPECT_EQ(first->pid(), -1);
  EXPECT_THROW(first->wait(), Error);
  first.reset();  // a copied pid would SIGKILL cat here
  write_all(second.stdin_fd().get(), std::string_view("alive\n"), "cat");
  char buf[6];
  ASSERT_EQ(read_full(second.stdout_fd().get(), std::as_writable_bytes(std::span(buf)), "cat"), 6u);
  EXPECT_EQ(std::string(buf, 6), "alive\n");
  EXPECT_EQ(second.wait(), 0) << "cat ended by EOF, not by a signal";
}

TEST(ProcessMove, ASecondWaitReapsNoOtherChild) {
  Process a({"true"});
  Process other({"sleep", "5"});
  EXPECT_EQ(a.wait(), 0);
  EXPECT_THROW(a.wait(), Error);  // waitpid(-1) would have reaped `other`
  EXPECT_EQ(::kill(other.pid(), 0), 0) << "still our child, not reaped";
  other.kill(SIGTERM);
  EXPECT_EQ(other.wait(), 128 + SIGTERM);
}

}  // namespace
}  // namespace coffer
