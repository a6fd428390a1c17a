// coffer init: the config it writes passes `config check`, it never overwrites one, and it says
// what to do next.
#include <gtest/gtest.h>

#include "coffer/util/fd.hpp"
#include "run_coffer.hpp"
#include "temp_dir.hpp"

using namespace coffer;
using namespace coffer::test;

TEST(Init, WritesAConfigThatPassesCheckAndNeverOverwritesOne) {
  TempDir t;
  std::filesystem::path cfg = t / "etc" / "coffer.toml";
  std::vector<std::string> env{"COFFER_CONFIG=", "COFFER_RUNTIME_DIR=" + (t / "run").native()};
  RunResult r = run_coffer({"init", "--config", cfg.native()}, {}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1. edit the [[source]]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2. coffer -c " + cfg.native() + " config check"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("3. systemctl enable --now coffer.timer"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("off-site"), std::string::npos) << r.out;
  std::string written = read_file(cfg);
  EXPECT_NE(written.find("\n# [[source]]\n"), std::string::npos) << "commented examples";

  RunResult check = run_coffer({"config", "check", "-c", cfg.native()}, {}, env);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  write_text(cfg, "# mine\n");
  r = run_coffer({"init", "--config", cfg.native()}, {}, env);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("refusing to overwrite"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(cfg), "# mine\n");

  r = run_coffer(
      {"init", "--config", (t / "other.toml").native(), "--generate-key-file", (t / "k").native()},
      {}, env);
  EXPECT_EQ(r.exit_code, 2) << "a key file needs a vault: " << r.err;
  EXPECT_FALSE(std::filesystem::exists(t / "k"));
  EXPECT_FALSE(std::filesystem::exists(t / "other.toml"));
}
