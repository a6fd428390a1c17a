// Errors that say what failed, on which path or host, and why.
//
// Every error coffer raises is a coffer::Error: an operation ("open", "mount", "unlock key slot"),
// a subject (a path, a host, a mapping name), a reason (an errno as std::error_code, or a text),
// and a kind. The kind is what the caller may act on; only src/cli turns it into an exit code.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace coffer {

// What went wrong, in the terms the exit codes of docs/exit-codes.md speak.
enum class ErrorKind {
  failed,       // any error: I/O, a library, a remote side
  usage,        // bad command line or configuration
  missing,      // the vault or the replica does not exist
  locked,       // another run holds the lock
  bad_key,      // wrong key file or passphrase
  integrity,    // data did not match its digest or MAC
  interrupted,  // SIGINT/SIGTERM arrived
};

class Error : public std::runtime_error {
 public:
  // `reason` is used when `code` is empty; when both are given the message reads
  // "<operation> <subject>: <reason>: <code message>".
  Error(ErrorKind kind, std::string operation, std::string subject, std::string reason,
        std::error_code code = {});

  ErrorKind kind() const noexcept { return kind_; }
  const std::string& operation() const noexcept { return operation_; }
  const std::string& subject() const noexcept { return subject_; }
  const std::string& reason() const noexcept { return reason_; }
  std::error_code code() const noexcept { return code_; }

 private:
  ErrorKind kind_;
  std::string operation_;
  std::string subject_;
  std::string reason_;
  std::error_code code_;
};

// What an error is about: a path, a host, a mapping name. Converts from any of them.
struct Subject {
  std::string text;
  Subject(const std::filesystem::path& p) : text(p.native()) {}
  Subject(std::string s) : text(std::move(s)) {}
  Subject(std::string_view s) : text(s) {}
  Subject(const char* s) : text(s) {}
};

// Throws an Error of kind `failed` (or `kind`) for errno value `err`.
[[noreturn]] void throw_errno(std::string_view operation, const Subject& subject, int err,
                              ErrorKind kind = ErrorKind::failed);

// Shorthand for an error with a textual reason and no errno.
[[noreturn]] void fail(ErrorKind kind, std::string_view operation, std::string_view subject,
                       std::string_view reason);

// Builds the one-line message used by Error::what().
std::string format_error(std::string_view operation, std::string_view subject,
                         std::string_view reason, std::error_code code);

}  // namespace coffer
