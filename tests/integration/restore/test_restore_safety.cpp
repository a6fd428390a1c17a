// coffer restore never writes outside TARGET, whatever the catalog, the snapshot tree or TARGET
// hold; an interrupted restore leaves no half-written file and is finished by --overwrite
// if-changed; -n writes nothing; a restore without root says once that owners were skipped.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <chrono>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "coffer/snapshot/layout.hpp"
#include "coffer/util/fd.hpp"
#include "file_hash.hpp"
#include "restore_support.hpp"
#include "run_coffer.hpp"
#include "source_tree.hpp"
#include "temp_dir.hpp"
#include "tree_compare.hpp"

namespace fs = std::filesystem;
using namespace coffer::test;

namespace {

fs::path catalog_of(const fs::path& repo) {
  return coffer::snapshot::list_complete(repo, "h").back().catalog();
}

nlohmann::json summary(const std::string& out) {
  std::size_t pos = 0;
  while (pos < out.size()) {
    auto nl = out.find('\n', pos);
    auto j = nlohmann::json::parse(out.substr(pos, nl - pos), nullptr, false);
    if (!j.is_discarded() && j.value("type", "") == "summary") return j;
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return {};
}

}  // namespace

TEST(RestoreSafety, DoctoredCatalogWithDotDotOrAbsoluteNamesIsRefused) {
  TempDir t;
  make_bulk_tree(t / "src", 5, 100, 1);
  backup(t / "src", t / "repo");
  fs::create_directories(t / "outside");
  fs::path cat = catalog_of(t / "repo");
  std::string original = coffer::read_file(cat);
  std::string hash(64, 'a');
  std::string outside = (t / "outside").native();
  std::vector<std::string> planted = {
      "f 0644 0 0 3 1600000000.000000000 " + hash + " - - - ../../../../outside/pwned\n",
      "f 0644 0 0 3 1600000000.000000000 " + hash + " - - - d0/../../outside/pwned\n",
      "f 0644 0 0 3 1600000000.000000000 " + hash + " - - - " + outside + "/pwned\n",
      "l 0777 0 0 1 1600000000.000000000 - - - - evil " + outside + "\n" +
          "f 0644 0 0 3 1600000000.000000000 " + hash + " - - - evil/pwned\n",
  };
  for (const auto& line : planted) {
    write_text(cat, original + line);
    fs::remove_all(t / "out");
    auto r = run_coffer({"restore", (t / "repo").native(), "latest", (t / "out").native()});
    EXPECT_EQ(r.exit_code, 13) << line << r.err;
    EXPECT_EQ(coffer::test::count_lines(r.err), 1) << r.err;
    EXPECT_TRUE(entries_of(t / "outside").empty()) << line;
    EXPECT_TRUE(entries_of(t / "out").empty())
        << line << ": nothing is written before the catalog is checked";
  }
}

TEST(RestoreSafety, SymlinksInTargetAreReplacedNeverFollowed) {
  TempDir t;
  make_fidelity_tree(t / "src");
  backup(t / "src", t / "repo");
  fs::create_directories(t / "outside");
  write_text(t / "victim", "victim\n");
  fs::create_directories(t / "out");
  fs::create_directory_symlink(t / "outside", t / "out/dir");  // where the snapshot has dir/
  fs::create_symlink(t / "victim", t / "out/plain.txt");       // where it has a file
  auto refused = run_coffer({"restore", (t / "repo").native(), "latest", (t / "out").native()});
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  auto never = run_coffer(
      {"restore", (t / "repo").native(), "latest", (t / "out").native(), "--overwrite", "never"});
  EXPECT_EQ(never.exit_code, 1) << never.err;
  EXPECT_NE(never.err.find("non-directory"), std::string::npos) << never.err;
  EXPECT_TRUE(entries_of(t / "outside").empty());
  auto r = run_coffer({"restore", (t / "repo").native(), "latest", (t / "out").native(),
                       "--overwrite", "if-changed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(entries_of(t / "outside").empty());
  EXPECT_EQ(coffer::read_file(t / "victim"), "victim\n");
  auto diffs = compare_trees(t / "src", t / "out");
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
  EXPECT_EQ(rsync_changes(t / "src", t / "out"), "");
}

TEST(RestoreSafety, SymlinkedParentInTheSnapshotTreeIsNotFollowed) {
  TempDir t;
  make_bulk_tree(t / "src", 14, 100, 2);
  backup(t / "src", t / "repo");
  // B's tree doctored: d0 becomes a symlink to a folder elsewhere with files of the same names.
  fs::path tree = coffer::snapshot::list_complete(t / "repo", "h").back().tree();
  fs::create_directories(t / "elsewhere");
  for (const auto& e : entries_of(tree / "d0"))
    write_text(t / "elsewhere" / e, "not from the snapshot");
  fs::remove_all(tree / "d0");
  fs::create_directory_symlink(t / "elsewhere", tree / "d0");
  fs::create_directories(t / "outside");
  auto r = run_coffer({"restore", (t / "repo").native(), "latest", (t / "out").native()});
  EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 13) << r.exit_code << r.err;
  EXPECT_TRUE(entries_of(t / "outside").empty());
  for (const auto& p : regular_files(t / "out"))
    EXPECT_NE(coffer::read_file(t / "out" / p), "not from the snapshot") << p;
}

TEST(RestoreSafety, KilledRestoreLeavesNoPartialFileAndIfChangedFinishesIt) {
  TempDir t;
  make_bulk_tree(t / "src", 400, 256 * 1024, 9);
  backup(t / "src", t / "repo");
  coffer::SpawnOptions quiet;
  quiet.null_stdin = true;
  coffer::Process p(
      {coffer_bin(), "restore", (t / "repo").native(), "latest", (t / "out").native()}, quiet);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(t / "out/d3") && count_regular(t / "out") > 60) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  p.kill(SIGKILL);
  ASSERT_EQ(p.wait(), 128 + SIGKILL) << "the restore finished before it could be interrupted";
  // Under its real name every file is whole; partial data only ever sits in the staging folder.
  int placed = 0;
  for (const auto& f : regular_files(t / "out")) {
    if (f.find(".coffer-restore") != std::string::npos) continue;
    ++placed;
    EXPECT_EQ(hash_file(t / "out" / f), hash_file(t / "src" / f)) << f;
  }
  ASSERT_GT(placed, 0);
  ASSERT_LT(placed, 400);
  auto r = run_coffer({"--json", "restore", (t / "repo").native(), "latest", (t / "out").native(),
                       "--overwrite", "if-changed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto s = summary(r.out);
  EXPECT_GE(s["unchanged"].get<int>(), placed) << r.out;
  EXPECT_LE(s["restored"].get<int>() + s["updated"].get<int>(), 400 - placed + 8)
      << r.out;  // + directories
  auto diffs = compare_trees(t / "src", t / "out");
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
  EXPECT_EQ(rsync_changes(t / "src", t / "out"), "");
}

TEST(RestoreSafety, DryRunListsEachActionAndWritesNothing) {
  TempDir t;
  make_bulk_tree(t / "src", 10, 1000, 4);
  backup(t / "src", t / "repo");
  auto fresh = run_coffer({"restore", "-n", (t / "repo").native(), "latest", (t / "new").native()});
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_FALSE(fs::exists(t / "new"));
  EXPECT_EQ(lines_containing(fresh.out, "restored "), 10 + 7 + 1)
      << fresh.out;  // files, dirs, root
  EXPECT_NE(fresh.out.find("would restore"), std::string::npos);

  ASSERT_EQ(
      run_coffer({"restore", (t / "repo").native(), "latest", (t / "out").native()}).exit_code, 0);
  write_text(t / "out/d1/file1", "changed by the user");
  write_text(t / "out/extra.txt", "not in the snapshot");
  std::string before_hash = hash_file(t / "out/d1/file1");
  auto listing = list_tree(t / "out");
  auto r = run_coffer({"--dry-run", "restore", (t / "repo").native(), "latest",
                       (t / "out").native(), "--overwrite", "if-changed", "--delete"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines_containing(r.out, "updated   d1/file1"), 1) << r.out;
  EXPECT_EQ(lines_containing(r.out, "deleted   extra.txt"), 1) << r.out;
  EXPECT_EQ(lines_containing(r.out, "unchanged d0/file0"), 1) << r.out;
  EXPECT_EQ(list_tree(t / "out"), listing);
  EXPECT_EQ(hash_file(t / "out/d1/file1"), before_hash);
  EXPECT_TRUE(fs::exists(t / "out/extra.txt"));
}

TEST(RestoreSafety, WithoutRootOwnersAreSkippedWithOneWarningLine) {
  TempDir t;
  ::chmod(t.path().c_str(), 0755);
  for (int i = 0; i < 5; ++i) {
    fs::path f = t / "src" / ("f" + std::to_string(i));
    write_text(f, "owned " + std::to_string(i));
    ASSERT_EQ(::chown(f.c_str(), 1234, 5678), 0);
  }
  backup(t / "src", t / "repo");
  // Snapshot directories are 0700 (root's); this user is allowed to read this one.
  ::chmod(coffer::snapshot::list_complete(t / "repo", "h").back().dir.c_str(), 0755);
  fs::create_directories(t / "out");
  ASSERT_EQ(::chown((t / "out").c_str(), 65534, 65534), 0);
  auto r = coffer::run_process({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                coffer_bin(), "restore", (t / "repo").native(), "latest",
                                (t / "out").native(), "--overwrite", "if-changed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(lines_containing(r.err, "owners of 6 entries were not restored"), 1) << r.err;
  CompareOptions o;
  o.owners = false;
  auto diffs = compare_trees(t / "src", t / "out", o);
  EXPECT_TRUE(diffs.empty()) << join_lines(diffs);
}

TEST(RestoreSafety, VerifyFindsContentThatDiffersFromTheCatalog) {
  TempDir t;
  make_bulk_tree(t / "src", 7, 1000, 6);
  backup(t / "src", t / "repo");
  // Bit rot in B's tree: same size, other bytes; only the catalog's BLAKE2b can tell.
  fs::path tree = coffer::snapshot::list_complete(t / "repo", "h").back().tree();
  std::string data = coffer::read_file(tree / "d2/file2");
  data[500] = static_cast<char>(data[500] ^ 0x01);
  fs::remove(tree / "d2/file2");
  write_text(tree / "d2/file2", data);
  auto plain = run_coffer({"restore", (t / "repo").native(), "latest", (t / "plain").native()});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  auto r =
      run_coffer({"restore", (t / "repo").native(), "latest", (t / "out").native(), "--verify"});
  EXPECT_EQ(r.exit_code, 13) << r.err;
  EXPECT_EQ(lines_containing(r.err, "d2/file2"), 2) << r.err;  // the warning and the error line
}

TEST(RestoreSafety, DeleteRemovesLinksInTargetNotWhatTheyPointTo) {
  TempDir t;
  make_bulk_tree(t / "src", 7, 100, 8);
  backup(t / "src", t / "repo");
  write_text(t / "outside/precious", "keep me\n");
  ASSERT_EQ(
      run_coffer({"restore", (t / "repo").native(), "latest", (t / "out").native()}).exit_code, 0);
  fs::create_directory_symlink(t / "outside", t / "out/d0/link-out");
  write_text(t / "out/d1/extra.log", "extra");
  write_text(t / "out/keep.tmp", "excluded, so not ours to delete");
  auto r = run_coffer({"restore", (t / "repo").native(), "latest", (t / "out").native(),
                       "--overwrite", "if-changed", "--delete", "--exclude", "*.tmp"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(coffer::read_file(t / "outside/precious"), "keep me\n");
  EXPECT_FALSE(fs::exists(fs::symlink_status(t / "out/d0/link-out")));
  EXPECT_FALSE(fs::exists(t / "out/d1/extra.log"));
  EXPECT_TRUE(fs::exists(t / "out/keep.tmp"));
  // Removing the test's own file touches out/'s mtime; put back what the restore set, or
  // the comparison fails whenever the removal falls in a later second than the restore.
  auto restored_mtime = fs::last_write_time(t / "out");
  fs::remove(t / "out/keep.tmp");
  fs::last_write_time(t / "out", restored_mtime);
  EXPECT_EQ(rsync_changes(t / "src", t / "out"), "");
}
