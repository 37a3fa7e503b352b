#include "core/upload/tus_headers.hpp"

#include <fmt/format.h>

#include <ctime>

#include "core/codec/base64.hpp"
#include "core/http/ascii.hpp"

namespace nines::core {

std::optional<std::uint64_t> parse_upload_number(std::string_view text) {
  if (text.empty() || text.size() > 19 || (text.size() > 1 && text[0] == '0')) {
    return std::nullopt;  // "007" is refused: one number, one spelling
  }
  std::uint64_t n = 0;
  for (const char c : text) {
    if (!is_digit(c)) {
      return std::nullopt;
    }
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  if (n > static_cast<std::uint64_t>(INT64_MAX)) {
    return std::nullopt;
  }
  return n;
}

std::string parse_upload_metadata(std::string_view text, std::vector<upload_metadata_entry>& out) {
  out.clear();
  if (text.empty()) {
    return "Upload-Metadata is empty";
  }
  for (std::size_t start = 0;;) {
    const auto comma = text.find(',', start);
    const auto item =
        text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    const auto space = item.find(' ');
    const auto key = item.substr(0, space);
    if (key.empty() || key.size() > 64) {
      return "Upload-Metadata has a key that is empty or longer than 64 bytes";
    }
    for (const char c : key) {
      if (c <= ' ' || c > '~') {
        return "Upload-Metadata keys are visible ASCII";
      }
    }
    std::string value;
    if (space != std::string_view::npos) {
      auto decoded = base64_decode(item.substr(space + 1));
      if (!decoded) {
        return fmt::format("Upload-Metadata's value of \"{}\" is not base64", key);
      }
      value = std::move(*decoded);
    }
    for (const auto& e : out) {
      if (e.key == key) {
        return fmt::format("Upload-Metadata names \"{}\" twice", key);
      }
    }
    if (out.size() == max_metadata_entries) {
      return fmt::format("Upload-Metadata has more than {} entries", max_metadata_entries);
    }
    out.push_back({std::string(key), std::move(value)});
    if (comma == std::string_view::npos) {
      return {};
    }
    start = comma + 1;
  }
}

std::optional<upload_checksum> parse_upload_checksum(std::string_view text) {
  const auto space = text.find(' ');
  if (space == 0 || space == std::string_view::npos) {
    return std::nullopt;
  }
  const auto algorithm = text.substr(0, space);
  if (!is_token(algorithm)) {
    return std::nullopt;
  }
  auto digest = base64_decode(text.substr(space + 1));
  if (!digest || digest->empty()) {
    return std::nullopt;
  }
  upload_checksum out;
  out.algorithm.reserve(algorithm.size());
  for (const char c : algorithm) {
    out.algorithm.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
  }
  out.digest = std::move(*digest);
  return out;
}

bool is_upload_id(std::string_view text) {
  if (text.size() != 32) {
    return false;
  }
  for (const char c : text) {
    if (!is_digit(c) && !(c >= 'a' && c <= 'f')) {
      return false;
    }
  }
  return true;
}

std::optional<std::string_view> upload_id_of(std::string_view reference) {
  for (const std::string_view scheme : {"http://", "https://"}) {
    if (reference.starts_with(scheme)) {
      const auto slash = reference.find('/', scheme.size());
      if (slash == scheme.size() || slash == std::string_view::npos) {
        return std::nullopt;  // no authority, or no path
      }
      reference.remove_prefix(slash);
      break;
    }
  }
  if (!reference.starts_with(uploads_path) || reference.size() != uploads_path.size() + 33 ||
      reference[uploads_path.size()] != '/') {
    return std::nullopt;
  }
  const auto id = reference.substr(uploads_path.size() + 1);
  if (!is_upload_id(id)) {
    return std::nullopt;
  }
  return id;
}

std::string http_date(std::int64_t unix_seconds) {
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT", days[tm.tm_wday], tm.tm_mday,
                     months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace nines::core
