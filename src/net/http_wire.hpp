#pragma once
// Writes HTTP/1.1 message headers into a flat string, so that a header and its body leave in one
// gather write. Beast's serializer is general (any body, any buffer sequence) and shows up in
// profiles of small proxied requests; the gateway's messages are always a header plus one
// contiguous body, which needs none of that generality.

#include <string>

#include "net/asio.hpp"

namespace nines::net {

// "HTTP/1.1 200 OK\r\n" + fields + "\r\n". Framing fields (Content-Length, Transfer-Encoding,
// Connection) must already be set on the header.
void append_response_header(std::string& out, const http::response_header<>& header);

// A decimal number.
void append_decimal(std::string& out, std::uint64_t value);

// The framing of one chunk of a chunked body: "<hex size>\r\n".
void append_chunk_size(std::string& out, std::size_t size);

}  // namespace nines::net
