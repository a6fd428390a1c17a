// SIGINT, SIGTERM and SIGHUP set a flag instead of killing the process, so that long operations
// stop at the next check and unwind through the RAII guards that unmount and unmap.
#pragma once

namespace coffer {

void install_interrupt_handlers();
bool interrupted() noexcept;
int interrupt_signal() noexcept;
// Throws Error(kind interrupted) if a signal arrived; `where` names what was being done.
void check_interrupted(const char* where);

}  // namespace coffer
