#pragma once
// The key of a cached answer: a SHA-256 over everything of a request that can change its answer.
// The body counts byte for byte (its digest, taken while it arrived: net::downstream::body_digest),
// so that no field is ever missed (model, messages, tools, response_format, sampling settings,
// stop, seed, max tokens, and any field a server adds later); so do the method, the target, who
// asks (the client key's id) and the request headers that go upstream. Two requests that differ
// in any of these have different keys; two that differ only in JSON spacing or key order do too
// (a miss, never a wrong hit).

#include <array>
#include <string>
#include <string_view>

namespace nines::core {

using answer_key = std::array<unsigned char, 32>;

struct answer_key_parts {
  std::string_view method;
  std::string_view target;       // path and query, as received (canonical form)
  std::string_view identity;     // the client key's id; empty without client keys
  std::string_view headers;      // the answer-affecting request headers, "name: value\r\n" each
  const std::array<unsigned char, 32>* body_digest = nullptr;  // SHA-256 of the body
};

answer_key make_answer_key(const answer_key_parts& parts);

// Lowercase hex, for a journal's idempotency key.
std::string answer_key_hex(const answer_key& key);

}  // namespace nines::core
