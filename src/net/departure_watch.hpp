#pragma once
// Notices a client leaving while nothing is read from its connection (client_transport's
// watch_departure), without reading: the kernel's view of the socket says whether the peer closed
// or reset it. Shared by the plain and the TLS transports.
//
// The watch starts `start_delay` after it is asked for, not at once: most requests are answered
// sooner and never pay for one (a poll, an epoll_ctl to wait for readiness, and its cancel). A
// worker's watches waiting to start are kept in arrival order by one ticking timer per io_context
// (departure_watch_starter), which runs only while some wait. A client that leaves is therefore
// noticed at most start_delay + tick later than it would be with an immediate watch: 20 ms, against
// requests that take seconds when it matters (a slow first token, a long stream).
//
// Threading: the watch and its socket belong to one worker's thread.

#include <boost/intrusive/list.hpp>
#include <chrono>
#include <functional>
#include <memory>

#include "net/asio.hpp"

namespace nines::net {

class departure_watch_starter;

class departure_watch {
 public:
  static constexpr std::chrono::milliseconds start_delay{10};

  // With `encrypted`, bytes waiting do not prove the client is there: over TLS they may be its
  // close_notify, so a closed sending side counts as gone even with bytes before it. In plain
  // HTTP, bytes waiting are a pipelined request (the client is there, whatever follows).
  departure_watch(tcp::socket& socket, bool encrypted);
  ~departure_watch() { stop(); }
  departure_watch(const departure_watch&) = delete;
  departure_watch& operator=(const departure_watch&) = delete;

  // Calls `on_gone` once when the client closed or reset the connection; ends by itself when the
  // client sends bytes. Never calls it before returning.
  void start(std::function<void()> on_gone);
  // Ends the watch (or its wait to start); its pending wait is cancelled (nothing else may be
  // pending on the socket).
  void stop();

 private:
  friend class departure_watch_starter;
  struct state {
    bool active = true;
    std::function<void()> on_gone;
  };
  void begin();  // the delay is over: look, then wait for readiness
  void arm(const std::shared_ptr<state>& s);
  static void gone(const std::shared_ptr<state>& s);

  tcp::socket& socket_;
  bool encrypted_;
  departure_watch_starter& starter_;
  std::function<void()> on_gone_;  // while waiting to start
  std::chrono::steady_clock::time_point due_{};
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>
      hook_;
  std::shared_ptr<state> state_;  // once started
};

// The watches of one io_context waiting for their start, oldest first, and the timer that starts
// them: it ticks every `tick` while any wait, and stops when none does (an io_context with nothing
// else to do can end).
class departure_watch_starter final : public asio::execution_context::service {
 public:
  using key_type = departure_watch_starter;
  static asio::execution_context::id id;
  static constexpr std::chrono::milliseconds tick{10};

  explicit departure_watch_starter(asio::execution_context& context);
  static departure_watch_starter& of(const asio::any_io_executor& executor);

  void add(departure_watch& w);
  std::size_t waiting() const { return waiting_.size(); }

 private:
  void shutdown() override;
  void schedule();
  void start_due();

  using list = boost::intrusive::list<
      departure_watch,
      boost::intrusive::member_hook<departure_watch, decltype(departure_watch::hook_),
                                    &departure_watch::hook_>,
      boost::intrusive::constant_time_size<false>>;
  asio::steady_timer timer_;
  list waiting_;
  bool ticking_ = false;
  bool shut_down_ = false;
};

}  // namespace nines::net
