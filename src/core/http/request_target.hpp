#pragma once
// The request target, checked and made canonical before anything routes on it (RFC 9112 §3.2,
// RFC 3986 §3.3). Only the origin form (`/path?query`) is accepted: no absolute URL, no authority
// form, no `*`, no fragment. The path is percent-decoded for checking, and refused when a segment
// is `.` or `..` (raw or encoded: `%2e%2e`, or with path parameters: `..;x`), when it encodes a `/` or `\` (`%2f`, `%5c`) or a
// control byte, when it has an empty segment (`//`) or a byte outside the path grammar, or when a
// percent sign is not followed by two hex digits. What routes and what goes upstream is then the
// canonical form: every segment decoded and encoded again the one same way, so that no hop after
// this one can read the path differently from how it was checked.

#include <optional>
#include <string>
#include <string_view>

namespace nines::core {

struct canonical_target {
  std::string path;        // "/v1/models/Qwen%20x", canonical
  std::string_view query;  // as sent, validated, without its '?' (empty when none)
  bool has_query = false;

  // path, and "?" + query when there is one: what an upstream is sent.
  std::string text() const;
};

// A refusal says what is wrong, for a 400.
std::optional<std::string> check_request_target(std::string_view target, canonical_target& out);

}  // namespace nines::core
