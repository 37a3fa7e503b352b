#include "core/http/message_framing.hpp"

#include <fmt/format.h>

namespace nines::core {
namespace {

// 1*DIGIT, at most 19 digits (so that it fits in 64 bits).
std::optional<std::uint64_t> read_length(std::string_view v) {
  if (v.empty() || v.size() > 19) {
    return std::nullopt;
  }
  std::uint64_t n = 0;
  for (const char c : v) {
    if (!is_digit(c)) {
      return std::nullopt;
    }
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

bool is_reg_name_byte(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) {
    return true;
  }
  switch (c) {
    case '-': case '.': case '_': case '~': case '!': case '$': case '&': case '\'': case '(':
    case ')': case '*': case '+': case ',': case ';': case '=': case '%':
      return true;
    default:
      return false;
  }
}

// uri-host [ ":" port ] (RFC 9110 §7.2): a reg-name or IPv4 address, or an IP literal in brackets.
bool valid_host(std::string_view v) {
  std::size_t i = 0;
  if (!v.empty() && v.front() == '[') {
    const auto close = v.find(']');
    if (close == std::string_view::npos || close < 2) {
      return false;
    }
    for (std::size_t k = 1; k < close; ++k) {
      const char c = v[k];
      if (!(is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
            c == '.')) {
        return false;
      }
    }
    i = close + 1;
  } else {
    while (i < v.size() && is_reg_name_byte(v[i])) {
      ++i;
    }
  }
  if (i == v.size()) {
    return true;
  }
  if (v[i] != ':' || v.size() - i - 1 > 5) {
    return false;
  }
  for (++i; i < v.size(); ++i) {
    if (!is_digit(v[i])) {
      return false;
    }
  }
  return true;
}

// Transfer-Encoding values of one message, taken together as one list.
struct coding_list {
  std::size_t fields = 0;
  std::size_t elements = 0;
  bool only_chunked = true;  // every element is "chunked"
  std::string text;          // for messages: what was sent (bounded)

  void add(std::string_view value) {
    ++fields;
    if (text.size() < 200) {
      text.append(text.empty() ? "" : ", ").append(value.substr(0, 200));
    }
    for_each_list_element(value, [&](std::string_view coding) {
      ++elements;
      only_chunked = only_chunked && iequals(coding, "chunked");
      return true;
    });
  }
  bool exactly_chunked() const { return elements == 1 && only_chunked; }
};

request_refusal refuse(unsigned status, std::string_view code, std::string message) {
  return request_refusal{status, code, std::move(message)};
}

}  // namespace

bool list_has_token(std::string_view list, std::string_view token) {
  bool found = false;
  for_each_list_element(list, [&](std::string_view item) {
    found = iequals(item, token);
    return !found;
  });
  return found;
}

bool is_hop_by_hop_name(std::string_view n) {
  return iequals(n, "connection") || iequals(n, "keep-alive") || iequals(n, "proxy-connection") ||
         iequals(n, "proxy-authenticate") || iequals(n, "proxy-authorization") ||
         iequals(n, "te") || iequals(n, "trailer") || iequals(n, "transfer-encoding") ||
         iequals(n, "upgrade");
}

void connection_options::add(std::string_view value) {
  for_each_list_element(value, [&](std::string_view name) {
    names_.push_back(name);
    return true;
  });
}

bool connection_options::lists(std::string_view field_name) const {
  for (const auto name : names_) {
    if (iequals(name, field_name)) {
      return true;
    }
  }
  return false;
}

std::optional<request_refusal> read_request_framing(const request_head& head,
                                                    std::uint64_t max_body_bytes,
                                                    request_framing& out) {
  out = request_framing{};
  coding_list codings;
  std::size_t hosts = 0;
  std::size_t lengths = 0;
  std::size_t expects = 0;
  std::string_view host;
  std::string_view length;
  std::string_view expect;
  bool close = false;
  bool keep_alive = false;
  bool upgrade = false;
  bool bad_connection = false;
  std::size_t connection_names = 0;
  for (const auto& f : head.fields) {
    if (iequals(f.name, "host")) {
      ++hosts;
      host = f.value;
    } else if (iequals(f.name, "content-length")) {
      ++lengths;
      length = f.value;
    } else if (iequals(f.name, "transfer-encoding")) {
      codings.add(f.value);
    } else if (iequals(f.name, "connection")) {
      for_each_list_element(f.value, [&](std::string_view option) {
        bad_connection = bad_connection || !is_token(option) || ++connection_names > 32;
        close = close || iequals(option, "close");
        keep_alive = keep_alive || iequals(option, "keep-alive");
        return true;
      });
    } else if (iequals(f.name, "upgrade")) {
      upgrade = true;
    } else if (iequals(f.name, "expect")) {
      ++expects;
      expect = f.value;
    }
  }

  if (codings.fields > 0) {
    if (head.version == 10) {
      return refuse(400, "bad_transfer_encoding",
                    "Transfer-Encoding is not allowed in an HTTP/1.0 request");
    }
    if (!codings.exactly_chunked()) {
      return refuse(400, "bad_transfer_encoding",
                    fmt::format("Transfer-Encoding \"{}\" is not supported: only \"chunked\", "
                                "alone and once, is accepted",
                                codings.text));
    }
    if (lengths > 0) {
      return refuse(400, "bad_content_length",
                    "a request must not have both Transfer-Encoding and Content-Length");
    }
    out.body = body_framing::chunked;
  } else if (lengths > 1) {
    return refuse(400, "bad_content_length", "Content-Length is repeated");
  } else if (lengths == 1) {
    const auto n = read_length(length);
    if (!n) {
      return refuse(400, "bad_content_length",
                    "Content-Length must be one decimal number of at most 19 digits");
    }
    if (*n > max_body_bytes) {
      return refuse(413, "request_too_large",
                    fmt::format("request body exceeds the limit of {} bytes", max_body_bytes));
    }
    out.length = *n;
    out.body = *n > 0 ? body_framing::length : body_framing::none;
  }

  if (head.version == 11 && hosts == 0) {
    return refuse(400, "bad_host", "an HTTP/1.1 request must have a Host header");
  }
  if (hosts > 1) {
    return refuse(400, "bad_host", "Host is repeated");
  }
  if (hosts == 1 && !valid_host(host)) {
    return refuse(400, "bad_host", "Host is not a host name or address with an optional port");
  }
  if (bad_connection) {
    return refuse(400, "bad_connection", "Connection must be a list of at most 32 tokens");
  }
  if (upgrade) {
    return refuse(400, "upgrade_not_supported",
                  "protocol upgrades are not supported; send plain HTTP/1.1 requests");
  }
  if (expects > 0 && head.version == 11) {
    if (expects > 1 || !iequals(expect, "100-continue")) {
      return refuse(417, "expectation_failed", "the only expectation supported is 100-continue");
    }
    out.expect_continue = out.body != body_framing::none;
  }
  out.keep_alive = head.version == 11 ? !close : keep_alive && !close;
  return std::nullopt;
}

std::string read_response_framing(const response_head& head, bool to_head,
                                  response_framing& out) {
  out = response_framing{};
  coding_list codings;
  std::size_t lengths = 0;
  std::string_view length;
  bool close = false;
  bool keep_alive = false;
  for (const auto& f : head.fields) {
    if (iequals(f.name, "content-length")) {
      ++lengths;
      length = f.value;
    } else if (iequals(f.name, "transfer-encoding")) {
      codings.add(f.value);
    } else if (iequals(f.name, "connection")) {
      close = close || list_has_token(f.value, "close");
      keep_alive = keep_alive || list_has_token(f.value, "keep-alive");
    }
  }
  out.keep_alive = head.version == 11 ? !close : keep_alive && !close;

  if (head.status / 100 == 1) {
    if (head.status == 101) {
      return "101 Switching Protocols, but no upgrade was asked for";
    }
    out.interim = true;
    return {};
  }
  if (to_head || head.status == 204 || head.status == 304) {
    // No body, whatever is declared: for HEAD and 304 a length describes the resource. A 204 that
    // declares a body may send it anyway, and a malformed length leaves the framing in doubt:
    // either way, the connection is not reused.
    const auto n = lengths == 1 ? read_length(length) : std::nullopt;
    const bool malformed = lengths > 1 || (lengths == 1 && !n);
    const bool body_in_204 = head.status == 204 && (codings.fields > 0 || (n && *n > 0));
    if (malformed || body_in_204) {
      out.keep_alive = false;
    }
    return {};
  }
  if (codings.fields > 0) {
    if (head.version == 10) {
      return "Transfer-Encoding in an HTTP/1.0 response";
    }
    if (lengths > 0) {
      return "both Transfer-Encoding and Content-Length";
    }
    if (!codings.exactly_chunked()) {
      return fmt::format("Transfer-Encoding \"{}\" is not supported (only \"chunked\")",
                         codings.text);
    }
    out.body = body_framing::chunked;
    return {};
  }
  if (lengths > 1) {
    return "Content-Length is repeated";
  }
  if (lengths == 1) {
    const auto n = read_length(length);
    if (!n) {
      return "malformed Content-Length";
    }
    out.length = *n;
    out.body = *n > 0 ? body_framing::length : body_framing::none;
    return {};
  }
  out.body = body_framing::until_close;
  out.keep_alive = false;
  return {};
}

}  // namespace nines::core
