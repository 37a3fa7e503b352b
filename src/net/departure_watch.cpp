#include "net/departure_watch.hpp"

#include <poll.h>
#include <sys/socket.h>

namespace nines::net {

void departure_watch::start(std::function<void()> on_gone) {
  stop();
  state_ = std::make_shared<state>();
  state_->on_gone = std::move(on_gone);
  arm(state_);
}

void departure_watch::stop() {
  if (state_ && state_->active) {
    state_->active = false;
    error_code ignored;
    socket_.cancel(ignored);  // the pending wait ends; nothing else is pending now
  }
  state_.reset();
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

}  // namespace nines::net
