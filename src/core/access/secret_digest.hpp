#pragma once
// Secrets are never kept, only their SHA-256 digests ("sha256:<64 hex digits>" in files people
// write), and digests are compared in constant time (OpenSSL's CRYPTO_memcmp), so that neither a
// leaked file nor the time a refusal takes tells anything about a secret.

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace nines::core {

using secret_digest = std::array<unsigned char, 32>;

secret_digest sha256_of(std::string_view data);

// "sha256:<64 hex digits>" (either case); nullopt otherwise.
std::optional<secret_digest> parse_secret_digest(std::string_view text);
std::string format_secret_digest(const secret_digest& d);

// Constant time in the digest bytes.
bool same_digest(const secret_digest& a, const secret_digest& b);

// A fresh secret for a client key: "nk-" and 43 characters of base64url (32 random bytes from
// OpenSSL's generator).
std::string new_client_secret();

// True when `secret` may be sent as "Authorization: Bearer <secret>": 1 to 8192 bytes of visible
// ASCII (no space, no control byte: a key or token from a file, a config or a token endpoint
// must not be able to end the header and start another).
bool sendable_secret(std::string_view secret);

// The secret of an "Authorization: Bearer <secret>" value; nullopt when it is not one.
std::optional<std::string_view> bearer_secret(std::string_view authorization);

}  // namespace nines::core
