#include <unistd.h>
#include <cstdlib>
#include <cstring>
#include <string>

#include "app.hpp"

namespace {

// coffer touches large buffers once per run: the KDF's memory (libcryptsetup's argon2), digests
// of the image, read buffers. Each first touch of a 4 KiB page is a page fault, and on virtual
// machines that return freed memory to the host a fault costs ~16 us: 30,000 faults were a
// third of B's CPU time in a replication run (docs/replication.md, Performance). glibc's malloc
// asks for transparent huge pages (madvise) when the tunable glibc.malloc.hugetlb=1 is set, but
// reads tunables only at startup, so the program re-executes itself once with it set. An
// administrator's own GLIBC_TUNABLES that mention it are left alone; where the program file
// cannot be found or executed again the run simply goes on with ordinary pages.
//
// Not for the helpers other hosts start over SSH (`agent` on A, `replica-serve` on C): their
// startup is on every run's critical path, a second exec costs ~15 ms, and their big buffers
// ask for huge pages themselves (util/direct_io.hpp).
bool started_as_remote_helper(char** argv) {
  for (char** a = argv + 1; *a; ++a) {
    if (**a == '-') continue;  // global options come before the subcommand
    return std::strcmp(*a, "agent") == 0 || std::strcmp(*a, "replica-serve") == 0;
  }
  return false;
}

void use_huge_pages_for_large_allocations(char** argv) {
  constexpr const char* kTunable = "glibc.malloc.hugetlb";
  if (started_as_remote_helper(argv)) return;
  const char* current = std::getenv("GLIBC_TUNABLES");
  if (current && std::strstr(current, kTunable))
    return;  // set by us (already re-executed) or the admin
  // The file's own path, not /proc/self/exe: the process name (ps, pgrep) stays "coffer".
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return;
  self[n] = '\0';
  if (std::strstr(self, " (deleted)")) return;  // replaced by an upgrade while starting
  std::string value = std::string(kTunable) + "=1";
  if (current && *current) value = std::string(current) + ":" + value;
  if (::setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0) return;
  ::execv(self, argv);
  ::unsetenv("GLIBC_TUNABLES");  // exec failed: carry on as we are, and do not pass it on
  if (current) ::setenv("GLIBC_TUNABLES", current, 1);
}

}  // namespace

int main(int argc, char** argv) {
  use_huge_pages_for_large_allocations(argv);
  return coffer::cli::run(argc, argv);
}
