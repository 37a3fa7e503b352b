#include "net/departure_watch.hpp"

#include <poll.h>
#include <sys/socket.h>

namespace nines::net {

departure_watch::departure_watch(tcp::socket& socket, bool encrypted)
    : socket_(socket), encrypted_(encrypted),
      starter_(departure_watch_starter::of(socket.get_executor())) {}

void departure_watch::start(std::function<void()> on_gone) {
  stop();
  on_gone_ = std::move(on_gone);
  due_ = std::chrono::steady_clock::now() + start_delay;
  starter_.add(*this);
}

void departure_watch::stop() {
  hook_.unlink();  // still waiting to start: it never will (a no-op when not linked)
  on_gone_ = nullptr;
  if (state_ && state_->active) {
    state_->active = false;
    error_code ignored;
    socket_.cancel(ignored);  // the pending wait ends; nothing else is pending now
  }
  state_.reset();
}

void departure_watch::begin() {
  state_ = std::make_shared<state>();
  state_->on_gone = std::move(on_gone_);
  on_gone_ = nullptr;
  arm(state_);
}

void departure_watch::gone(const std::shared_ptr<state>& s) {
  s->active = false;
  auto f = std::move(s->on_gone);
  f();
}

// Looks without reading. POLLRDHUP: the peer closed its sending side (even with bytes waiting
// before the end); POLLHUP/POLLERR: the connection is gone; POLLIN alone: bytes, the client is
// there (they stay for the next request); nothing: wait for readiness and look again.
void departure_watch::arm(const std::shared_ptr<state>& s) {
  pollfd p{socket_.native_handle(), static_cast<short>(POLLIN | POLLRDHUP), 0};
  if (::poll(&p, 1, 0) < 0) {
    p.revents = 0;
  }
  if ((p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) {
    gone(s);
    return;
  }
  if ((p.revents & POLLRDHUP) != 0) {
    if (encrypted_) {
      gone(s);
      return;
    }
    char byte;
    if (::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) {
      gone(s);  // an end of stream and nothing before it
      return;
    }
    s->active = false;  // a pipelined request, then the end: it is still answered
    return;
  }
  if ((p.revents & POLLIN) != 0) {
    s->active = false;
    return;
  }
  socket_.async_wait(tcp::socket::wait_read, [this, s](const error_code& ec) {
    if (!s->active) {
      return;  // stopped: `this` may be gone, touch nothing
    }
    if (ec) {
      gone(s);  // the socket was closed under the watch (a write timed out, say)
      return;
    }
    arm(s);
  });
}

asio::execution_context::id departure_watch_starter::id;

departure_watch_starter::departure_watch_starter(asio::execution_context& context)
    : asio::execution_context::service(context),
      timer_(static_cast<asio::io_context&>(context)) {}

departure_watch_starter& departure_watch_starter::of(const asio::any_io_executor& executor) {
  return asio::use_service<departure_watch_starter>(
      asio::query(executor, asio::execution::context));
}

void departure_watch_starter::shutdown() {
  shut_down_ = true;
  timer_.cancel();
  waiting_.clear();
}

void departure_watch_starter::add(departure_watch& w) {
  waiting_.push_back(w);  // due times only grow: the list stays in order
  if (!ticking_ && !shut_down_) {
    schedule();
  }
}

void departure_watch_starter::schedule() {
  ticking_ = true;
  timer_.expires_after(tick);
  timer_.async_wait([this](const error_code& ec) {
    if (ec) {
      return;
    }
    ticking_ = false;
    start_due();
  });
}

void departure_watch_starter::start_due() {
  const auto now = std::chrono::steady_clock::now();
  while (!waiting_.empty() && waiting_.front().due_ <= now) {
    departure_watch& w = waiting_.front();
    waiting_.pop_front();
    w.begin();  // may call on_gone, which may stop other watches: they unlink themselves
  }
  if (!waiting_.empty()) {
    schedule();
  }
}

}  // namespace nines::net
