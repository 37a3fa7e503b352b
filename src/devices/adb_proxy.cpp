#include "devices/adb_proxy.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>

namespace nines::devices {

namespace asio = net::asio;
using net::error_code;
using net::tcp;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

std::optional<std::string> serial_of_request(std::string_view s) {
  auto rest_of = [&](std::string_view prefix) -> std::optional<std::string_view> {
    if (s.substr(0, prefix.size()) == prefix) {
      return s.substr(prefix.size());
    }
    return std::nullopt;
  };
  std::optional<std::string_view> serial;
  if (auto r = rest_of("host:transport:")) {
    serial = r;
  } else if (auto r = rest_of("host:tport:serial:")) {
    serial = r;
  } else if (auto r = rest_of("host-serial:")) {
    // The serial ends at the first ':' unless a port follows it ("1.2.3.4:5555:get-state"), as
    // adb's own parser reads it.
    const auto colon = r->find(':');
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    auto end = colon;
    const auto next = r->find(':', colon + 1);
    const auto port = r->substr(colon + 1, next == std::string_view::npos ? 0 : next - colon - 1);
    if (next != std::string_view::npos && !port.empty() && port.size() <= 5 &&
        port.find_first_not_of("0123456789") == std::string_view::npos) {
      end = next;
    }
    serial = r->substr(0, end);
  }
  if (!serial || !core::valid_adb_serial(*serial)) {
    return std::nullopt;
  }
  return std::string(*serial);
}

namespace {

bool refusal_says_away(std::string_view message) {
  return message.find("offline") != std::string_view::npos ||
         message.find("not found") != std::string_view::npos ||
         message.find("no devices") != std::string_view::npos;
}

std::string fail_of(std::string_view message) {
  return "FAIL" + fmt::format("{:04x}", message.size()) + std::string(message);
}

// Copies `from` to `to` until `from` ends; then the end goes on to `to`.
net::awaitable<void> pump(tcp::socket& from, tcp::socket& to) {
  char buf[16384];
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), net::use_nothrow);
    if (n > 0) {
      auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf, n), net::use_nothrow);
      if (wec) {
        error_code ignored;
        from.close(ignored);
        co_return;
      }
    }
    if (ec) {
      error_code ignored;
      if (ec == asio::error::eof) {
        to.shutdown(tcp::socket::shutdown_send, ignored);
      } else {
        to.close(ignored);
      }
      co_return;
    }
  }
}

}  // namespace

adb_proxy::adb_proxy(asio::io_context& io, device_keeper& keeper, adb_server_address upstream,
                     proxy_settings settings)
    : io_(io),
      keeper_(keeper),
      upstream_(std::move(upstream)),
      settings_(std::move(settings)),
      acceptor_(io) {}

adb_proxy::~adb_proxy() = default;

std::uint16_t adb_proxy::bind() {
  const tcp::endpoint at(asio::ip::make_address(settings_.host), settings_.port);
  acceptor_.open(at.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(at);
  acceptor_.listen();
  return acceptor_.local_endpoint().port();
}

void adb_proxy::start() {
  keeper_.proxy_counts().running = true;
  asio::co_spawn(io_, accept_loop(), asio::detached);
}

void adb_proxy::stop() {
  asio::post(io_, [this] {
    stopping_ = true;
    error_code ignored;
    acceptor_.close(ignored);
    for (auto* s : live_) {
      s->close(ignored);
    }
  });
}

net::awaitable<void> adb_proxy::accept_loop() {
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(net::use_nothrow);
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted) {
        break;
      }
      co_await net::sleep_for(milliseconds(50));  // EMFILE and the like: breathe, go on
      continue;
    }
    if (open_ >= settings_.max_connections) {
      ++keeper_.proxy_counts().refused;
      error_code ignored;
      socket.close(ignored);
      continue;
    }
    ++keeper_.proxy_counts().connections;
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

net::awaitable<void> adb_proxy::serve(tcp::socket client) {
  ++open_;
  live_.push_back(&client);
  tcp::socket upstream(io_);
  live_.push_back(&upstream);
  auto& counts = keeper_.proxy_counts();
  error_code ec;
  client.set_option(tcp::no_delay(true), ec);
  std::string request;
  std::string service;
  {
    // The agent's first request: 4 hex digits and the service, within request_timeout.
    net::deadline reading(client);
    reading.arm(steady::now() + settings_.request_timeout);
    char head[4];
    auto [hec, hn] = co_await asio::async_read(client, asio::buffer(head), net::use_nothrow);
    const auto length = hec ? std::nullopt : core::parse_adb_length(std::string_view(head, 4));
    if (length && *length > 0) {
      service.resize(*length);
      auto [sec, sn] = co_await asio::async_read(client, asio::buffer(service), net::use_nothrow);
      if (sec) {
        service.clear();
      }
    }
    reading.disarm();
    if (service.empty()) {
      std::erase(live_, &client);
      std::erase(live_, &upstream);
      --open_;
      co_return;  // not the host protocol, or gone: nothing to forward
    }
    request = std::string(head, 4) + service;
  }
  const auto serial = serial_of_request(service);
  const auto hold_until = steady::now() + settings_.hold;
  bool held = false;
  std::string failure;  // adb's refusal, when it is what the agent gets
  bool forwarded = false;
  for (;;) {
    if (serial && keeper_.expected_back(*serial)) {
      if (!held) {
        held = true;
        ++counts.held;
      }
      while (keeper_.expected_back(*serial) && steady::now() < hold_until && !stopping_) {
        co_await net::sleep_for(milliseconds(20));
      }
    }
    if (stopping_) {
      break;
    }
    std::string why;
    upstream = co_await connect_to_server(upstream_, steady::now() + milliseconds(2000), why);
    if (!upstream.is_open()) {
      ++counts.upstream_failures;
      failure = "nines adb proxy: " + why;
      break;
    }
    {
      net::deadline writing(upstream);
      writing.arm(steady::now() + milliseconds(2000));
      auto [wec, wn] =
          co_await asio::async_write(upstream, asio::buffer(request), net::use_nothrow);
      writing.disarm();
      if (wec) {
        ++counts.upstream_failures;
        failure = "nines adb proxy: the adb server: " + wec.message();
        break;
      }
    }
    if (!serial) {
      forwarded = true;  // not a phone's request: nothing to wait for
      break;
    }
    // A phone's request: adb answers it at once. A refusal while the phone is away, inside the
    // hold, is waited out and tried again.
    char status[4];
    net::deadline reading(upstream);
    reading.arm(steady::now() + milliseconds(5000));
    auto [rec, rn] = co_await asio::async_read(upstream, asio::buffer(status), net::use_nothrow);
    std::string message;
    const bool fail = !rec && std::string_view(status, 4) == "FAIL";
    if (fail) {
      char len[4];
      auto [lec, ln] = co_await asio::async_read(upstream, asio::buffer(len), net::use_nothrow);
      const auto n = lec ? std::nullopt : core::parse_adb_length(std::string_view(len, 4));
      if (n && *n <= 4096) {
        message.resize(*n);
        auto [mec, mn] =
            co_await asio::async_read(upstream, asio::buffer(message), net::use_nothrow);
        if (mec) {
          message.clear();
        }
      }
    }
    reading.disarm();
    if (rec) {
      ++counts.upstream_failures;
      failure = "nines adb proxy: the adb server closed the connection";
      break;
    }
    if (fail && refusal_says_away(message) && keeper_.follows(*serial) &&
        steady::now() < hold_until) {
      error_code ignored;
      upstream.close(ignored);
      if (!held) {
        held = true;
        ++counts.held;
      }
      co_await net::sleep_for(milliseconds(50));  // adb's list catches up; the keeper with it
      continue;
    }
    if (fail) {
      failure = message;  // adb's own answer, passed on as it is
      break;
    }
    const std::string okay(status, 4);
    auto [cec, cn] = co_await asio::async_write(client, asio::buffer(okay), net::use_nothrow);
    forwarded = !cec;
    break;
  }
  if (held) {
    if (forwarded && failure.empty()) {
      ++counts.held_served;
    } else {
      ++counts.held_expired;
    }
  }
  if (!forwarded && !stopping_) {
    const auto said = fail_of(failure.substr(0, 4096));
    co_await asio::async_write(client, asio::buffer(said), net::use_nothrow);
  } else if (forwarded) {
    using namespace asio::experimental::awaitable_operators;
    co_await (pump(client, upstream) && pump(upstream, client));
  }
  error_code ignored;
  client.close(ignored);
  upstream.close(ignored);
  std::erase(live_, &client);
  std::erase(live_, &upstream);
  --open_;
}

}  // namespace nines::devices
