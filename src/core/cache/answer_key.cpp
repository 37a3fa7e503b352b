#include "core/cache/answer_key.hpp"

#include <algorithm>
#include <cstring>

#include "core/codec/sha256_stream.hpp"

namespace nines::core {
namespace {

// Each part with its length first: no two different sets of parts hash the same bytes.
void add(sha256_stream& s, std::string_view part) {
  unsigned char length[8];
  auto n = static_cast<std::uint64_t>(part.size());
  for (auto& b : length) {
    b = static_cast<unsigned char>(n & 0xff);
    n >>= 8;
  }
  s.update(std::string_view(reinterpret_cast<const char*>(length), sizeof length));
  s.update(part);
}

}  // namespace

answer_request answer_request::of(const answer_request_view& v) {
  return {std::string(v.method), std::string(v.target), std::string(v.identity),
          std::string(v.headers), std::string(v.body)};
}

std::size_t answer_request::size() const {
  return method.size() + target.size() + identity.size() + headers.size() + body.size();
}

std::uint64_t answer_lookup_key(const answer_request_view& request, std::uint64_t body_length) {
  sha256_stream s;
  add(s, "nines answer key 2");
  add(s, request.method);
  add(s, request.target);
  add(s, request.identity);
  add(s, request.headers);
  unsigned char body[8];
  for (auto& b : body) {
    b = static_cast<unsigned char>(body_length & 0xff);
    body_length >>= 8;
  }
  add(s, std::string_view(reinterpret_cast<const char*>(body), sizeof body));
  const auto digest = s.current();
  std::uint64_t key = 0;
  for (int i = 0; i < 8; ++i) {
    key = key << 8 | digest[static_cast<std::size_t>(i)];
  }
  return key;
}

bool same_request_but_body(const answer_request_view& a, const answer_request_view& b) {
  return a.body.size() == b.body.size() && a.method == b.method && a.target == b.target &&
         a.identity == b.identity && a.headers == b.headers;
}

bool same_request(const answer_request_view& a, const answer_request_view& b) {
  return same_request_but_body(a, b) && a.body == b.body;
}

void body_candidates::take(std::string_view piece) {
  const auto at = received_;
  received_ += piece.size();
  std::erase_if(kept_, [&](const std::shared_ptr<const answer_request>& c) {
    const auto& body = c->body;
    return received_ > body.size() ||
           (!piece.empty() && std::memcmp(body.data() + at, piece.data(), piece.size()) != 0);
  });
}

const answer_request* body_candidates::match() const {
  for (const auto& c : kept_) {
    if (c->body.size() == received_) {
      return c.get();
    }
  }
  return nullptr;
}

}  // namespace nines::core
