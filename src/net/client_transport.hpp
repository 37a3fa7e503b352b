#pragma once
// The byte stream of one client connection, whatever carries it: plain TCP or TLS here, test
// streams elsewhere. The server session (http_server.cpp) reads requests and writes responses
// through it and knows nothing else of the connection, so that one session serves every kind, and
// a test can make each I/O step fail in turn.
//
// Threading: a transport lives on one worker's io_context and is used from that thread only. At
// most one read and one write are outstanding at a time, as for any Asio stream.

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "net/asio.hpp"

namespace nines::net {

class client_transport {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~client_transport() = default;

  // Reads some bytes; an error when the peer closed or reset, or `deadline` passed (timeout).
  virtual awaitable<io_result> read_some(asio::mutable_buffer buffer, time_point deadline) = 0;
  // Writes all of `buffers` within `timeout` (a client that does not read is cut off).
  virtual awaitable<io_result> write(std::span<const asio::const_buffer> buffers,
                                     std::chrono::milliseconds timeout) = 0;

  // While a request is being answered nothing is read from the client, so its leaving would go
  // unseen until the next write. Between these two calls the transport watches the connection and
  // calls `on_gone` once, on this thread, when the client closed or reset it. Bytes the client
  // sends meanwhile (a pipelined request) end the watch: a client that sends is not gone.
  // `on_gone` may be called before watch_departure returns (the client had already left).
  virtual void watch_departure(std::function<void()> on_gone) = 0;
  virtual void stop_watching() = 0;

  // Stops sending: the peer reads an end of stream. Over TCP reads stay possible; over TLS a
  // close_notify goes first, and what the peer still sends is read and dropped until it answers
  // with its own, closes, or `deadline` passes (a lingering close of its own).
  virtual awaitable<void> end_sending(time_point deadline) = 0;
  // Closes at once; with `reset`, the peer sees a TCP RST.
  virtual void abort(bool reset) = 0;
};

// A plain TCP connection. Deadlines are its slots in the worker's deadline sweep
// (net/deadline_sweep.hpp): no timer is touched per read or write.
std::unique_ptr<client_transport> make_tcp_transport(tcp::socket socket);

class tls_server_identity;

// Why a TLS handshake with a client failed, as a metric label and a log line.
struct tls_handshake_failure {
  std::string_view reason;  // protocol_version, no_shared_cipher, no_application_protocol,
                            // client_certificate_missing, client_certificate_rejected,
                            // plain_http, timeout, closed, other
  std::string detail;       // OpenSSL's words
};

// A TLS server connection: the handshake with `identity` within `deadline`, then the transport.
// A client that speaks plain HTTP to the TLS port gets a plain 400 saying so, then the close.
// On failure, nullptr and `failure` says why.
awaitable<std::unique_ptr<client_transport>> accept_tls(
    tcp::socket socket, std::shared_ptr<const tls_server_identity> identity,
    client_transport::time_point deadline, tls_handshake_failure& failure);

}  // namespace nines::net
