#pragma once
// Appends a string as a JSON string literal (quotes and escapes), for log lines built by hand;
// and what JSON text built from network input needs checked.

#include <string>
#include <string_view>

namespace nines::core {

void append_json_string(std::string& out, std::string_view text);

// At most `max` bytes of `text`, never ending inside a UTF-8 character (for quoting a peer's
// bytes in a message).
std::string_view utf8_prefix(std::string_view text, std::size_t max);

}  // namespace nines::core

namespace boost::json {
class value;
}

namespace nines::core {

// Whether a parsed document holds a number that is not finite (1e999 parses as infinity, and
// Boost.JSON 1.81 would write it back as "Infinity", which is not JSON).
bool has_non_finite_number(const boost::json::value& v);

}  // namespace nines::core
