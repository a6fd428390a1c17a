#include "link_worker.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>

#include "coffer/util/error.hpp"
#include "coffer/util/signals.hpp"

namespace coffer::transfer {

LinkWorker::LinkWorker() : thread_([this] { run(); }) {}

LinkWorker::~LinkWorker() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LinkWorker::add(std::uint32_t dir_key, int from_dir, int to_dir, std::uint32_t id,
                     std::string name) {
  if (dir_key != current_key_ || current_.links.size() >= 512) {
    submit();
    current_key_ = dir_key;
    // Owned as soon as they exist: a failure of the second leaves nothing open.
    UniqueFd from(::fcntl(from_dir, F_DUPFD_CLOEXEC, 0));
    if (!from) throw_errno("duplicate directory descriptor for", "link worker", errno);
    UniqueFd to(::fcntl(to_dir, F_DUPFD_CLOEXEC, 0));
    if (!to) throw_errno("duplicate directory descriptor for", "link worker", errno);
    current_.from = std::move(from);
    current_.to = std::move(to);
  }
  current_.links.emplace_back(id, std::move(name));
}

void LinkWorker::submit() {
  if (current_.links.empty()) {
    current_ = Batch{};
    return;
  }
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(current_));
  }
  current_ = Batch{};
  cv_.notify_all();
}

std::vector<LinkWorker::Failure> LinkWorker::drain() {
  submit();
  current_key_ = -1;
  std::unique_lock lock(mu_);
  // A no-change run of a big tree queues a long while of links: SIGINT/SIGTERM stop the wait
  // (the worker drops what is left, the snapshot stays in progress).
  while (
      !cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return queue_.empty() && !busy_; }))
    check_interrupted("making hard links");
  check_interrupted("making hard links");  // links may have been dropped: never report them done
  return std::exchange(failures_, {});
}

void LinkWorker::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_ with nothing left
    if (interrupted()) {         // nobody waits for these any more
      queue_.clear();
      cv_.notify_all();
      continue;
    }
    Batch b = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    std::vector<Failure> failed;
    for (const auto& [id, name] : b.links) {
      if (interrupted()) break;
      if (::linkat(b.from.get(), name.c_str(), b.to.get(), name.c_str(), 0) != 0)
        failed.push_back({id, errno});
    }
    lock.lock();
    failures_.insert(failures_.end(), failed.begin(), failed.end());
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace coffer::transfer
