#pragma once
// What identifies a request to the answer cache: everything of it that can change its answer. The
// body counts byte for byte, so that no field is ever missed (model, messages, tools,
// response_format, sampling settings, stop, seed, max tokens, and any field a server adds later);
// so do the method, the target, who asks (the client key's id) and the request headers that go
// upstream. Two requests that differ in any of these are different requests; two that differ only
// in JSON spacing or key order are too (a miss, never a wrong hit).
//
// A request is found by its lookup key, 64 bits of a SHA-256 of its parts other than the body, and
// of the body's length: everything known from its head (a few hundred bytes to hash). The kept
// requests under that key are compared with it byte for byte (same_request), so that a collision
// of keys can only miss; the body, the long part, is compared while it arrives
// (gateway/answer_cache_relay.hpp), so that nothing of it is left to compare at its last byte.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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

// The lookup key of a request with these parts (`body` is not read) and a body of `body_length`.
std::uint64_t answer_lookup_key(const answer_request_view& request, std::uint64_t body_length);

bool same_request(const answer_request_view& a, const answer_request_view& b);
// The same, but for the bodies: equal in length, and known to be equal in content.
bool same_request_but_body(const answer_request_view& a, const answer_request_view& b);

// The kept requests a body may turn out to be (the same head and length), compared with it piece
// by piece as it arrives: those that differ in a byte drop out at once.
class body_candidates {
 public:
  body_candidates() = default;
  explicit body_candidates(std::vector<std::shared_ptr<const answer_request>> kept)
      : kept_(std::move(kept)) {}
  void take(std::string_view piece);
  // A candidate equal to every byte that arrived, and as long (null: none).
  const answer_request* match() const;

 private:
  std::vector<std::shared_ptr<const answer_request>> kept_;  // those still equal
  std::size_t received_ = 0;
};

}  // namespace nines::core
