// A ByteStream whose input is read by a background thread into a bounded buffer. The SSH
// channel stream only moves our writes forward while somebody reads (window adjustments arrive
// with the input), so the side that writes bulk data over SSH wraps its stream in this.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "coffer/util/stream.hpp"

namespace coffer::transfer {

class ReadAheadStream final : public ByteStream {
 public:
  explicit ReadAheadStream(ByteStream& inner, std::size_t limit = 8u << 20);
  // Closes our output (so the peer ends) and waits for the reader to see the end of the input.
  ~ReadAheadStream() override;

  std::size_t read_some(std::span<std::byte> buf) override;
  void write_all(std::span<const std::byte> data) override { inner_.write_all(data); }
  void close_write() override { inner_.close_write(); }
  const std::string& peer() const override { return inner_.peer(); }

 private:
  void reader();
  ByteStream& inner_;
  std::size_t limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<std::byte>> chunks_;
  std::size_t front_offset_ = 0;
  std::size_t buffered_ = 0;
  bool eof_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace coffer::transfer
