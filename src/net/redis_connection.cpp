#include "net/redis_connection.hpp"

#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>

#include "net/endpoints_of.hpp"

namespace nines::net {

using core::redis_reply;

redis_connection::redis_connection(tcp::socket socket, core::redis_reader_limits limits)
    : socket_(std::move(socket)), reading_(socket_), writing_(socket_), reader_(limits) {}

redis_connection::~redis_connection() {
  close();
}

void redis_connection::close() {
  error_code ignored;
  socket_.close(ignored);
}

void redis_connection::fail(std::string why) {
  if (problem_.empty()) {
    problem_ = std::move(why);
  }
  close();
}

awaitable<std::unique_ptr<redis_connection>> redis_connection::open(
    redis_endpoint to, time_point deadline, std::string& why, core::redis_reader_limits limits) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  error_code ec;
  const std::string where = to.host + ":" + std::to_string(to.port);
  std::vector<tcp::endpoint> endpoints = co_await endpoints_of(to.host, to.port, ec);
  if (ec) {
    why = "Redis at " + where + ": the name does not resolve (" + ec.message() + ")";
    co_return nullptr;
  }
  for (const auto& endpoint : endpoints) {
    error_code ignored;
    socket.close(ignored);
    net::deadline connecting(socket);
    connecting.arm(deadline);
    std::tie(ec) = co_await socket.async_connect(endpoint, use_nothrow);
    if (connecting.disarm()) {
      why = "Redis at " + where + ": no answer to the connect in time";
      co_return nullptr;
    }
    if (!ec) {
      break;
    }
  }
  if (ec) {
    why = "Redis at " + where + ": " + ec.message();
    co_return nullptr;
  }
  socket.set_option(tcp::no_delay(true), ec);
  std::unique_ptr<redis_connection> c(new redis_connection(std::move(socket), limits));
  std::string wire;
  std::size_t count = 0;
  if (!to.password.empty()) {
    core::append_redis_command(wire, {"AUTH", to.password});
    ++count;
  }
  const std::string db = std::to_string(to.db);
  if (to.db != 0) {
    core::append_redis_command(wire, {"SELECT", db});
    ++count;
  }
  if (count == 0) {
    co_return c;
  }
  auto replies = co_await c->exec(std::move(wire), count, deadline);
  if (!replies) {
    why = "Redis at " + where + ": " + c->problem();
    co_return nullptr;
  }
  for (std::size_t i = 0; i < replies->size(); ++i) {
    const auto& r = (*replies)[i];
    if (!r.is_status("OK")) {
      // The reply to AUTH says only "WRONGPASS ..." or "ERR ...": no secret in it.
      const bool auth = !to.password.empty() && i == 0;
      why = "Redis at " + where + ": " + (auth ? "AUTH" : "SELECT " + db) +
            " refused: " + core::describe_redis_reply(r);
      co_return nullptr;
    }
  }
  co_return c;
}

awaitable<std::optional<std::vector<redis_reply>>> redis_connection::exec(std::string wire,
                                                                          std::size_t count,
                                                                          time_point deadline) {
  if (busy_) {
    // Two calls at once would interleave their bytes and take each other's replies.
    co_return std::nullopt;
  }
  if (!usable()) {
    if (problem_.empty()) {
      problem_ = "the connection is closed";
    }
    co_return std::nullopt;
  }
  busy_ = true;
  writing_.arm(deadline);
  auto [wec, written] =
      writing_.finish(co_await asio::async_write(socket_, asio::buffer(wire), use_nothrow));
  if (wec) {
    timed_out_ = wec == beast::error::timeout;
    fail(timed_out_ ? "no room to send the commands in time" : "sending: " + wec.message());
    busy_ = false;
    co_return std::nullopt;
  }
  std::vector<redis_reply> replies;
  replies.reserve(count);
  char buffer[16384];
  while (replies.size() < count) {
    if (auto r = reader_.next()) {
      replies.push_back(std::move(*r));
      continue;
    }
    if (reader_.broken()) {
      fail(reader_.problem());
      break;
    }
    reading_.arm(deadline);
    auto [rec, n] = reading_.finish(
        co_await socket_.async_read_some(asio::buffer(buffer, sizeof buffer), use_nothrow));
    if (rec) {
      timed_out_ = rec == beast::error::timeout;
      fail(timed_out_                ? "no reply in time"
           : rec == asio::error::eof ? "the server closed the connection"
                                     : "reading: " + rec.message());
      break;
    }
    if (!reader_.feed(std::string_view(buffer, n))) {
      fail(reader_.problem());
      break;
    }
  }
  busy_ = false;
  if (replies.size() < count) {
    co_return std::nullopt;
  }
  co_return replies;
}

awaitable<std::optional<redis_reply>> redis_connection::call(std::vector<std::string> words,
                                                             time_point deadline) {
  std::vector<std::string_view> views(words.begin(), words.end());
  std::string wire;
  if (!core::append_redis_command(wire, views)) {
    fail("a command that cannot be framed");
    co_return std::nullopt;
  }
  auto replies = co_await exec(std::move(wire), 1, deadline);
  if (!replies) {
    co_return std::nullopt;
  }
  co_return std::move(replies->front());
}

}  // namespace nines::net
