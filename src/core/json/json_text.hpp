#pragma once
// Appends a string as a JSON string literal (quotes and escapes), for log lines built by hand.

#include <string>
#include <string_view>

namespace nines::core {

void append_json_string(std::string& out, std::string_view text);

}  // namespace nines::core
