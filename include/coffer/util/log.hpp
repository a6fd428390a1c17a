// Library code reports what it does through this sink; src/cli decides how (and whether) it
// reaches a human: stderr text, --json lines, or nothing with -q.
#pragma once

#include <fmt/format.h>
#include <functional>
#include <string_view>

namespace coffer::log {

enum class Level { debug, info, warning };

using Sink = std::function<void(Level, std::string_view)>;
void set_sink(Sink sink);
void emit(Level level, std::string_view message);

template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  emit(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  emit(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  emit(Level::warning, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace coffer::log
