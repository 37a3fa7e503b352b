// libFuzzer target: message framing (core/http) must never crash, never read outside its input,
// give the same verdict however the bytes are split, and keep its bounds: a head is found within
// its limit or refused, a chunked body's data is a view into the input, and decoding the same
// body in one piece or in two gives the same bytes and the same verdict.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/http/api_routes.hpp"
#include "core/http/chunked_decoder.hpp"
#include "core/http/message_framing.hpp"
#include "core/http/message_head.hpp"
#include "core/http/request_target.hpp"

namespace {

using namespace nines::core;

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

// Decodes `body` as chunked, fed in two pieces split at `cut`.
struct decoded {
  std::string data;
  bool done = false;
  chunked_problem problem = chunked_problem::none;
};

decoded decode(std::string_view body, std::size_t cut) {
  chunked_decoder d(256, 1 << 16);
  decoded out;
  std::string pending;
  for (const auto piece : {body.substr(0, cut), body.substr(cut)}) {
    pending.append(piece);
    std::string_view in = pending;
    while (!in.empty() && !d.done() && !d.failed()) {
      const auto step = d.next(in);
      if (!inside(step.data, in) || step.consumed > in.size()) {
        __builtin_trap();
      }
      out.data.append(step.data);
      in.remove_prefix(step.consumed);
      if (step.consumed == 0) {
        break;
      }
    }
    pending = std::string(in);
  }
  out.done = d.done();
  out.problem = d.problem();
  if (out.data.size() > (1 << 16)) {
    __builtin_trap();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);

  // The head's end, found in one scan and in two: the same answer.
  head_scanner whole(1024);
  head_problem p1 = head_problem::none;
  const auto n1 = whole.scan(text, p1);
  head_scanner split(1024);
  head_problem p2 = head_problem::none;
  auto n2 = split.scan(text.substr(0, cut), p2);
  if (n2 == 0 && p2 == head_problem::none) {
    n2 = split.scan(text, p2);
  }
  if (n1 > 1024 || n1 > size || n2 != n1 || p2 != p1) {
    __builtin_trap();
  }
  if (n1 > 0) {
    const std::string_view head = text.substr(0, n1);
    request_head req;
    if (parse_request_head(head, 16, req) == head_problem::none) {
      if (!inside(req.method, head) || !inside(req.target, head) || req.fields.size() > 16) {
        __builtin_trap();
      }
      for (const auto& f : req.fields) {
        if (!inside(f.name, head) || !inside(f.value, head) || f.name.empty()) {
          __builtin_trap();
        }
      }
      request_framing framing;
      const auto refusal = read_request_framing(req, 1 << 16, framing);
      if (!refusal && framing.body == body_framing::length && framing.length > (1 << 16)) {
        __builtin_trap();
      }
      canonical_target target;
      if (!check_request_target(req.target, target)) {
        // What was accepted is canonical: checking it again changes nothing.
        canonical_target again;
        if (check_request_target(target.text(), again) || again.text() != target.text()) {
          __builtin_trap();
        }
        if (target.path.find("/../") != std::string::npos || target.path.ends_with("/..")) {
          __builtin_trap();
        }
        route_table().match(req.method, target.path);
      }
    }
    response_head res;
    if (parse_response_head(head, 16, res) == head_problem::none) {
      response_framing framing;
      read_response_framing(res, data[0] & 1, framing);
      if (res.status < 100 || res.status > 599) {
        __builtin_trap();
      }
    }
  }

  // Whatever follows the head (or the whole input) as a chunked body: split-invariant.
  const std::string_view body = text.substr(n1);
  const auto a = decode(body, 0);
  const auto b = decode(body, cut > n1 ? cut - n1 : 0);
  if (a.data != b.data || a.done != b.done || a.problem != b.problem) {
    __builtin_trap();
  }
  return 0;
}
