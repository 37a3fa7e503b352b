#pragma once
// The header values of tus 1.0 (https://tus.io/protocols/resumable-upload), read strictly: one
// value, one meaning, anything else refused (the endpoint answers 400 and names the header).
//
//   Upload-Length, Upload-Offset   decimal digits only (no sign, no space), at most 2^63 - 1
//   Upload-Metadata                "key value,key value,key": keys of visible ASCII without ','
//                                  (unique, at most 64 bytes), values canonical base64
//   Upload-Checksum                "<algorithm> <base64 digest>"; sha256 is the one nines takes
//
// Also the upload's names: an id is 32 lower-case hex digits, its URL "/v1/uploads/<id>", and a
// request that carries a finished upload as its body says so with "Nines-Upload: <that URL>".

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nines::core {

inline constexpr std::string_view tus_version = "1.0.0";
inline constexpr std::string_view tus_extensions =
    "creation,creation-with-upload,expiration,termination,checksum";
inline constexpr std::string_view uploads_path = "/v1/uploads";
inline constexpr std::size_t max_metadata_entries = 32;

std::optional<std::uint64_t> parse_upload_number(std::string_view text);

struct upload_metadata_entry {
  std::string key;
  std::string value;  // decoded
};
// Returns what is wrong, empty when `text` is a valid Upload-Metadata value.
std::string parse_upload_metadata(std::string_view text, std::vector<upload_metadata_entry>& out);

struct upload_checksum {
  std::string algorithm;  // lower-case as sent ("sha256")
  std::string digest;     // decoded bytes
};
std::optional<upload_checksum> parse_upload_checksum(std::string_view text);

bool is_upload_id(std::string_view text);
// The id in "/v1/uploads/<id>", or in an absolute http(s) URL with exactly that path (no query,
// no fragment); nullopt for anything else.
std::optional<std::string_view> upload_id_of(std::string_view reference);

// IMF-fixdate (RFC 9110 §5.6.7), for Upload-Expires: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(std::int64_t unix_seconds);

}  // namespace nines::core
