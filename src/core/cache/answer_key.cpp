#include "core/cache/answer_key.hpp"

#include "core/codec/fingerprint.hpp"

namespace nines::core {
namespace {

// Each part with its length first: no two different sets of parts hash the same bytes.
void add(fingerprint_stream& s, std::string_view part) {
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

std::uint64_t answer_lookup_key(const answer_request_view& request, std::uint64_t body_fingerprint,
                                std::uint64_t seed) {
  fingerprint_stream s(seed);
  add(s, "nines answer key 1");
  add(s, request.method);
  add(s, request.target);
  add(s, request.identity);
  add(s, request.headers);
  unsigned char body[8];
  for (auto& b : body) {
    b = static_cast<unsigned char>(body_fingerprint & 0xff);
    body_fingerprint >>= 8;
  }
  add(s, std::string_view(reinterpret_cast<const char*>(body), sizeof body));
  return s.value();
}

bool same_request(const answer_request_view& a, const answer_request_view& b) {
  return a.body.size() == b.body.size() && a.method == b.method && a.target == b.target &&
         a.identity == b.identity && a.headers == b.headers && a.body == b.body;
}

}  // namespace nines::core
