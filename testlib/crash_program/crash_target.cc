// A tiny program that crashes on purpose, for end-to-end tests with a real minidump.
// It installs Breakpad's in-process ExceptionHandler (dumps go to argv[1]), then writes
// through a NULL pointer three calls deep. testlib/real_crash.py holds the expected
// (function, line) chain: keep every line of this file where it is, or update both.
#include <cstdio>

#include "client/linux/handler/exception_handler.h"

static bool dump_written(const google_breakpad::MinidumpDescriptor& descriptor,
                         void* /*context*/, bool succeeded) {
  // Unsafe in a real crashed process; fine here: the parent reads the path from stdout.
  std::printf("%s\n", descriptor.path());
  std::fflush(stdout);
  return succeeded;
}

__attribute__((noinline)) void crash_here(int* target) {
  *target = 42;
}

__attribute__((noinline)) void level_two(int* target) {
  crash_here(target);
}

__attribute__((noinline)) void level_one(int* target) {
  level_two(target);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DUMP_DIR\n", argv[0]);
    return 2;
  }
  google_breakpad::MinidumpDescriptor descriptor(argv[1]);
  google_breakpad::ExceptionHandler handler(descriptor, nullptr, dump_written, nullptr,
                                            true, -1);
  level_one(nullptr);
  return 0;
}
