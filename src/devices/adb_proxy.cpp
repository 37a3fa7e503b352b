#include "devices/adb_proxy.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>

#include "core/devices/repeatable_command.hpp"
#include "devices/sync_relay.hpp"
#include "net/spawn.hpp"

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

// adb's refusal of a command whose confirmation never came: its transport went away while the
// server waited for the phone's OKAY to the command's OPEN (the keeper dropped a stale transport,
// say). The phone may or may not have got it.
bool refusal_says_unconfirmed(std::string_view message) {
  return message == "closed";
}

std::string fail_of(std::string_view message) {
  return "FAIL" + fmt::format("{:04x}", message.size()) + std::string(message);
}

std::string framed(std::string_view service) {
  return fmt::format("{:04x}", service.size()) + std::string(service);
}

// A request that switches the connection to one phone's transport: the agent's next request (the
// command) goes to that phone.
bool switches_transport(std::string_view service) {
  return service.starts_with("host:transport:") || service.starts_with("host:tport:");
}

// One request: 4 hex digits and the service, before `deadline`. Empty when it is not the host
// protocol, or the peer left.
net::awaitable<std::string> read_request(tcp::socket& s, steady::time_point deadline) {
  net::deadline reading(s);
  reading.arm(deadline);
  char head[4];
  auto [hec, hn] = co_await asio::async_read(s, asio::buffer(head), net::use_nothrow);
  const auto length = hec ? std::nullopt : core::parse_adb_length(std::string_view(head, 4));
  std::string service;
  if (length && *length > 0) {
    service.resize(*length);
    auto [sec, sn] = co_await asio::async_read(s, asio::buffer(service), net::use_nothrow);
    if (sec) {
      service.clear();
    }
  }
  co_return service;
}

// One request to the adb server, framed, within 2 s (adb reads its requests at once).
net::awaitable<error_code> write_request(tcp::socket& upstream, std::string_view service) {
  const std::string request = framed(service);
  net::deadline writing(upstream);
  writing.arm(steady::now() + milliseconds(2000));
  auto [ec, n] = co_await asio::async_write(upstream, asio::buffer(request), net::use_nothrow);
  co_return ec;
}

// adb's answer to one request: OKAY, or FAIL and its message (at most 4,096 bytes of it kept), or
// nothing readable before `deadline`.
struct adb_answer {
  enum { okay, fail, broken } kind = broken;
  std::string message;
};

net::awaitable<adb_answer> read_answer(tcp::socket& s, steady::time_point deadline) {
  net::deadline reading(s);
  reading.arm(deadline);
  adb_answer a;
  char status[4];
  auto [ec, n] = co_await asio::async_read(s, asio::buffer(status), net::use_nothrow);
  if (ec) {
    co_return a;
  }
  const auto st = core::parse_adb_status(std::string_view(status, 4));
  if (st == core::adb_status::okay) {
    a.kind = adb_answer::okay;
    co_return a;
  }
  if (st != core::adb_status::fail) {
    co_return a;
  }
  char len[4];
  auto [lec, ln] = co_await asio::async_read(s, asio::buffer(len), net::use_nothrow);
  const auto size = lec ? std::nullopt : core::parse_adb_length(std::string_view(len, 4));
  if (!size) {
    co_return a;
  }
  std::string message(*size, '\0');  // at most 0xffff: four hex digits
  auto [mec, mn] = co_await asio::async_read(s, asio::buffer(message), net::use_nothrow);
  if (mec) {
    co_return a;
  }
  message.resize(std::min<std::size_t>(message.size(), 4096));
  a.kind = adb_answer::fail;
  a.message = std::move(message);
  co_return a;
}

// The agent closed its connection while its command was held (it gave up: the command must not
// run later for nobody). A peek that does not wait: 0 bytes is the end of the stream.
bool agent_left(tcp::socket& client) {
  char byte = 0;
  const auto n = ::recv(client.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

// The pause between tries while adb refuses a phone that is away: 50 ms, doubling up to 1 s.
struct backoff {
  milliseconds pause{50};
  net::awaitable<void> wait() {
    co_await net::sleep_for(pause);
    pause = std::min(pause * 2, milliseconds(1000));
  }
};

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
  net::spawn(io_.get_executor(), accept_loop(), "the ADB proxy's listener");
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
    tcp::socket socket(io_);
    auto [ec] = co_await acceptor_.async_accept(socket, net::use_nothrow);
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
    net::spawn(io_.get_executor(), serve(std::move(socket)), "an ADB proxy session");
  }
}

// A session's sockets, known to stop() while it runs.
struct adb_proxy::session {
  adb_proxy& proxy;
  tcp::socket client;
  tcp::socket upstream;
  session(adb_proxy& p, tcp::socket c) : proxy(p), client(std::move(c)), upstream(p.io_) {
    ++proxy.open_;
    proxy.live_.push_back(&client);
    proxy.live_.push_back(&upstream);
  }
  ~session() {
    error_code ignored;
    client.close(ignored);
    upstream.close(ignored);
    std::erase(proxy.live_, &client);
    std::erase(proxy.live_, &upstream);
    --proxy.open_;
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;
};

net::awaitable<void> adb_proxy::serve(tcp::socket client_socket) {
  session s(*this, std::move(client_socket));
  auto& counts = keeper_.proxy_counts();
  error_code ec;
  s.client.set_option(tcp::no_delay(true), ec);
  // The agent's first request, within request_timeout.
  const std::string first =
      co_await read_request(s.client, steady::now() + settings_.request_timeout);
  if (first.empty() || stopping_) {
    co_return;  // not the host protocol, or gone: nothing to forward
  }
  const auto serial = serial_of_request(first);
  const bool switches = switches_transport(first);
  const bool tport = first.starts_with("host:tport:");
  const auto hold_until = steady::now() + settings_.hold;
  bool held = false;
  bool told_client = false;  // the first request's OKAY (and transport id) went to the agent
  std::string command;       // the agent's second request, once read (after a transport switch)
  std::string failure;       // adb's refusal, when it is what the agent gets
  bool forwarded = false;
  backoff pause;  // between tries while adb refuses a phone that is away
  auto note_held = [&] {
    if (!held) {
      held = true;
      ++counts.held;
    }
  };
  for (;;) {
    if (serial && keeper_.expected_back(*serial)) {
      note_held();
      co_await wait_while_away(*serial, hold_until, s.client);
    }
    if (stopping_) {
      co_return;
    }
    if (held && agent_left(s.client)) {
      ++counts.held_abandoned;
      co_return;  // nobody waits for it any more: not sent
    }
    std::string why;
    tcp::socket fresh =
        co_await connect_to_server(upstream_, steady::now() + milliseconds(2000), why);
    s.upstream = std::move(fresh);
    if (stopping_) {
      co_return;
    }
    if (!s.upstream.is_open()) {
      ++counts.upstream_failures;
      failure = "nines adb proxy: " + why;
      break;
    }
    const auto wec = co_await write_request(s.upstream, first);
    if (wec) {
      ++counts.upstream_failures;
      failure = "nines adb proxy: the adb server: " + wec.message();
      break;
    }
    if (!serial) {
      forwarded = true;  // not a phone's request: nothing to wait for
      break;
    }
    // A phone's request: adb answers it at once. A refusal while the phone is away, inside the
    // hold, is waited out and tried again.
    const auto answer = co_await read_answer(s.upstream, steady::now() + milliseconds(5000));
    std::string transport_id;  // host:tport's 8 bytes after OKAY
    if (answer.kind == adb_answer::okay && tport) {
      transport_id.resize(8);
      net::deadline reading(s.upstream);
      reading.arm(steady::now() + milliseconds(5000));
      auto [iec, in] =
          co_await asio::async_read(s.upstream, asio::buffer(transport_id), net::use_nothrow);
      if (iec) {
        transport_id.clear();
      }
    }
    if (stopping_) {
      co_return;
    }
    if (answer.kind == adb_answer::broken ||
        (tport && answer.kind == adb_answer::okay && transport_id.empty())) {
      ++counts.upstream_failures;
      failure = "nines adb proxy: the adb server did not answer";
      break;
    }
    const bool inside_hold = keeper_.follows(*serial) && steady::now() < hold_until;
    if (answer.kind == adb_answer::fail && refusal_says_away(answer.message) && inside_hold) {
      s.upstream.close(ec);
      note_held();
      co_await pause.wait();  // adb's list catches up; the keeper with it
      continue;
    }
    if (answer.kind == adb_answer::fail) {
      failure = answer.message;  // adb's own answer, passed on as it is
      break;
    }
    if (!told_client) {
      const std::string okay = "OKAY" + transport_id;
      auto [cec, cn] = co_await asio::async_write(s.client, asio::buffer(okay), net::use_nothrow);
      if (cec) {
        co_return;
      }
      told_client = true;
    }
    if (!switches) {
      forwarded = true;  // host-serial:S:request: its answer follows, spliced
      break;
    }
    // After a transport switch, the command: adb confirms it once the phone confirmed its OPEN.
    // "closed" instead means the phone's confirmation never came (its transport went away first):
    // inside the hold, for a phone the keeper is bringing back, a repeatable command is sent again
    // once the phone is back.
    if (command.empty()) {
      command = co_await read_request(s.client, steady::now() + settings_.request_timeout);
      if (command.empty() || stopping_) {
        co_return;  // the agent left, or sent something that is not a request
      }
    }
    // A command that must not run twice (a tap) is sent only to a phone that answered just now:
    // once sent, an outcome adb cannot confirm is the agent's to judge, never sent again; so the
    // silent link is found before the command goes, and the command is held, not lost.
    const bool repeatable = core::repeatable_command(command);
    if (!repeatable) {
      std::string checked = *serial;  // named: GCC 12 and temporaries in co_await
      const auto check = co_await probe_device(upstream_, std::move(checked), settings_.preflight);
      if (stopping_) {
        co_return;
      }
      if (check.outcome != core::probe_outcome::ok) {
        ++counts.preflight_missed;
        if (agent_left(s.client)) {
          ++counts.held_abandoned;
          co_return;  // nobody waits for it any more: not sent
        }
        if (keeper_.follows(*serial) && steady::now() < hold_until) {
          s.upstream.close(ec);
          note_held();
          co_await pause.wait();
          continue;
        }
        failure = "nines adb proxy: the phone did not answer a check before the command (" +
                  check.detail + "); the command was not sent";
        break;
      }
    }
    const auto command_ec = co_await write_request(s.upstream, command);
    if (command_ec) {
      ++counts.upstream_failures;
      failure = "nines adb proxy: the adb server: " + command_ec.message();
      break;
    }
    const auto confirmed =
        co_await read_answer(s.upstream, steady::now() + settings_.confirm_timeout);
    if (stopping_) {
      co_return;
    }
    if (confirmed.kind == adb_answer::okay) {
      const std::string okay = "OKAY";
      auto [cec, cn] = co_await asio::async_write(s.client, asio::buffer(okay), net::use_nothrow);
      forwarded = !cec;
      break;
    }
    if (confirmed.kind == adb_answer::broken) {
      ++counts.upstream_failures;
      failure = "nines adb proxy: the command was not confirmed";
      break;
    }
    // "closed" does not say the phone never got the command (core/devices/repeatable_command.hpp):
    // only a command that is the same done twice goes again; for any other, adb's answer goes
    // back to the agent, which knows best whether to try again.
    const bool unconfirmed = refusal_says_unconfirmed(confirmed.message);
    if (unconfirmed && !repeatable) {
      ++counts.unconfirmed_passed;
    }
    const bool retry = (unconfirmed && repeatable) || refusal_says_away(confirmed.message);
    if (retry && keeper_.follows(*serial) && steady::now() < hold_until) {
      s.upstream.close(ec);
      note_held();
      ++counts.replayed;
      co_await pause.wait();
      continue;
    }
    failure = confirmed.message;
    break;
  }
  if (held) {
    if (forwarded && failure.empty()) {
      ++counts.held_served;
    } else {
      ++counts.held_expired;
    }
  }
  if (!forwarded) {
    const auto said = fail_of(failure);
    co_await asio::async_write(s.client, asio::buffer(said), net::use_nothrow);
    co_return;
  }
  if (switches && command == "sync:") {
    // A pull goes on across a break of its stream (sync_relay.hpp).
    const std::string phone = *serial;
    reopen_sync again = [this, &s, phone] { return reopen_phone_sync(s, phone); };  // named: GCC 12
    co_await relay_sync(s.client, s.upstream, std::move(again), counts, settings_.confirm_timeout);
    co_return;
  }
  co_await splice(s.client, s.upstream);
}

net::awaitable<void> adb_proxy::wait_while_away(const std::string& serial, steady::time_point until,
                                                tcp::socket& client) {
  while (keeper_.expected_back(serial) && steady::now() < until && !stopping_ &&
         !agent_left(client)) {
    co_await net::sleep_for(milliseconds(20));
  }
}

// The phone's sync service again, on a new connection to the adb server, once the keeper has the
// phone back: within `hold` from the break, while the agent waits. adb's refusals that say the
// phone is not back yet (away, unconfirmed, no answer in time) are waited out; any other ends it.
net::awaitable<reopen_result> adb_proxy::reopen_phone_sync(session& s, std::string serial) {
  auto& counts = keeper_.proxy_counts();
  const auto hold_until = steady::now() + settings_.hold;
  backoff pause;
  error_code ec;
  const std::array<std::string, 2> services{"host:transport:" + serial, "sync:"};
  while (!stopping_ && steady::now() < hold_until && keeper_.follows(serial)) {
    co_await wait_while_away(serial, hold_until, s.client);
    if (agent_left(s.client)) {
      co_return reopen_result::agent_left;
    }
    if (stopping_ || steady::now() >= hold_until) {
      break;
    }
    s.upstream.close(ec);
    std::string why;
    tcp::socket fresh =
        co_await connect_to_server(upstream_, steady::now() + milliseconds(2000), why);
    s.upstream = std::move(fresh);
    if (stopping_) {
      break;
    }
    if (!s.upstream.is_open()) {
      ++counts.upstream_failures;
      co_await pause.wait();
      continue;
    }
    bool open = true;
    bool final_refusal = false;
    for (const auto& service : services) {
      const auto wec = co_await write_request(s.upstream, service);
      if (wec) {
        open = false;
        break;
      }
      const auto answer_by = std::min(hold_until, steady::now() + settings_.confirm_timeout);
      const auto answer = co_await read_answer(s.upstream, answer_by);
      if (answer.kind != adb_answer::okay) {
        open = false;
        final_refusal = answer.kind == adb_answer::fail && !refusal_says_away(answer.message) &&
                        !refusal_says_unconfirmed(answer.message);
        break;
      }
    }
    if (open && !stopping_) {
      co_return reopen_result::open;
    }
    if (final_refusal || stopping_) {
      break;  // adb refuses the phone for another reason: the agent hears it as a failed pull
    }
    co_await pause.wait();
  }
  s.upstream.close(ec);
  co_return agent_left(s.client) ? reopen_result::agent_left : reopen_result::gave_up;
}

}  // namespace nines::devices
