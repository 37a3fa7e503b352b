#include "devices/adb_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <charconv>

namespace nines::devices {

using net::error_code;
using net::tcp;
using net::asio::ip::make_address;
namespace asio = net::asio;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

std::optional<adb_server_address> parse_adb_server_socket(std::string_view spec) {
  if (spec.substr(0, 4) != "tcp:") {
    return std::nullopt;
  }
  spec.remove_prefix(4);
  adb_server_address a;
  const auto colon = spec.rfind(':');
  auto port_text = spec;
  if (colon != std::string_view::npos) {
    a.host = std::string(spec.substr(0, colon));
    port_text = spec.substr(colon + 1);
    if (a.host.empty()) {
      return std::nullopt;
    }
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return std::nullopt;
  }
  a.port = static_cast<std::uint16_t>(port);
  return a;
}

std::string printable_words(std::string_view words) {
  std::string out(words.substr(0, 512));
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
      c = '?';
    }
  }
  return out;
}

adb_connection::adb_connection(tcp::socket socket) : socket_(std::move(socket)) {}

adb_connection::~adb_connection() {
  close();
}

void adb_connection::close() {
  error_code ignored;
  socket_.close(ignored);
}

awaitable<tcp::socket> connect_to_server(const adb_server_address& server, time_point deadline,
                                         std::string& why) {
  tcp::socket socket(co_await asio::this_coro::executor);
  error_code ec;
  const auto address = make_address(server.host, ec);
  if (ec) {
    why = "the adb server's address is not an IP address: " + server.host;
    co_return socket;
  }
  net::deadline connecting(socket);
  connecting.arm(deadline);
  std::tie(ec) =
      co_await socket.async_connect(tcp::endpoint(address, server.port), net::use_nothrow);
  if (connecting.disarm()) {
    why = "no answer from the adb server in time";
  } else if (ec) {
    why = "the adb server: " + ec.message();
  }
  if (!why.empty()) {
    socket.close(ec);
    co_return socket;
  }
  socket.set_option(tcp::no_delay(true), ec);
  co_return socket;
}

awaitable<std::unique_ptr<adb_connection>> adb_connection::open(const adb_server_address& server,
                                                                time_point deadline,
                                                                std::string& why) {
  auto socket = co_await connect_to_server(server, deadline, why);
  if (!socket.is_open()) {
    co_return nullptr;
  }
  co_return std::unique_ptr<adb_connection>(new adb_connection(std::move(socket)));
}

awaitable<bool> adb_connection::fill(std::size_t want, time_point deadline) {
  while (buffer_.size() < want && !ended_) {
    auto space = buffer_.space(std::max<std::size_t>(4096, want - buffer_.size()));
    if (space.size() == 0) {
      co_return false;  // more than the buffer may hold
    }
    reading_.arm(deadline);
    auto [ec, n] = reading_.finish(co_await socket_.async_read_some(space, net::use_nothrow));
    buffer_.commit(n);
    if (ec == net::beast::error::timeout) {
      timed_out_ = true;
    }
    if (ec) {
      ended_ = true;
    }
  }
  co_return buffer_.size() >= want;
}

awaitable<adb_reply> adb_connection::request(std::string_view service, time_point deadline) {
  adb_reply reply;
  const auto wire = core::adb_request(service);
  if (!wire) {
    reply.failure = "a service nines will not send";
    co_return reply;
  }
  writing_.arm(deadline);
  auto [ec, n] =
      writing_.finish(co_await asio::async_write(socket_, asio::buffer(*wire), net::use_nothrow));
  if (ec) {
    reply.timed_out = ec == net::beast::error::timeout;
    timed_out_ = timed_out_ || reply.timed_out;
    reply.failure = reply.timed_out ? "no room to send in time" : "sending: " + ec.message();
    co_return reply;
  }
  if (!co_await fill(4, deadline)) {
    reply.timed_out = timed_out_;
    reply.failure = timed_out_ ? "no answer in time" : "the adb server closed the connection";
    co_return reply;
  }
  const auto status = core::parse_adb_status(buffer_.data().substr(0, 4));
  buffer_.consume(4);
  if (status == core::adb_status::okay) {
    reply.okay = true;
    co_return reply;
  }
  if (status == core::adb_status::bad) {
    reply.failure = "not an adb server's answer";
    co_return reply;
  }
  auto message = co_await read_block(deadline, 4096);
  reply.timed_out = timed_out_;
  reply.refused = message.has_value();
  reply.failure = message ? printable_words(*message) : "FAIL without its message";
  co_return reply;
}

awaitable<std::optional<std::string>> adb_connection::read_block(time_point deadline,
                                                                 std::size_t max_bytes,
                                                                 milliseconds rest) {
  if (!co_await fill(4, deadline)) {
    co_return std::nullopt;
  }
  const auto length = core::parse_adb_length(buffer_.data().substr(0, 4));
  if (!length || *length > max_bytes) {
    ended_ = true;
    close();  // a stream that cannot be followed any more
    co_return std::nullopt;
  }
  buffer_.consume(4);
  if (!co_await fill(*length, std::min(deadline, steady::now() + rest))) {
    co_return std::nullopt;
  }
  std::string out(buffer_.data().substr(0, *length));
  buffer_.consume(*length);
  co_return out;
}

awaitable<std::optional<std::string>> adb_connection::read_to_end(time_point deadline,
                                                                  std::size_t max_bytes) {
  co_await fill(max_bytes + 1, deadline);
  if (timed_out_ || buffer_.size() > max_bytes) {
    co_return std::nullopt;
  }
  std::string out(buffer_.data());
  buffer_.consume(out.size());
  co_return out;
}

namespace {

core::probe_outcome refusal_outcome(std::string_view failure) {
  if (failure.find("unauthorized") != std::string_view::npos) {
    return core::probe_outcome::unauthorized;
  }
  if (failure.find("offline") != std::string_view::npos ||
      failure.find("not found") != std::string_view::npos) {
    return core::probe_outcome::gone;
  }
  return core::probe_outcome::failed;
}

}  // namespace

awaitable<probe_report> probe_device(const adb_server_address& server, std::string serial,
                                     milliseconds timeout) {
  probe_report report;
  const auto deadline = steady::now() + timeout;
  auto conn = co_await adb_connection::open(server, deadline, report.detail);
  if (!conn) {
    co_return report;  // failed: the adb server itself did not answer
  }
  const std::string transport = "host:transport:" + serial;
  auto reply = co_await conn->request(transport, deadline);
  if (!reply.okay) {
    report.outcome = reply.timed_out ? core::probe_outcome::silent : refusal_outcome(reply.failure);
    report.detail = "transport: " + printable_words(reply.failure);
    co_return report;
  }
  reply = co_await conn->request("shell:echo nines", deadline);
  if (!reply.okay) {
    // Before its OKAY the command was not confirmed by the phone: a silent link.
    report.outcome = reply.timed_out ? core::probe_outcome::silent : refusal_outcome(reply.failure);
    report.detail = "shell: " + printable_words(reply.failure);
    co_return report;
  }
  auto output = co_await conn->read_to_end(deadline, 256);
  if (!output) {
    report.outcome = conn->timed_out() ? core::probe_outcome::hang : core::probe_outcome::failed;
    report.detail = conn->timed_out() ? "the command was accepted and did not finish in time"
                                      : "the command's output was too long";
    co_return report;
  }
  auto text = std::string_view(*output);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  if (text != "nines") {
    report.outcome = core::probe_outcome::failed;
    report.detail = "unexpected output from echo";
    co_return report;
  }
  report.outcome = core::probe_outcome::ok;
  co_return report;
}

namespace {

awaitable<bool> host_service(const adb_server_address& server, std::string service,
                             milliseconds timeout, std::string& said, std::string_view success,
                             std::string_view also_success) {
  const auto deadline = steady::now() + timeout;
  auto conn = co_await adb_connection::open(server, deadline, said);
  if (!conn) {
    co_return false;
  }
  const auto reply = co_await conn->request(service, deadline);
  if (!reply.okay) {
    said = printable_words(reply.failure);
    co_return false;
  }
  const auto words = co_await conn->read_block(deadline, 4096);
  if (!words) {
    said = conn->timed_out() ? "no answer in time" : "no answer";
    co_return false;
  }
  said = printable_words(*words);
  co_return words->rfind(success, 0) == 0 || words->rfind(also_success, 0) == 0;
}

}  // namespace

awaitable<bool> connect_device(const adb_server_address& server, std::string address,
                               milliseconds timeout, std::string& said) {
  const std::string service = "host:connect:" + address;
  co_return co_await host_service(server, service, timeout, said, "connected to",
                                  "already connected to");
}

awaitable<bool> disconnect_device(const adb_server_address& server, std::string address,
                                  milliseconds timeout, std::string& said) {
  const std::string service = "host:disconnect:" + address;
  co_return co_await host_service(server, service, timeout, said, "disconnected", "no such device");
}

awaitable<bool> knock(std::string host, unsigned port, milliseconds timeout) {
  error_code ec;
  const auto address = make_address(host, ec);
  if (ec) {
    co_return false;  // names are resolved by adb itself; the knock only tests IP addresses
  }
  tcp::socket socket(co_await asio::this_coro::executor);
  net::deadline connecting(socket);
  connecting.arm(steady::now() + timeout);
  std::tie(ec) = co_await socket.async_connect(
      tcp::endpoint(address, static_cast<std::uint16_t>(port)), net::use_nothrow);
  const bool late = connecting.disarm();
  error_code ignored;
  socket.close(ignored);
  co_return !late && !ec;
}

}  // namespace nines::devices
