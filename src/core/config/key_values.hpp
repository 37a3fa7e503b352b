#pragma once
// "key=value,key=value": the small list syntax of the command line and of the x-mock-fault
// header (mock-llm faults, chaos proxies and toxics), and the numbers in it. One reader for all.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nines::core {

struct key_value {
  std::string_view key;
  std::string_view value;
};

// Splits `text` at commas; items lose leading spaces, empty items are skipped. Returns what is
// wrong (an item without '='), empty when fine. The views point into `text`.
std::string split_key_values(std::string_view text, std::vector<key_value>& out);

// Whole-string numbers: nullopt when anything is left over or the value does not fit.
std::optional<double> parse_double(std::string_view text);
std::optional<std::int64_t> parse_int(std::string_view text);
std::optional<std::size_t> parse_count(std::string_view text);

}  // namespace nines::core
