#pragma once
// One deadline per connection direction, enforced by one timer per io_context, instead of a timer
// armed and cancelled around every read and write (Beast's tcp_stream). A busy connection touches
// no timer: arming a deadline writes its time into the connection's slot and links the slot into
// the sweep's list; disarming unlinks it. The sweep's single timer is set to the earliest time of
// an armed slot and only re-set when a slot is armed earlier than that (rare: deadlines only move
// later on a busy connection), and stopped when no slot is armed at all. When the timer fires, every armed slot past its time is fired: its
// socket is closed, which ends the operation pending on it (and, over TLS, the one of the stream
// above it), and the slot remembers that it fired so that the operation reports a timeout. This is
// what Beast's tcp_stream does on a timeout too (it closes the socket), and what nginx and HAProxy
// do with their timer trees: time is only looked at when something may be due.
//
// Threading: one sweep per io_context (an Asio service), used from the thread that runs it; every
// io_context of nines is run by one thread.

#include <boost/intrusive/list.hpp>
#include <chrono>

#include "net/asio.hpp"

namespace nines::net {

class deadline_sweep;

// The deadline of one direction (reads, or writes) of one connection. At most one operation at a
// time is guarded by it.
class deadline {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // `socket` is closed when the deadline passes while armed; it must outlive this slot.
  deadline(tcp::socket& socket);
  ~deadline() { disarm(); }
  deadline(const deadline&) = delete;
  deadline& operator=(const deadline&) = delete;

  // Guards the operation about to start: past `due`, the socket is closed.
  void arm(time_point due);
  // The operation ended; true when the deadline fired meanwhile (report a timeout).
  bool disarm();
  bool fired() const { return fired_; }

  // Ends the operation with `ec`, or with beast's timeout when the deadline fired.
  template <class Result>
  Result finish(Result r) {
    if (disarm()) {
      std::get<0>(r) = beast::error::timeout;
    }
    return r;
  }

 private:
  friend class deadline_sweep;
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>
      hook_;
  tcp::socket* socket_;
  deadline_sweep* sweep_;
  time_point due_{};
  bool fired_ = false;
};

class deadline_sweep final : public asio::execution_context::service {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using key_type = deadline_sweep;
  static asio::execution_context::id id;

  explicit deadline_sweep(asio::execution_context& context);
  ~deadline_sweep() override;

  // The sweep of the io_context that `executor` belongs to.
  static deadline_sweep& of(const asio::any_io_executor& executor);

  void arm(deadline& d);
  // Armed deadlines, for tests and metrics.
  std::size_t armed() const { return armed_.size(); }
  // Timer waits started so far (a measure of how rarely the timer is touched).
  std::uint64_t timer_sets() const { return timer_sets_; }

 private:
  friend class deadline;
  void shutdown() override;
  void disarmed();
  void set_timer(time_point at);
  void sweep();

  using list = boost::intrusive::list<
      deadline,
      boost::intrusive::member_hook<deadline, decltype(deadline::hook_), &deadline::hook_>,
      boost::intrusive::constant_time_size<false>>;
  asio::steady_timer timer_;
  list armed_;
  time_point timer_at_ = time_point::max();
  std::uint64_t timer_sets_ = 0;
  bool shut_down_ = false;
};

}  // namespace nines::net
