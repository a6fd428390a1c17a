// B's end of a session with the helper on C, and how B judges what C reports against its record.
#pragma once

#include <memory>
#include <string>

#include "protocol.hpp"
#include "target_state.hpp"
#include "transport.hpp"

namespace coffer::replicate {

class ClientSession {
 public:
  ClientSession(const TargetSpec& target, std::uint64_t rate_limit = 0);
  ~ClientSession();

  // HELLO: C finishes any committed journal and reports its state.
  ReplicaState hello();
  void init();
  Manifest fetch_manifest();
  void bye();
  Channel& channel() { return *ch_; }
  const std::string& dest() const { return dest_; }
  // The protocol version the helper chose in HELLO_REPLY.
  std::uint16_t version() const { return version_; }

 private:
  std::string dest_;
  std::uint16_t version_ = 0;
  std::unique_ptr<HelperLink> link_;
  std::unique_ptr<Channel> ch_;
};

// How C's manifest relates to B's record of the target.
enum class Standing {
  matches,       // the generation B recorded
  next_pending,  // the generation after it, committed by a run that died before recording it
  no_record,     // B has no record: C's manifest can only be checked by its MAC
  missing,       // B has a record, C has no manifest
  mismatch,      // anything else: rolled back, replaced, another replica
};

struct Assessment {
  Standing standing = Standing::mismatch;
  std::string explanation;  // for mismatch and missing: what C holds versus what B committed
};

Assessment assess(const TargetState& ts, const ReplicaState& st, const std::string& dest);

}  // namespace coffer::replicate
