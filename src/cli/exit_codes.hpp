// The exit codes of coffer, in one place (documented in docs/exit-codes.md).
#pragma once

#include "coffer/util/error.hpp"

namespace coffer::cli {

enum ExitCode : int {
  kOk = 0,
  kError = 1,
  kUsage = 2,          // bad command line or configuration
  kWarnings = 3,       // done, with warnings (files changed or vanished while read, ...)
  kMissing = 10,       // vault or replica missing
  kLocked = 11,        // another run holds the lock
  kBadKey = 12,        // wrong key file or passphrase
  kIntegrity = 13,     // integrity failure detected
  kInterrupted = 130,  // SIGINT/SIGTERM
};

constexpr int exit_code_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::failed:
      return kError;
    case ErrorKind::usage:
      return kUsage;
    case ErrorKind::missing:
      return kMissing;
    case ErrorKind::locked:
      return kLocked;
    case ErrorKind::bad_key:
      return kBadKey;
    case ErrorKind::integrity:
      return kIntegrity;
    case ErrorKind::interrupted:
      return kInterrupted;
  }
  return kError;
}

// The worst-of rule of `coffer run` (docs/exit-codes.md, "Precedence"): an interruption, then
// damage, a wrong key, something missing, an error, a bad config, a lock held, warnings, success.
constexpr int severity(int code) {
  switch (code) {
    case kInterrupted:
      return 8;
    case kIntegrity:
      return 7;
    case kBadKey:
      return 6;
    case kMissing:
      return 5;
    case kError:
      return 4;
    case kUsage:
      return 3;
    case kLocked:
      return 2;
    case kWarnings:
      return 1;
    case kOk:
      return 0;
  }
  return 4;
}
constexpr int worse_exit_code(int a, int b) {
  return severity(b) > severity(a) ? b : a;
}

constexpr const char* kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::failed:
      return "error";
    case ErrorKind::usage:
      return "usage";
    case ErrorKind::missing:
      return "missing";
    case ErrorKind::locked:
      return "locked";
    case ErrorKind::bad_key:
      return "bad_key";
    case ErrorKind::integrity:
      return "integrity";
    case ErrorKind::interrupted:
      return "interrupted";
  }
  return "error";
}

}  // namespace coffer::cli
