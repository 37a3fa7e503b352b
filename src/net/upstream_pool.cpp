#include "net/upstream_pool.hpp"

#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/this_coro.hpp>
#include <cerrno>
#include <ctime>
#include <type_traits>

#include "net/endpoints_of.hpp"
#include "net/spawn.hpp"
#include "net/tls_diagnosis.hpp"

namespace nines::net {

std::string diagnose_handshake_failure(SSL* ssl, const std::string& host, const error_code& ec);

using steady = std::chrono::steady_clock;

void pool_capacity::release() {
  if (open > 0) {
    --open;
  }
  if (!waiting.empty()) {
    waiting.front()->notify();
    waiting.pop_front();
  }
}

upstream_connection::upstream_connection(plain_stream stream, std::shared_ptr<pool_capacity> capacity)
    : stream_(std::move(stream)), capacity_(std::move(capacity)) {
  ++capacity_->open;
}

upstream_connection::upstream_connection(tls_stream stream, std::shared_ptr<pool_capacity> capacity)
    : stream_(std::move(stream)), capacity_(std::move(capacity)) {
  ++capacity_->open;
}

upstream_connection::~upstream_connection() { capacity_->release(); }

void upstream_connection::close() {
  error_code ignored;
  socket().shutdown(tcp::socket::shutdown_both, ignored);
  socket().close(ignored);
}

upstream_pool::upstream_pool(asio::any_io_executor executor, upstream_target target,
                             pool_settings settings)
    : executor_(std::move(executor)), target_(std::move(target)), settings_(settings) {}

upstream_pool::~upstream_pool() {
  for (auto& c : idle_) {
    c->close();
  }
}

bool upstream_connection::acknowledged_within(std::chrono::milliseconds elapsed) {
  const int fd = socket().native_handle();
  int queued = 0;  // bytes sent and not acknowledged, or not sent yet
  if (::ioctl(fd, SIOCOUTQ, &queued) == 0 && queued == 0) {
    return true;
  }
  tcp_info info{};
  socklen_t size = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0) {
    return false;
  }
  return info.tcpi_last_ack_recv < static_cast<std::uint64_t>(elapsed.count());
}

upstream_connection::send_queue upstream_connection::send_state() {
  send_queue q;
  const int fd = socket().native_handle();
  int queued = 0;
  tcp_info info{};
  socklen_t size = sizeof info;
  if (::ioctl(fd, SIOCOUTQ, &queued) != 0 ||
      ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0) {
    return q;
  }
  q.known = true;
  q.established = info.tcpi_state == TCP_ESTABLISHED;
  q.unacknowledged = static_cast<std::size_t>(std::max(queued, 0));
  q.since_last_ack = std::chrono::milliseconds(info.tcpi_last_ack_recv);
  q.rtt = std::chrono::microseconds(info.tcpi_rtt);
  return q;
}

bool upstream_pool::fresh(upstream_connection& c, steady::time_point now) {
  if (now - c.idle_since() >= settings_.idle_timeout || now - c.opened() >= settings_.max_lifetime ||
      !c.socket().is_open()) {
    return false;
  }
  // Nothing may arrive on an idle connection: a close, or bytes sent unasked (a stray or late
  // response), which would otherwise be read as the answer to the next request. Looked at
  // without reading; a TLS connection's decrypted leftovers count too.
  // A TLS 1.3 server sends session tickets after the handshake, which a pre-warmed connection has
  // not read yet: there, only the close is looked for.
  char byte;
  const auto n = ::recv(c.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  bool tls = false;
  const bool tls_pending = c.visit([&tls](auto& s) {
    if constexpr (std::is_same_v<std::decay_t<decltype(s)>, upstream_connection::tls_stream>) {
      tls = true;
      return SSL_pending(s.native_handle()) > 0;
    } else {
      return false;
    }
  });
  if ((n > 0 && (!tls || c.used())) || tls_pending || !c.buffer().empty()) {
    ++idle_closes_.unsolicited_bytes;
    return false;
  }
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    ++idle_closes_.peer_closed;
    return false;
  }
  return true;
}

std::unique_ptr<upstream_connection> upstream_pool::take_idle(steady::time_point now) {
  while (!idle_.empty()) {
    auto connection = std::move(idle_.back());
    idle_.pop_back();
    if (fresh(*connection, now)) {
      return connection;
    }
    connection->close();
  }
  return nullptr;
}

awaitable<connect_outcome> upstream_pool::acquire(std::chrono::milliseconds timeout,
                                                  acquire_cancel* cancel) {
  const auto deadline = steady::now() + timeout;
  bool counted = false;
  for (;;) {
    if (auto c = take_idle(steady::now())) {
      connect_outcome out;
      out.connection = std::move(c);
      co_return out;
    }
    if (!counted) {
      ++misses_;  // this request had to open (or wait for) a connection: pre-warm more
      counted = true;
    }
    if (settings_.max_connections == 0 || capacity_->open < settings_.max_connections) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
      co_return co_await connect(std::max(left, std::chrono::milliseconds(1)), cancel);
    }
    connect_outcome out;
    if (capacity_->waiting.size() >= settings_.max_pending) {
      out.overflow = true;
      out.failure = core::attempt_failure::connect_error;
      co_return out;
    }
    if (cancel != nullptr && cancel->cancelled) {
      out.failure = core::attempt_failure::connect_error;
      co_return out;
    }
    wakeup w(executor_);
    capacity_->waiting.push_back(&w);
    if (cancel != nullptr) {
      cancel->waiting = &w;
    }
    const bool woken = co_await w.wait(deadline);
    std::erase(capacity_->waiting, &w);
    if (cancel != nullptr) {
      cancel->waiting = nullptr;
      if (cancel->cancelled) {
        out.failure = core::attempt_failure::connect_error;
        co_return out;
      }
    }
    if (!woken) {
      out.failure = core::attempt_failure::connect_timeout;
      out.error = beast::error::timeout;
      co_return out;
    }
  }
}

void upstream_pool::give_back(std::unique_ptr<upstream_connection> connection,
                              steady::time_point now) {
  connection->set_idle_since(now);
  if (idle_.size() >= settings_.max_idle || now - connection->opened() >= settings_.max_lifetime) {
    connection->close();
    return;  // its destructor frees its place and wakes a waiter
  }
  connection->mark_reused();
  connection->expires_never();
  idle_.push_back(std::move(connection));
  if (!capacity_->waiting.empty()) {
    capacity_->waiting.front()->notify();
    capacity_->waiting.pop_front();
  }
}

void upstream_pool::maintain(steady::time_point now) {
  std::erase_if(idle_, [&](std::unique_ptr<upstream_connection>& c) {
    if (fresh(*c, now)) {
      return false;
    }
    c->close();
    return true;
  });
  // Pre-warm: the idle floor, plus as many as requests had to open for themselves lately.
  const std::size_t target = std::min(settings_.max_idle, settings_.min_idle + misses_);
  misses_ = 0;
  std::size_t have = idle_.size() + warming_;
  while (have < target && (settings_.max_connections == 0 ||
                           capacity_->open + warming_ < settings_.max_connections)) {
    ++warming_;
    ++have;
    spawn(executor_, prewarm(shared_from_this()), "pool pre-warm");
  }
}

awaitable<void> upstream_pool::prewarm(std::shared_ptr<upstream_pool> self) {
  auto outcome = co_await connect(settings_.connect_timeout);
  --warming_;
  if (outcome.connection) {
    give_back(std::move(outcome.connection), steady::now());
  }
}

namespace {

core::attempt_failure classify_connect_error(const error_code& ec) {
  if (ec == asio::error::connection_refused) {
    return core::attempt_failure::connect_refused;
  }
  if (ec == beast::error::timeout) {
    return core::attempt_failure::connect_timeout;
  }
  if (ec.category() == asio::error::get_ssl_category() ||
      ec.category() == asio::ssl::error::get_stream_category()) {
    return core::attempt_failure::tls_error;
  }
  return core::attempt_failure::connect_error;
}

// Opens `socket` for `to` on the target's path out: bound to its interface (SO_BINDTODEVICE) and
// to its source address. What cannot be done is said in `why`, naming the setting.
error_code open_on_path(tcp::socket& socket, const tcp::endpoint& to, const upstream_target& t,
                        std::string& why) {
  error_code ec;
  socket.open(to.protocol(), ec);
  if (ec) {
    return ec;
  }
  if (!t.bind_interface.empty() &&
      ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_BINDTODEVICE, t.bind_interface.data(),
                   static_cast<socklen_t>(t.bind_interface.size())) != 0) {
    ec = error_code(errno, asio::error::get_system_category());
    why = "bind_interface " + t.bind_interface + ": " + ec.message();
    return ec;
  }
  if (!t.bind_address.empty()) {
    const auto source = asio::ip::make_address(t.bind_address, ec);
    if (!ec) {
      // The port is chosen at connect, per destination: a bound source does not take one of the
      // ephemeral ports for every connection it makes.
      const int on = 1;
      ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
      socket.bind(tcp::endpoint(source, 0), ec);
    }
    if (ec) {
      why = "bind_address " + t.bind_address + ": " + ec.message();
    }
  }
  return ec;
}

}  // namespace

awaitable<connect_outcome> upstream_pool::connect(std::chrono::milliseconds timeout,
                                                  acquire_cancel* cancel) {
  auto executor = co_await asio::this_coro::executor;
  connect_outcome out;
  tcp::socket socket(executor);
  const auto until = steady::now() + timeout;
  error_code ec;
  std::vector<tcp::endpoint> endpoints = co_await endpoints_of(target_.host, target_.port, ec);
  if (cancel != nullptr) {
    cancel->connecting = &socket;
  }
  // A source address takes the addresses of its own family only.
  std::optional<bool> source_v4;
  if (!target_.bind_address.empty()) {
    error_code bad;
    const auto source = asio::ip::make_address(target_.bind_address, bad);
    source_v4 = !bad && source.is_v4();
  }
  bool tried = false;
  // Each address in turn, within the one deadline; a cancel closes the socket under the connect.
  for (const auto& endpoint : endpoints) {
    if (cancel != nullptr && cancel->cancelled) {
      ec = asio::error::operation_aborted;
      break;
    }
    if (source_v4 && *source_v4 != endpoint.address().is_v4()) {
      continue;
    }
    tried = true;
    error_code ignored;
    socket.close(ignored);
    if ((ec = open_on_path(socket, endpoint, target_, out.problem))) {
      break;  // the path out itself is wrong: every address of the family would fail alike
    }
    deadline connecting(socket);
    connecting.arm(until);
    std::tie(ec) = co_await socket.async_connect(endpoint, use_nothrow);
    if (connecting.disarm()) {
      ec = beast::error::timeout;
    }
    if (!ec || ec == beast::error::timeout) {
      break;
    }
  }
  if (!ec && !tried && !endpoints.empty()) {
    ec = asio::error::address_family_not_supported;
    out.problem = "bind_address " + target_.bind_address + ": no address of " + target_.host +
                  " is of its family";
  }
  if (cancel != nullptr) {
    cancel->connecting = nullptr;
    if (cancel->cancelled) {
      ec = asio::error::operation_aborted;  // even a connect done just before: it was given up
    }
  }
  if (ec) {
    out.error = ec;
    out.failure = classify_connect_error(ec);
    co_return out;
  }
  socket.set_option(tcp::no_delay(true), ec);
  if (!target_.tls) {
    out.connection = std::make_unique<upstream_connection>(std::move(socket), capacity_);
    co_return out;
  }
  upstream_connection::tls_stream tls(std::move(socket), *target_.tls_context);
  // SNI, and the certificate must name the host we dialled.
  if (!SSL_set_tlsext_host_name(tls.native_handle(), target_.host.c_str())) {
    out.error = error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
    out.failure = core::attempt_failure::tls_error;
    co_return out;
  }
  tls.set_verify_callback(asio::ssl::host_name_verification(target_.host));
  error_code hec;
  if (cancel != nullptr) {
    cancel->connecting = &tls.next_layer();  // a handshake over a silent path is given up too
  }
  {
    deadline handshaking(tls.next_layer());
    handshaking.arm(until);
    std::tie(hec) = co_await tls.async_handshake(asio::ssl::stream_base::client, use_nothrow);
    if (handshaking.disarm()) {
      hec = beast::error::timeout;
    }
  }
  if (cancel != nullptr) {
    cancel->connecting = nullptr;
    if (cancel->cancelled) {
      out.error = asio::error::operation_aborted;
      out.failure = core::attempt_failure::connect_error;
      co_return out;
    }
  }
  if (hec) {
    out.error = hec;
    out.failure = hec == beast::error::timeout ? core::attempt_failure::connect_timeout
                                               : core::attempt_failure::tls_error;
    if (out.failure == core::attempt_failure::tls_error) {
      out.problem = diagnose_handshake_failure(tls.native_handle(), target_.host, hec);
    }
    co_return out;
  }
  out.connection = std::make_unique<upstream_connection>(std::move(tls), capacity_);
  co_return out;
}

// Why a handshake with an upstream failed, with tls-check's problem codes: the chain the server
// sent, verified again against the context's trust store; or, when it sent none (an alert, a
// protocol or cipher the server would not take), handshake_failed with OpenSSL's reason.
std::string diagnose_handshake_failure(SSL* ssl, const std::string& host, const error_code& ec) {
  STACK_OF(X509)* sent = SSL_get_peer_cert_chain(ssl);
  if (sent == nullptr || sk_X509_num(sent) == 0) {
    return "tls: handshake_failed: " + ec.message();
  }
  X509_STORE* trust = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
  auto d = diagnose_chain(sent, host, trust, static_cast<std::int64_t>(std::time(nullptr)));
  if (d.problems.empty() || d.verified) {
    return "tls: handshake_failed: " + ec.message();
  }
  std::string out = "tls: ";
  for (const auto& p : d.problems) {
    if (!is_warning(p.code)) {
      out += (out.size() > 5 ? "; " : "") + p.code + ": " + p.detail;
    }
  }
  return out.size() > 1024 ? out.substr(0, 1021) + "..." : out;
}

std::shared_ptr<asio::ssl::context> make_client_tls_context(bool verify,
                                                            const std::string& ca_file) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1);
  if (!verify) {
    context->set_verify_mode(asio::ssl::verify_none);
    return context;
  }
  context->set_verify_mode(asio::ssl::verify_peer);
  context->set_default_verify_paths();
  if (!ca_file.empty()) {
    context->load_verify_file(ca_file);
  }
  return context;
}

}  // namespace nines::net
