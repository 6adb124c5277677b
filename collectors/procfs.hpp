#pragma once
// Reading files under /proc and /sys, and splitting their text. Separate from parsing: a reader
// returns the bytes, a pure parser turns them into a struct. Thread-safe.

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace mcb {

// Reads a whole file. A missing file is `std::nullopt` (some kernels lack some files, and that
// is not an error); any other failure is an error naming the path.
Result<std::optional<std::string>> read_optional_file(const std::string& path);

// The same, where the errno values in `absent` (from opening or reading) also mean "no value":
// sysfs attributes that a driver cannot report fail with EINVAL on read.
Result<std::optional<std::string>> read_optional_file(const std::string& path,
                                                      std::initializer_list<int> absent);

// Reads a whole file; a missing file is an error too.
Result<std::string> read_file(const std::string& path);

// Pure: the words of a line of a /proc table, separated by runs of spaces or tabs. The views
// point into `line`.
std::vector<std::string_view> split_words(std::string_view line);

}  // namespace mcb
