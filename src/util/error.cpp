#include "coffer/util/error.hpp"

namespace coffer {

std::string format_error(std::string_view operation, std::string_view subject,
                         std::string_view reason, std::error_code code) {
  std::string msg(operation);
  if (!subject.empty()) {
    if (!msg.empty()) msg += ' ';
    msg += subject;
  }
  auto add = [&msg](std::string_view part) {
    if (part.empty()) return;
    if (!msg.empty()) msg += ": ";
    msg += part;
  };
  add(reason);
  if (code) add(code.message());
  return msg;
}

Error::Error(ErrorKind kind, std::string operation, std::string subject, std::string reason,
             std::error_code code)
    : std::runtime_error(format_error(operation, subject, reason, code)),
      kind_(kind),
      operation_(std::move(operation)),
      subject_(std::move(subject)),
      reason_(std::move(reason)),
      code_(code) {}

void throw_errno(std::string_view operation, const Subject& subject, int err, ErrorKind kind) {
  throw Error(kind, std::string(operation), subject.text, {},
              std::error_code(err, std::generic_category()));
}

void fail(ErrorKind kind, std::string_view operation, std::string_view subject,
          std::string_view reason) {
  throw Error(kind, std::string(operation), std::string(subject), std::string(reason));
}

}  // namespace coffer
