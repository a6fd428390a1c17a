// A vault is the file, not its name: every spelling of the image (symlink, ./ and .., a
// relative path, a second hard link) finds the same lock, mapping, runtime state and per-target
// state, and an image that another program attached as a loop device is not opened twice.
#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "coffer/util/process.hpp"
#include "file_hash.hpp"
#include "run_coffer.hpp"
#include "vault_fixture.hpp"

using namespace coffer;
using namespace coffer::test;

namespace {

// The JSON object of `type` among --json output lines.
nlohmann::json json_line(const std::string& out, const std::string& type) {
  for (std::size_t at = 0; at < out.size();) {
    auto nl = out.find('\n', at);
    auto j = nlohmann::json::parse(out.substr(at, nl - at), nullptr, false);
    if (!j.is_discarded() && j.value("type", "") == type) return j;
    at = nl == std::string::npos ? out.size() : nl + 1;
  }
  return {};
}

}  // namespace

TEST(VaultIdentity, EverySpellingOfTheImageIsOneVault) {
  VaultFixture v;
  v.create();
  const auto& dir = v.dir();
  std::filesystem::create_directory(dir / "sub");
  std::filesystem::create_symlink("vault.img", dir / "alias.img");
  std::filesystem::create_hard_link(v.image(), dir / "hard.img");
  const std::string dotted = (dir / "sub" / ".." / "." / "vault.img").native();
  // The same command run from the image's directory, naming it relatively.
  auto relative = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/env", "-C", dir.native(),
                                  "COFFER_RUNTIME_DIR=" + v.runtime().native(), coffer_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  };

  v.open_with_key();
  const std::string mapping = v.mapping();
  for (const std::string& alias :
       {(dir / "alias.img").native(), (dir / "hard.img").native(), dotted}) {
    RunResult r = v.coffer({"vault", "open", alias, "--key-file", v.key(), "--mount", dir / "m2"});
    EXPECT_EQ(r.exit_code, 1) << alias << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(alias), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("already open"), std::string::npos) << r.err;
    r = v.coffer({"vault", "status", alias, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto s = nlohmann::json::parse(r.out);
    EXPECT_EQ(s["open"], true) << alias;
    EXPECT_EQ(s["mapping"], mapping) << alias;
  }
  RunResult r =
      relative({"vault", "open", "vault.img", "--key-file", v.key(), "--mount", dir / "m2"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("already open"), std::string::npos) << r.err;
  EXPECT_EQ(nlohmann::json::parse(relative({"vault", "status", "vault.img", "--json"}).out)["open"],
            true);
  EXPECT_FALSE(std::filesystem::exists(dir / "m2")) << "a refused open mounted nothing";

  // The open vault is not replicated through another name either.
  r = v.coffer({"replicate", dir / "alias.img", dir / "C", "--key-file", v.key()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("open"), std::string::npos) << r.err;

  // Closed through the symlink: the one vault is closed.
  r = v.coffer({"vault", "close", dir / "alias.img"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(v.status()["open"], false);
  EXPECT_FALSE(std::filesystem::exists("/dev/mapper/" + mapping));

  // A second hard link: its per-target state could fork, so replicate refuses clearly.
  r = v.coffer({"replicate", dir / "hard.img", dir / "C", "--key-file", v.key()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("2 hard links"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "C" / "image"));
  std::filesystem::remove(dir / "hard.img");

  // Through the symlink, then through ./..: one per-target state, the second run builds on the
  // first (a forked state would start again at generation 1).
  r = v.coffer({"--json", "replicate", dir / "alias.img", dir / "C", "--key-file", v.key()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_line(r.out, "replicated")["generation"], 1);
  r = v.coffer({"--json", "replicate", dotted, dir / "C", "--key-file", v.key()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_line(r.out, "replicated")["base_generation"], 1);
  EXPECT_EQ(json_line(r.out, "replicated")["generation"], 2);
  r = relative({"--json", "replicate", "vault.img", (dir / "C").native(), "--key-file", v.key()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_line(r.out, "replicated")["generation"], 3);
  EXPECT_TRUE(std::filesystem::exists(v.image().native() + ".coffer"));
  EXPECT_FALSE(std::filesystem::exists((dir / "alias.img").native() + ".coffer"));
  EXPECT_EQ(hash_file(dir / "C" / "image"), hash_file(v.image()));
}

TEST(VaultIdentity, AnImageAttachedAsALoopDeviceByAnotherProgramIsNotOpened) {
  VaultFixture v;
  v.create();
  RunResult loop = run_process({"losetup", "--find", "--show", v.image()});
  ASSERT_EQ(loop.exit_code, 0) << loop.err;
  std::string node = loop.out.substr(0, loop.out.find('\n'));
  std::string hash = hash_file(v.image());
  std::filesystem::create_symlink("vault.img", v.dir() / "alias.img");
  for (const auto& spelling : {v.image(), v.dir() / "alias.img"}) {
    RunResult r =
        v.coffer({"vault", "open", spelling, "--key-file", v.key(), "--mount", v.mount()});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(node), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(spelling.native()), std::string::npos) << r.err;
  }
  nlohmann::json s = v.status();
  EXPECT_EQ(s["mapped"], false);
  EXPECT_EQ(s["foreign_loop_devices"], nlohmann::json::array({node}));
  EXPECT_EQ(hash_file(v.image()), hash);
  run_checked({"losetup", "-d", node}, "detach", node);
  // Detached, it opens as usual.
  v.open_with_key();
  v.close();
}
