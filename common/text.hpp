#pragma once
// Text helpers shared by every folder: how bytes that came from outside are written into JSON
// and logs. Pure functions; thread-safe.

#include <string>
#include <string_view>

namespace mcb {

// Escapes a string for inclusion in a JSON string literal. Pure.
std::string json_escape(std::string_view text);

// Escapes a string for HTML text and attribute values (& < > " '). Pure.
std::string html_escape(std::string_view text);

}  // namespace mcb
