#pragma once
// Keep-alive connections from one worker to one upstream: an elastic pool. A worker owns one pool
// per upstream (always through a shared_ptr) and uses it from its own thread only; pools are never
// shared between workers.
//
// acquire() hands out the most recently used idle connection that is still fresh (LIFO keeps a few
// connections hot), or opens a new one (TCP, then TLS with chain and host name checks when the
// upstream is https) within the timeout. With `max_connections` open, a request waits for one to
// come back, at most `max_pending` of them at once (more is an overflow, answered at once), each
// at most its timeout. give_back() keeps a connection for reuse while there is room and it is
// younger than `max_lifetime`, else closes it. maintain(), called by the worker's housekeeping,
// closes idle connections past `idle_timeout` or their lifetime and pre-warms: it opens
// connections in the background so that `min_idle` are idle, and as many more as requests
// recently had to open for themselves (up to max_idle and max_connections). A pooled connection
// may have been closed by the server meanwhile: the caller retries such a failure once on a fresh
// connection. A pooled connection on which anything arrived while it was idle (bytes an upstream
// sent unasked, or its close) is never handed out: the check is made when it is taken and at every
// maintain().

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <span>
#include <variant>
#include <vector>

#include "core/routing/retry_policy.hpp"
#include "net/asio.hpp"
#include "net/deadline_sweep.hpp"
#include "net/read_buffer.hpp"
#include "net/wakeup.hpp"

namespace nines::net {

// Open connections of one pool, shared with its connections so that a connection closed anywhere
// frees its place (and wakes a request waiting for one).
struct pool_capacity {
  unsigned open = 0;
  std::deque<wakeup*> waiting;
  void release();
};

class upstream_connection {
 public:
  using plain_stream = tcp::socket;
  using tls_stream = beast::ssl_stream<tcp::socket>;
  using time_point = std::chrono::steady_clock::time_point;

  upstream_connection(plain_stream stream, std::shared_ptr<pool_capacity> capacity);
  upstream_connection(tls_stream stream, std::shared_ptr<pool_capacity> capacity);
  ~upstream_connection();
  upstream_connection(const upstream_connection&) = delete;
  upstream_connection& operator=(const upstream_connection&) = delete;

  tcp::socket& socket() {
    return std::visit([](auto& s) -> tcp::socket& { return beast::get_lowest_layer(s); }, stream_);
  }
  // Bytes read from the upstream and not yet used (bounded: one head and a little more).
  read_buffer& buffer() { return buffer_; }

  // The path to the peer answered within the last `elapsed`: what was sent is all acknowledged,
  // or an acknowledgement arrived since then (the kernel's TCP_INFO and send queue; no bytes
  // read). False on a path that went silent, such as a pooled connection whose link dropped.
  bool acknowledged_within(std::chrono::milliseconds elapsed);
  // The kernel's send queue: bytes written and not yet acknowledged by the far end, and how long
  // ago its last acknowledgement came (TCP_INFO); `known` false where the kernel does not say.
  struct send_queue {
    bool known = false;
    bool established = true;  // false once the far end closed or reset it
    std::size_t unacknowledged = 0;
    std::chrono::milliseconds since_last_ack{0};
    std::chrono::microseconds rtt{0};  // the kernel's smoothed round-trip time
  };
  send_queue send_state();

  // The deadline of the reads and writes that follow, until changed (as Beast's tcp_stream
  // expires_after): past it, the operation under way ends with beast::error::timeout and the
  // connection is closed. Enforced by the worker's deadline sweep (net/deadline_sweep.hpp).
  void expires_after(std::chrono::steady_clock::duration d) {
    due_ = std::chrono::steady_clock::now() + d;
  }
  void expires_never() { due_ = time_point::max(); }

  awaitable<io_result> read_some(asio::mutable_buffer buffer) {
    reading_.arm(due_);
    co_return reading_.finish(co_await std::visit(
        [&](auto& s) { return s.async_read_some(buffer, use_nothrow); }, stream_));
  }
  awaitable<io_result> write(std::span<const asio::const_buffer> buffers) {
    writing_.arm(due_);
    co_return writing_.finish(co_await std::visit(
        [&](auto& s) { return asio::async_write(s, buffers, use_nothrow); }, stream_));
  }
  // Writes a whole Beast message (the gateway's own small requests: probes, webhooks).
  template <class Message>
  awaitable<io_result> write_message(Message& message) {
    writing_.arm(due_);
    co_return writing_.finish(co_await std::visit(
        [&](auto& s) { return http::async_write(s, message, use_nothrow); }, stream_));
  }

  // Calls f(stream) with the concrete stream type; f returns the same type for both.
  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit(std::forward<F>(f), stream_);
  }

  bool reused() const { return reused_; }
  // A response has been read on it (a pre-warmed connection has none yet).
  bool used() const { return used_; }
  void mark_used() { used_ = true; }
  void mark_reused() { reused_ = true; }
  time_point idle_since() const { return idle_since_; }
  void set_idle_since(time_point t) { idle_since_ = t; }
  time_point opened() const { return opened_; }

  void close();

 private:
  std::variant<plain_stream, tls_stream> stream_;
  deadline reading_{socket()};
  deadline writing_{socket()};
  time_point due_ = time_point::max();
  std::shared_ptr<pool_capacity> capacity_;
  read_buffer buffer_{(64u << 10) + 16384};
  bool reused_ = false;
  bool used_ = false;
  time_point idle_since_{};
  time_point opened_ = std::chrono::steady_clock::now();
};

struct upstream_target {
  std::string host;
  std::uint16_t port = 0;
  bool tls = false;
  std::shared_ptr<asio::ssl::context> tls_context;  // set when tls
  // The path out (config: bind_address, bind_interface): the source address connections leave
  // from, and the interface they are bound to (SO_BINDTODEVICE). Empty: as the routes say.
  std::string bind_address;
  std::string bind_interface;
};

struct pool_settings {
  std::size_t max_idle = 64;
  std::size_t min_idle = 0;
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds max_lifetime{600000};
  unsigned max_connections = 0;  // 0: unlimited
  unsigned max_pending = 64;
  std::chrono::milliseconds connect_timeout{5000};  // for pre-warming
};

// Lets a caller cut short an acquire() that waits for a connection at max_connections (its
// client left): cancel() wakes it, and it returns without a connection.
struct acquire_cancel {
  bool cancelled = false;
  wakeup* waiting = nullptr;        // set by acquire() while it waits for a connection slot
  tcp::socket* connecting = nullptr;  // set by acquire() while it connects (and shakes hands)
  void cancel() {
    cancelled = true;
    if (waiting != nullptr) {
      waiting->notify();
    }
    if (connecting != nullptr) {
      error_code ignored;
      connecting->close(ignored);  // the connect ends at once (operation_aborted)
    }
  }
};

struct connect_outcome {
  std::unique_ptr<upstream_connection> connection;
  core::attempt_failure failure = core::attempt_failure::none;
  error_code error;
  bool overflow = false;  // max_connections open and max_pending already waiting
  // What went wrong beyond the error code: a failed TLS handshake, diagnosed
  // (net/tls_diagnosis.hpp): "tls: expired: ...; ...", naming each problem code; or the path out
  // that could not be taken ("bind_interface wlan0: No such device"); empty otherwise.
  std::string problem;
  // What went wrong, in words: the diagnosis when there is one, else the error's message.
  std::string why() const { return problem.empty() ? error.message() : problem; }
};

class upstream_pool : public std::enable_shared_from_this<upstream_pool> {
 public:
  upstream_pool(asio::any_io_executor executor, upstream_target target, pool_settings settings);
  ~upstream_pool();

  // An idle connection, or a new one, within `timeout` (see above). `cancel`, when given, may
  // end a wait for a connection, or a connect, early.
  awaitable<connect_outcome> acquire(std::chrono::milliseconds timeout,
                                     acquire_cancel* cancel = nullptr);
  void give_back(std::unique_ptr<upstream_connection> connection,
                 std::chrono::steady_clock::time_point now);
  void maintain(std::chrono::steady_clock::time_point now);

  // How the open, idle and waiting counts changed since the last call (for the gauges shared by
  // all workers).
  struct count_changes {
    int open = 0;
    int idle = 0;
    int waiting = 0;
  };
  count_changes take_count_changes() {
    count_changes c;
    c.open = static_cast<int>(capacity_->open) - published_.open;
    c.idle = static_cast<int>(idle_.size()) - published_.idle;
    c.waiting = static_cast<int>(capacity_->waiting.size()) - published_.waiting;
    published_.open += c.open;
    published_.idle += c.idle;
    published_.waiting += c.waiting;
    return c;
  }

  // Idle connections closed since the last call because the upstream closed them, or because it
  // sent bytes nobody asked for.
  struct idle_closes {
    std::uint64_t peer_closed = 0;
    std::uint64_t unsolicited_bytes = 0;
  };
  idle_closes take_idle_closes() { return std::exchange(idle_closes_, {}); }

  std::size_t idle_count() const { return idle_.size(); }
  unsigned open_count() const { return capacity_->open; }
  std::size_t waiting_count() const { return capacity_->waiting.size(); }
  const upstream_target& target() const { return target_; }
  const pool_settings& settings() const { return settings_; }

 private:
  std::unique_ptr<upstream_connection> take_idle(std::chrono::steady_clock::time_point now);
  awaitable<connect_outcome> connect(std::chrono::milliseconds timeout,
                                     acquire_cancel* cancel = nullptr);
  awaitable<void> prewarm(std::shared_ptr<upstream_pool> self);
  bool fresh(upstream_connection& c, std::chrono::steady_clock::time_point now);

  asio::any_io_executor executor_;
  upstream_target target_;
  pool_settings settings_;
  std::vector<std::unique_ptr<upstream_connection>> idle_;
  std::shared_ptr<pool_capacity> capacity_ = std::make_shared<pool_capacity>();
  unsigned misses_ = 0;      // acquires that found no idle connection since the last maintain()
  unsigned warming_ = 0;     // pre-warm connects under way
  count_changes published_;
  idle_closes idle_closes_;
};

// Builds the TLS client context for an upstream: TLS 1.2+, peer verification against the system
// store (plus `ca_file` when given) unless `verify` is false. Throws on a bad ca_file (startup).
std::shared_ptr<asio::ssl::context> make_client_tls_context(bool verify, const std::string& ca_file);

}  // namespace nines::net
