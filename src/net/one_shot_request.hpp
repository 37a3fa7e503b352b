#pragma once
// One request to a URL on a fresh connection, its whole answer read (bounded), the connection
// closed: what the control thread sends to webhooks and token endpoints. http:// or https://
// (the chain and host name verified, against `ca_file` too when set). Never throws.

#include <chrono>
#include <string>

#include "net/asio.hpp"
#include "net/upstream_response.hpp"

namespace nines::net {

struct one_shot_answer {
  bool sent = false;    // a connection was made and the request written
  unsigned status = 0;  // 0: no answer (see why)
  std::string body;
  std::string why;      // what went wrong, in words, when there is no answer
};

// Sends `req` (method, headers and body set; target and Host are taken from `url`) and reads the
// answer within `timeout`, at most `max_body` bytes of body.
awaitable<one_shot_answer> send_one_shot(std::string url, http::request<http::string_body> req,
                                         std::chrono::milliseconds timeout, std::size_t max_body,
                                         std::string ca_file = {});

}  // namespace nines::net
