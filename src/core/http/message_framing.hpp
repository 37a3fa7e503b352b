#pragma once
// Where a message body ends (RFC 9112 §6.3), decided strictly for both directions, and the other
// head checks that decide whether an exchange may go on: Host, Connection, Upgrade, Expect.
//
// A request is refused (400, and the connection closed, since its framing is in doubt) for any
// Transfer-Encoding other than exactly `chunked`, a Transfer-Encoding in HTTP/1.0, both
// Transfer-Encoding and Content-Length, a Content-Length that is not one plain number, a missing or
// repeated Host in HTTP/1.1, an Upgrade, an Expect other than 100-continue (417). A response from
// an upstream is refused (the attempt fails, the connection is closed) for the same framing
// faults; its body is none for 1xx, 204, 304 and answers to HEAD, whatever it declares.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/http/message_head.hpp"

namespace nines::core {

enum class body_framing : std::uint8_t {
  none,         // no body
  length,       // Content-Length bytes
  chunked,      // chunked transfer coding
  until_close,  // a response read to the end of the connection (never reusable)
};

// Why a request is refused: the status, a stable code for the JSON error, and a sentence.
struct request_refusal {
  unsigned status = 400;
  std::string_view code;
  std::string message;
};

struct request_framing {
  body_framing body = body_framing::none;
  std::uint64_t length = 0;     // for body_framing::length
  bool keep_alive = true;       // the client allows another request on this connection
  bool expect_continue = false;  // answer 100 Continue before reading the body
};

// Checks a request head and decides its framing; a refusal when it cannot be served as sent.
// Content-Length above `max_body_bytes` is a 413.
std::optional<request_refusal> read_request_framing(const request_head& head,
                                                    std::uint64_t max_body_bytes,
                                                    request_framing& out);

struct response_framing {
  body_framing body = body_framing::none;
  std::uint64_t length = 0;
  bool keep_alive = true;  // the upstream allows reuse (still subject to reading it exactly)
  bool interim = false;    // 1xx other than 101: a final response follows
};

// Decides an upstream response's framing. `to_head`: the request was HEAD. Returns what is wrong
// ("" when nothing is): the attempt then fails and the connection is closed.
std::string read_response_framing(const response_head& head, bool to_head,
                                  response_framing& out);

// Calls f(token) for each element of a comma-separated list (RFC 9110 §5.6.1), elements trimmed of
// white space, empty elements skipped. Returns false when f does.
template <class F>
bool for_each_list_element(std::string_view list, F&& f) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
      item.remove_prefix(1);
    }
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
      item.remove_suffix(1);
    }
    if (!item.empty() && !f(item)) {
      return false;
    }
  }
  return true;
}

// True when `list` (a comma-separated header value) has `token`, case-insensitively.
bool list_has_token(std::string_view list, std::string_view token);

// Headers that belong to one hop (RFC 9110 §7.6.1, and the older names still seen): never
// forwarded, in either direction. Fields named by a message's Connection header are hop-by-hop too
// (see `connection_options`).
bool is_hop_by_hop_name(std::string_view name);

// The field names a message's Connection header fields list (views into the fields: as many as
// the head holds, which its own bound limits; a request with more than 32 is refused earlier).
class connection_options {
 public:
  void add(std::string_view connection_value);
  bool lists(std::string_view field_name) const;

 private:
  std::vector<std::string_view> names_;
};

}  // namespace nines::core
