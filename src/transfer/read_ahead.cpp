#include "read_ahead.hpp"

#include <cstring>

namespace coffer::transfer {

ReadAheadStream::ReadAheadStream(ByteStream& inner, std::size_t limit)
    : inner_(inner), limit_(limit), thread_([this] { reader(); }) {}

ReadAheadStream::~ReadAheadStream() {
  try {
    inner_.close_write();
  } catch (...) {
  }
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ReadAheadStream::reader() {
  try {
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || buffered_ < limit_; });
        if (stop_ && eof_) return;
      }
      std::vector<std::byte> chunk(1 << 16);
      std::size_t n = inner_.read_some(chunk);
      std::lock_guard lock(mu_);
      if (n == 0) {
        eof_ = true;
        cv_.notify_all();
        return;
      }
      chunk.resize(n);
      buffered_ += n;
      chunks_.push_back(std::move(chunk));
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard lock(mu_);
    error_ = std::current_exception();
    eof_ = true;
    cv_.notify_all();
  }
}

std::size_t ReadAheadStream::read_some(std::span<std::byte> buf) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !chunks_.empty() || eof_; });
  if (chunks_.empty()) {
    if (error_) std::rethrow_exception(error_);
    return 0;
  }
  std::size_t done = 0;
  while (done < buf.size() && !chunks_.empty()) {
    auto& front = chunks_.front();
    std::size_t n = std::min(buf.size() - done, front.size() - front_offset_);
    std::memcpy(buf.data() + done, front.data() + front_offset_, n);
    done += n;
    front_offset_ += n;
    if (front_offset_ == front.size()) {
      chunks_.pop_front();
      front_offset_ = 0;
    }
  }
  buffered_ -= done;
  cv_.notify_all();
  return done;
}

}  // namespace coffer::transfer
