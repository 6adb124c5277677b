#pragma once
// Shared by the libFuzzer targets of this folder. Each target is one file, NAME_fuzz.cpp, that
// defines LLVMFuzzerTestOneInput and names its seed corpus on a line of its own:
//   // seeds: tests/fixtures/proc/net config/mcbacklogd.example.yaml
// (files, or folders whose files are all seeds, relative to the source root). CMake builds every
// such file and registers it with ctest; tests/fuzz/run_fuzzer runs it.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace mcb::fuzz {

inline std::string_view text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A property that must hold for every input: its failure is a finding, like a crash.
inline void require(bool holds, const char* what) {
  if (holds) return;
  std::fprintf(stderr, "property failed: %s\n", what);
  std::abort();
}

}  // namespace mcb::fuzz
