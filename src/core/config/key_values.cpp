#include "core/config/key_values.hpp"

#include <charconv>
#include <fmt/format.h>

namespace nines::core {
namespace {

template <class T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::string split_key_values(std::string_view text, std::vector<key_value>& out) {
  while (!text.empty()) {
    const auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') {
      item.remove_prefix(1);
    }
    if (item.empty()) {
      continue;
    }
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      return fmt::format("'{}' needs a value (key=value)", item);
    }
    out.push_back({item.substr(0, eq), item.substr(eq + 1)});
  }
  return {};
}

std::optional<double> parse_double(std::string_view text) { return parse_number<double>(text); }
std::optional<std::int64_t> parse_int(std::string_view text) {
  return parse_number<std::int64_t>(text);
}
std::optional<std::size_t> parse_count(std::string_view text) {
  return parse_number<std::size_t>(text);
}

}  // namespace nines::core
