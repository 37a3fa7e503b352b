#pragma once
// Notices a client leaving while nothing is read from its connection (client_transport's
// watch_departure), without reading: the kernel's view of the socket says whether the peer closed
// or reset it. Shared by the plain and the TLS transports.
//
// Threading: the watch and its socket belong to one worker's thread.

#include <functional>
#include <memory>

#include "net/asio.hpp"

namespace nines::net {

class departure_watch {
 public:
  // With `encrypted`, bytes waiting do not prove the client is there: over TLS they may be its
  // close_notify, so a closed sending side counts as gone even with bytes before it. In plain
  // HTTP, bytes waiting are a pipelined request (the client is there, whatever follows).
  departure_watch(tcp::socket& socket, bool encrypted) : socket_(socket), encrypted_(encrypted) {}
  ~departure_watch() { stop(); }
  departure_watch(const departure_watch&) = delete;
  departure_watch& operator=(const departure_watch&) = delete;

  // Calls `on_gone` once when the client closed or reset the connection; ends by itself when the
  // client sends bytes. May call `on_gone` before returning.
  void start(std::function<void()> on_gone);
  // Ends the watch; its pending wait is cancelled (nothing else may be pending on the socket).
  void stop();

 private:
  struct state {
    bool active = true;
    std::function<void()> on_gone;
  };
  void arm(const std::shared_ptr<state>& s);
  static void gone(const std::shared_ptr<state>& s);

  tcp::socket& socket_;
  bool encrypted_;
  std::shared_ptr<state> state_;
};

}  // namespace nines::net
