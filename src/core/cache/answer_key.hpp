#pragma once
// What identifies a request to the answer cache: everything of it that can change its answer. The
// body counts byte for byte, so that no field is ever missed (model, messages, tools,
// response_format, sampling settings, stop, seed, max tokens, and any field a server adds later);
// so do the method, the target, who asks (the client key's id) and the request headers that go
// upstream. Two requests that differ in any of these are different requests; two that differ only
// in JSON spacing or key order are too (a miss, never a wrong hit).
//
// A request is found by its lookup key, a 64-bit hash of its parts in which the body counts by its
// fingerprint (core/codec/fingerprint.hpp: taken as the body arrived); what is found is then
// compared with the request byte for byte (same_request), so that a collision of keys can only
// miss.

#include <cstdint>
#include <string>
#include <string_view>

namespace nines::core {

struct answer_request_view {
  std::string_view method;
  std::string_view target;    // path and query, as received (canonical form)
  std::string_view identity;  // the client key's id; empty without client keys
  std::string_view headers;   // the answer-affecting request headers, "name: value\r\n" each
  std::string_view body;
};

// The same, owned: what a kept answer remembers of its request.
struct answer_request {
  std::string method;
  std::string target;
  std::string identity;
  std::string headers;
  std::string body;

  static answer_request of(const answer_request_view& v);
  answer_request_view view() const { return {method, target, identity, headers, body}; }
  std::size_t size() const;
};

// The lookup key of `request`, whose body's fingerprint (with `seed`) is `body_fingerprint`.
std::uint64_t answer_lookup_key(const answer_request_view& request, std::uint64_t body_fingerprint,
                                std::uint64_t seed);

bool same_request(const answer_request_view& a, const answer_request_view& b);

}  // namespace nines::core
