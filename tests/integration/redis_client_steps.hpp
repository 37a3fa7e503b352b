#pragma once
// For the tests that drive nines's Redis client (net/redis_connection) directly: each step runs
// on the test's own io_context until it is done.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/redis_connection.hpp"

namespace nines::test {

// A server's address, with db 0 and no password.
inline net::redis_endpoint endpoint(std::string host, std::uint16_t port) {
  net::redis_endpoint e;
  e.host = std::move(host);
  e.port = port;
  return e;
}

template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> work) {
  auto done = boost::asio::co_spawn(io, std::move(work), boost::asio::use_future);
  io.restart();
  io.run();
  return done.get();
}

inline boost::asio::awaitable<std::unique_ptr<net::redis_connection>> open(
    net::redis_endpoint to, std::string* why, core::redis_reader_limits limits = {}) {
  co_return co_await net::redis_connection::open(
      to, std::chrono::steady_clock::now() + std::chrono::milliseconds(5000), *why, limits);
}

inline boost::asio::awaitable<std::optional<core::redis_reply>> call(
    net::redis_connection* c, std::vector<std::string> words,
    std::chrono::milliseconds within = std::chrono::milliseconds(5000)) {
  co_return co_await c->call(std::move(words), std::chrono::steady_clock::now() + within);
}

inline boost::asio::awaitable<std::optional<std::vector<core::redis_reply>>> exec(
    net::redis_connection* c, std::string wire, std::size_t count) {
  co_return co_await c->exec(std::move(wire), count,
                             std::chrono::steady_clock::now() + std::chrono::milliseconds(10000));
}

}  // namespace nines::test
