// A libext2fs io_manager whose blocks come from reader::Image (decrypted in user space).
// Modelled on the shape of e2fsprogs' unix_io: open/close/set_blksize/read_blk(64); every write
// entry point returns EXT2_ET_RO_FILSYS, so nothing can reach the image even by mistake.
#include "io_manager.hpp"

#include <ext2fs/ext2fs.h>

#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <utility>

#include "coffer/util/error.hpp"

namespace coffer::reader {
namespace {

// ext2fs_open2 passes only a name to the manager's open(): the name is a key into this table.
std::mutex registry_mutex;
std::map<std::string, const Image*> registry;

struct Channel {
  const Image* image;
};

thread_local std::exception_ptr pending_error;

errcode_t image_open(const char* name, int flags, io_channel* out) {
  if (flags & IO_FLAG_RW) return EXT2_ET_RO_FILSYS;
  const Image* image = nullptr;
  {
    std::lock_guard lock(registry_mutex);
    auto it = registry.find(name);
    if (it == registry.end()) return EXT2_ET_BAD_DEVICE_NAME;
    image = it->second;
  }
  auto* ch = new (std::nothrow) struct_io_channel{};
  auto* priv = new (std::nothrow) Channel{image};
  char* copy = strdup(name);
  if (!ch || !priv || !copy) {
    delete ch;
    delete priv;
    std::free(copy);
    return EXT2_ET_NO_MEMORY;
  }
  ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
  ch->manager = image_io_manager();
  ch->name = copy;
  ch->block_size = 1024;  // libext2fs's default until set_blksize
  ch->refcount = 1;
  ch->private_data = priv;
  *out = ch;
  return 0;
}

errcode_t image_close(io_channel ch) {
  if (--ch->refcount > 0) return 0;
  delete static_cast<Channel*>(ch->private_data);
  std::free(ch->name);
  delete ch;
  return 0;
}

errcode_t image_set_blksize(io_channel ch, int blksize) {
  ch->block_size = blksize;
  return 0;
}

errcode_t image_read_blk64(io_channel ch, unsigned long long block, int count, void* data) {
  auto* priv = static_cast<Channel*>(ch->private_data);
  // A negative count is a byte count (libext2fs convention).
  std::size_t size =
      count < 0 ? static_cast<std::size_t>(-count)
                : static_cast<std::size_t>(count) * static_cast<std::size_t>(ch->block_size);
  std::uint64_t offset = block * static_cast<std::uint64_t>(ch->block_size);
  try {
    priv->image->read(offset, {static_cast<std::byte*>(data), size});
  } catch (...) {
    // libext2fs only passes an errcode_t up: the Error itself (an integrity error naming the
    // block, a lost link) waits here for FileSystem to rethrow.
    pending_error = std::current_exception();
    return EXT2_ET_SHORT_READ;
  }
  return 0;
}

errcode_t image_read_blk(io_channel ch, unsigned long block, int count, void* data) {
  return image_read_blk64(ch, block, count, data);
}

errcode_t image_write_blk(io_channel, unsigned long, int, const void*) {
  return EXT2_ET_RO_FILSYS;
}
errcode_t image_write_blk64(io_channel, unsigned long long, int, const void*) {
  return EXT2_ET_RO_FILSYS;
}
errcode_t image_write_byte(io_channel, unsigned long, int, const void*) {
  return EXT2_ET_RO_FILSYS;
}
errcode_t image_flush(io_channel) {
  return 0;
}
errcode_t image_set_option(io_channel, const char*, const char*) {
  return EXT2_ET_INVALID_ARGUMENT;
}

struct_io_manager manager = [] {
  struct_io_manager m{};
  m.magic = EXT2_ET_MAGIC_IO_MANAGER;
  m.name = "coffer image (user-space dm-crypt)";
  m.open = image_open;
  m.close = image_close;
  m.set_blksize = image_set_blksize;
  m.read_blk = image_read_blk;
  m.write_blk = image_write_blk;
  m.flush = image_flush;
  m.write_byte = image_write_byte;
  m.set_option = image_set_option;
  m.read_blk64 = image_read_blk64;
  m.write_blk64 = image_write_blk64;
  return m;
}();

}  // namespace

void rethrow_read_error() {
  if (std::exception_ptr e = std::exchange(pending_error, nullptr)) std::rethrow_exception(e);
}

io_manager image_io_manager() {
  return &manager;
}

ImageRegistration::ImageRegistration(const Image& image)
    : name_("coffer-image:" + std::to_string(reinterpret_cast<std::uintptr_t>(&image))) {
  std::lock_guard lock(registry_mutex);
  registry[name_] = &image;
}

ImageRegistration::~ImageRegistration() {
  std::lock_guard lock(registry_mutex);
  registry.erase(name_);
}

}  // namespace coffer::reader
