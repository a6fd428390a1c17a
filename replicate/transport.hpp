// Starting the helper on C: `coffer replica-serve DIR` as a local child over pipes, or over an
// SSH exec channel for [user@]host:DIR. Both give the same ByteStream.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "coffer/replicate/replicate.hpp"
#include "coffer/util/remote.hpp"

namespace coffer::replicate {

struct Destination {
  std::string text;
  std::optional<RemoteSpec> remote;
  std::filesystem::path dir;  // local directory, or the path on the remote host
};

Destination parse_destination(std::string_view text);

class HelperLink {
 public:
  virtual ~HelperLink() = default;
  virtual ByteStream& stream() = 0;
  // Ends the session after BYE: closes our side. A local helper is waited for (it is our
  // child); a remote one is not, since everything it had to say has arrived and what it does
  // after BYE (release DIR's lock, free the applied journal's blocks) is not B's to wait for.
  virtual void finish() = 0;
  // After the stream ended unexpectedly: how the helper ended ("exited with status 127:
  // sh: 1: coffer: not found"), or empty if nothing is known.
  virtual std::string diagnose() = 0;
};

std::unique_ptr<HelperLink> start_helper(const TargetSpec& target);

}  // namespace coffer::replicate
