#include "tools/http_client.hpp"

#include <algorithm>
#include <boost/url/parse.hpp>
#include <optional>

#include "net/asio.hpp"

namespace nines::tools {

using namespace net;

http_result http_call(const std::string& host, unsigned short port, const std::string& method,
                      const std::string& target, const std::string& body,
                      const std::map<std::string, std::string>& headers,
                      std::chrono::milliseconds timeout) {
  http_result r;
  asio::io_context ctx;
  beast::tcp_stream stream(ctx);
  stream.expires_after(timeout);
  error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) {
    r.error = "not an IP address: " + host;
    return r;
  }
  stream.socket().connect(tcp::endpoint(address, port), ec);
  if (ec) {
    r.error = "connect: " + ec.message();
    return r;
  }
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, host);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
  }
  for (const auto& [k, v] : headers) {
    req.set(k, v);
  }
  req.body() = body;
  req.prepare_payload();
  // A server may answer (413) and stop reading before the body is sent: read the answer anyway.
  http::write(stream, req, ec);
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> holder;
  do {
    holder.emplace();
    holder->body_limit(boost::none);
    holder->skip(method == "HEAD");  // an answer to HEAD has no body, whatever its fields say
    http::read(stream, buffer, *holder, ec);
  } while (!ec && holder->get().result_int() / 100 == 1);  // skip 100 Continue
  auto& parser = *holder;
  if (!parser.is_header_done()) {
    r.error = "no answer: " + ec.message();
    return r;
  }
  r.status = parser.get().result_int();
  for (const auto& h : parser.get()) {
    std::string name(h.name_string());
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    r.headers[name] = std::string(h.value());
  }
  r.body = parser.get().body();
  r.complete = !ec && parser.is_done();
  if (ec) {
    r.error = ec.message();
  }
  return r;
}

http_result http_call_url(const std::string& base_url, const std::string& method,
                          const std::string& path, const std::string& body) {
  auto url = boost::urls::parse_absolute_uri(base_url);
  if (!url || url->scheme() != "http" || !url->has_port()) {
    http_result r;
    r.error = "the URL must be http://host:port, got " + base_url;
    return r;
  }
  std::string prefix(url->encoded_path());
  while (!prefix.empty() && prefix.back() == '/') {
    prefix.pop_back();
  }
  return http_call(std::string(url->host_address()), url->port_number(), method, prefix + path,
                   body);
}

}  // namespace nines::tools
