#include "net/http_wire.hpp"

#include <charconv>

namespace nines::net {
namespace {

void append_fields(std::string& out, const http::fields& fields) {
  for (const auto& f : fields) {
    const auto name = f.name_string();
    const auto value = f.value();
    out.append(name.data(), name.size()).append(": ").append(value.data(), value.size());
    out.append("\r\n");
  }
  out.append("\r\n");
}

void append_version(std::string& out, unsigned version) {
  out.append(version == 10 ? "HTTP/1.0" : "HTTP/1.1");
}

}  // namespace

void append_response_header(std::string& out, const http::response_header<>& header) {
  append_version(out, header.version());
  char code[8];
  auto [end, ec] = std::to_chars(code, code + sizeof code, header.result_int());
  out.push_back(' ');
  out.append(code, end);
  out.push_back(' ');
  const auto reason = header.reason();
  out.append(reason.data(), reason.size());
  out.append("\r\n");
  append_fields(out, header);
}

void append_decimal(std::string& out, std::uint64_t value) {
  char digits[20];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, end);
}

void append_chunk_size(std::string& out, std::size_t size) {
  char hex[20];
  auto [end, ec] = std::to_chars(hex, hex + sizeof hex, size, 16);
  out.append(hex, end).append("\r\n");
}

}  // namespace nines::net
