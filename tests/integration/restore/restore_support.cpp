#include "restore_support.hpp"

#include <gtest/gtest.h>
#include <thread>

#include "coffer/snapshot/layout.hpp"
#include "run_coffer.hpp"

namespace fs = std::filesystem;

namespace coffer::test {

std::string backup(const fs::path& src, const fs::path& repo, const std::string& name) {
  fs::create_directories(repo);
  auto before = snapshot::list_complete(repo, name).size();
  auto r = run_coffer({"backup", src.native(), repo.native(), "--name", name});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto all = snapshot::list_complete(repo, name);
  EXPECT_EQ(all.size(), before + 1);
  return all.empty() ? std::string() : all.back().name;
}

std::string rsync_changes(const fs::path& expected, const fs::path& actual) {
  auto r = run_process({"rsync", "-aHAXn", "--checksum", "--itemize-changes", "--delete",
                        expected.native() + "/", actual.native() + "/"});
  if (r.exit_code != 0) return "rsync failed: " + r.err;
  return r.out;
}

std::vector<std::string> entries_of(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  return out;
}

int lines_containing(const std::string& text, const std::string& needle) {
  int n = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (line.find(needle) != std::string::npos) ++n;
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return n;
}

}  // namespace coffer::test
