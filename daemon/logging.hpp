#pragma once
// Logging to stderr through spdlog, for journald or a terminal. Two formats: "text" (one line:
// time, level, message) and "json" (one object per line: ts, level, msg). Call from the loop
// thread (or before it runs); the logger itself is thread-safe.

#include <string>
#include <string_view>

namespace mcb {

// `level`: debug, info, warn or error. `format`: text or json. Unknown values were refused by
// the config loader; here they fall back to info / text.
void setup_logging(std::string_view level, std::string_view format);

}  // namespace mcb
