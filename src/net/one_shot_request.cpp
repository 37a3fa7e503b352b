#include "net/one_shot_request.hpp"

#include <boost/url/parse.hpp>

#include "net/upstream_pool.hpp"

namespace nines::net {

awaitable<one_shot_answer> send_one_shot(std::string url, http::request<http::string_body> req,
                                         std::chrono::milliseconds timeout, std::size_t max_body,
                                         std::string ca_file) {
  one_shot_answer out;
  const auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed || (parsed->scheme() != "http" && parsed->scheme() != "https")) {
    out.why = "not an http:// or https:// URL";
    co_return out;
  }
  upstream_target target;
  target.host = std::string(parsed->host_address());
  target.tls = parsed->scheme() == "https";
  target.port = parsed->has_port() ? parsed->port_number() : (target.tls ? 443 : 80);
  if (target.tls) {
    target.tls_context = make_client_tls_context(true, ca_file);
  }
  pool_settings ps;
  ps.max_idle = 0;
  auto pool = std::make_shared<upstream_pool>(co_await asio::this_coro::executor, target, ps);
  auto outcome = co_await pool->acquire(timeout);
  if (!outcome.connection) {
    out.why = outcome.error.message();
    co_return out;
  }
  auto& conn = *outcome.connection;
  req.target(parsed->encoded_path().empty() ? "/" : std::string(parsed->encoded_target()));
  req.set(http::field::host, std::string(parsed->encoded_host_and_port()));
  req.version(11);
  req.keep_alive(false);
  req.prepare_payload();
  conn.expires_after(timeout);
  auto [wec, wn] = co_await conn.write_message(req);
  (void)wn;
  if (wec) {
    conn.close();
    out.why = wec.message();
    co_return out;
  }
  out.sent = true;
  auto answer = co_await read_whole_response(conn, false, max_body);
  conn.close();
  if (answer.error) {
    out.why = answer.problem.empty() ? answer.error.message() : answer.problem;
    co_return out;
  }
  out.status = answer.status;
  out.body = std::move(answer.body);
  co_return out;
}

}  // namespace nines::net
