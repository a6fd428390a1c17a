// The libext2fs io_manager of the reader (private to src/reader).
#pragma once

#include <ext2fs/ext2fs.h>

#include <string>

#include "coffer/reader/image.hpp"

namespace coffer::reader {

io_manager image_io_manager();

// Rethrows (and clears) the error of the last failed block read on this thread, if any: what
// a libext2fs error code stands for when it came from the image.
void rethrow_read_error();

// Makes `image` openable by name through image_io_manager() for this object's lifetime.
class ImageRegistration {
 public:
  explicit ImageRegistration(const Image& image);
  ImageRegistration(const ImageRegistration&) = delete;
  ~ImageRegistration();
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

}  // namespace coffer::reader
