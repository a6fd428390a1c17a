// Hard links made by a second thread: on a no-change run the receiver's time goes into 50,000
// linkat(2) calls, which need nothing from the protocol. The main thread decodes and decides,
// this thread links; failures (EMLINK, a vanished previous file) come back to the main thread,
// which copies or requests the file instead.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "coffer/util/fd.hpp"

namespace coffer::transfer {

class LinkWorker {
 public:
  struct Failure {
    std::uint32_t id;
    int err;
  };

  LinkWorker();
  ~LinkWorker();  // finishes queued links (drops them after SIGINT/SIGTERM)
  LinkWorker(const LinkWorker&) = delete;

  // Queues link(from_dir/name -> to_dir/name) for entry `id`. `dir_key` names the directory
  // pair (fd numbers are reused); the fds are borrowed: the worker keeps its own duplicates.
  void add(std::uint32_t dir_key, int from_dir, int to_dir, std::uint32_t id, std::string name);
  // Waits until every queued link is done; returns and clears the failures. Throws the
  // interrupted Error when a signal arrives meanwhile.
  std::vector<Failure> drain();

 private:
  struct Batch {
    UniqueFd from, to;
    std::vector<std::pair<std::uint32_t, std::string>> links;
  };
  void submit();
  void run();

  Batch current_;
  std::int64_t current_key_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  std::vector<Failure> failures_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace coffer::transfer
