#pragma once
// Where a response goes: straight to the client's connection (net::downstream), or into the
// journal that clients read from (gateway/journal_relay.hpp). The attempt loop writes through this
// interface and does not know which.
//
// Threading: used from one worker thread at a time.

#include <chrono>
#include <string_view>

#include "net/asio.hpp"

namespace nines::net {

// Told when the client of a request leaves before its answer is complete (see
// client_transport::watch_departure), so that the work for it stops at once.
class departure_listener {
 public:
  virtual ~departure_listener() = default;
  virtual void client_departed() = 0;
};

class response_sink {
 public:
  virtual ~response_sink() = default;

  // A complete response; Content-Length is set from the body.
  virtual awaitable<error_code> send(http::response<http::string_body> response) = 0;
  // The header of a streamed response, then chunks of its body, then its end.
  virtual awaitable<error_code> begin_stream(http::response<http::empty_body> header) = 0;
  virtual awaitable<error_code> write_chunk(std::string_view data) = 0;
  virtual awaitable<error_code> end_stream() = 0;
  // The last chunk of data and the end of the body in one write.
  virtual awaitable<error_code> finish_stream(std::string_view data) = 0;
  // The streamed body cannot be completed, and its protocol is not one the writer can say so in:
  // end it so that the reader sees a broken transfer, never a complete one.
  virtual void break_stream() = 0;
  // From now until the streamed body ends, `beat` (bytes the body's protocol ignores: an SSE
  // comment) is written whenever nothing else was for `every`: a reader that watches for silence
  // knows the path is alive. A sink that cannot (the journal) ignores it.
  virtual void beat_while_idle(const asio::any_io_executor& executor,
                               std::chrono::milliseconds every, std::string_view beat) {}
  virtual bool can_beat() const { return false; }

  // Nobody will read what is written any more (the client went away, or was cancelled).
  virtual bool failed() const = 0;
  // The whole response has been written.
  virtual bool finished() const = 0;
  virtual unsigned version() const = 0;

  // A sink whose reader can leave (a client's connection) tells `listener` when it does; the
  // listener must stay valid until it is replaced (nullptr to unregister). Others never call it.
  virtual void on_departure(departure_listener* listener) {}
  virtual bool departed() const { return false; }
};

}  // namespace nines::net
