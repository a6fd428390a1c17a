#include "coffer/util/log.hpp"

#include <mutex>

namespace coffer::log {
namespace {
std::mutex g_mutex;
Sink g_sink;
}  // namespace

void set_sink(Sink sink) {
  std::lock_guard lock(g_mutex);
  g_sink = std::move(sink);
}

void emit(Level level, std::string_view message) {
  std::lock_guard lock(g_mutex);
  if (g_sink) g_sink(level, message);
}

}  // namespace coffer::log
