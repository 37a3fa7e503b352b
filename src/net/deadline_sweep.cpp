#include "net/deadline_sweep.hpp"

namespace nines::net {

asio::execution_context::id deadline_sweep::id;

deadline::deadline(tcp::socket& socket)
    : socket_(&socket), sweep_(&deadline_sweep::of(socket.get_executor())) {}

void deadline::arm(time_point due) {
  due_ = due;
  fired_ = false;
  sweep_->arm(*this);
}

bool deadline::disarm() {
  if (hook_.is_linked()) {
    hook_.unlink();
    sweep_->disarmed();
  }
  return fired_;
}

deadline_sweep::deadline_sweep(asio::execution_context& context)
    : asio::execution_context::service(context),
      timer_(static_cast<asio::io_context&>(context)) {}

deadline_sweep::~deadline_sweep() { armed_.clear(); }

deadline_sweep& deadline_sweep::of(const asio::any_io_executor& executor) {
  return asio::use_service<deadline_sweep>(asio::query(executor, asio::execution::context));
}

void deadline_sweep::shutdown() {
  shut_down_ = true;
  timer_.cancel();
  armed_.clear();
}

void deadline_sweep::arm(deadline& d) {
  if (!d.hook_.is_linked()) {
    armed_.push_back(d);
  }
  if (d.due_ < timer_at_ && !shut_down_) {
    set_timer(d.due_);
  }
}

void deadline_sweep::disarmed() {
  // Nothing left to guard: the timer stops too, so that an io_context with no other work can end
  // (run() returns once nothing is pending). Only happens when the worker has no read or write
  // under way at all, which a loaded worker seldom has.
  if (armed_.empty() && timer_at_ != time_point::max()) {
    timer_at_ = time_point::max();
    timer_.cancel();
  }
}

void deadline_sweep::set_timer(time_point at) {
  timer_at_ = at;
  ++timer_sets_;
  timer_.expires_at(at);  // cancels the wait under way, whose handler then does nothing
  timer_.async_wait([this, at](const error_code& ec) {
    if (ec || at != timer_at_) {
      return;  // re-set meanwhile (or shut down): a newer wait is the one that counts
    }
    sweep();
  });
}

void deadline_sweep::sweep() {
  timer_at_ = time_point::max();
  const auto now = std::chrono::steady_clock::now();
  time_point next = time_point::max();
  for (auto it = armed_.begin(); it != armed_.end();) {
    deadline& d = *it;
    if (d.due_ <= now) {
      it = armed_.erase(it);
      d.fired_ = true;
      error_code ignored;
      d.socket_->close(ignored);  // the pending operation ends now
    } else {
      next = std::min(next, d.due_);
      ++it;
    }
  }
  if (next != time_point::max()) {
    set_timer(next);
  }
}

}  // namespace nines::net
