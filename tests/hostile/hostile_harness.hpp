#pragma once
// The hostile suite's tools: a scripted upstream that records, byte for byte, every request the
// gateway sends it (and when the gateway closes a connection), and answers with whatever bytes a
// case scripts — well-formed or not; and a raw client that sends bytes as written and reads the
// gateway's answer with a parser of its own (deliberately independent of src/core/http: a test
// must not share the code it judges).
//
// Every case asserts both sides: what the client got, and what the upstream received.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../integration/harness.hpp"

namespace nines::hostile {

using std::chrono::milliseconds;

// One request as the upstream read it.
struct seen_request {
  unsigned connection = 0;  // 1, 2, ...: which upstream connection carried it
  std::string head;         // request line and fields, as sent
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased; repeated names joined by ", "
  std::string body;
  bool has(const std::string& name) const { return headers.contains(name); }
};

// What the upstream does with one request.
struct upstream_reply {
  std::string bytes;   // written at once (may be anything, including several responses)
  bool close = false;  // then closes the connection
  bool hold = false;   // answers nothing: waits for the gateway to close the connection
};

class scripted_upstream {
 public:
  using script = std::function<upstream_reply(const seen_request&)>;
  explicit scripted_upstream(script s);
  ~scripted_upstream();
  scripted_upstream(const scripted_upstream&) = delete;
  scripted_upstream& operator=(const scripted_upstream&) = delete;

  unsigned short port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void set_script(script s);

  std::vector<seen_request> requests();
  std::size_t request_count();
  unsigned connections();
  // Waits until `n` requests have arrived; false on timeout.
  bool wait_requests(std::size_t n, milliseconds timeout = milliseconds(10000));
  // Waits until the gateway closed upstream connection `connection`; how long after `since`.
  std::optional<milliseconds> wait_closed(unsigned connection,
                                          std::chrono::steady_clock::time_point since,
                                          milliseconds timeout = milliseconds(10000));
  // Writes `bytes` on connection `connection` now (stray bytes on an idle connection, say).
  void send_on(unsigned connection, const std::string& bytes);

 private:
  void accept_loop();
  void serve(int fd, unsigned connection);

  int listen_fd_ = -1;
  unsigned short port_ = 0;
  std::mutex mutex_;
  std::condition_variable changed_;
  script script_;
  std::vector<seen_request> requests_;
  std::map<unsigned, int> fds_;  // open connections
  std::map<unsigned, std::chrono::steady_clock::time_point> closed_at_;
  unsigned next_connection_ = 0;
  bool stopping_ = false;
  std::thread acceptor_;
  std::vector<std::thread> handlers_;
};

// A fixed, well-formed answer: status 200, a JSON body naming `tag`.
std::string ok_response(const std::string& tag, bool keep_alive = true);

// One response as the client read it.
struct client_response {
  unsigned status = 0;
  std::string head;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  bool complete = false;  // framed end reached (or the close that ends a close-delimited body)
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A raw connection to a server on loopback.
class raw_client {
 public:
  explicit raw_client(unsigned short port);
  ~raw_client();
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  bool send(const std::string& bytes);  // false when the peer is gone
  // Reads one response (to a HEAD request when `head`): nullopt when the connection ended first
  // or `timeout` passed.
  std::optional<client_response> read_response(bool head = false,
                                               milliseconds timeout = milliseconds(15000));
  // Reads until what arrived (and is not yet used) contains `needle`; false on timeout or end.
  bool read_until(const std::string& needle, milliseconds timeout = milliseconds(15000));
  // Waits until the server closes the connection (reading and discarding); false on timeout.
  bool wait_closed(milliseconds timeout = milliseconds(15000));
  // Whatever arrived and was not yet used by read_response.
  const std::string& pending() const { return buffer_; }
  void shutdown_write();  // FIN: the client is done sending (and, to the gateway, gone)
  void reset();           // RST

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);  // read more; false at the end
  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

// Sends `bytes` on a new connection and reads one response.
std::optional<client_response> exchange(unsigned short port, const std::string& bytes,
                                        bool head = false);

// The `code` of an OpenAI-shaped JSON error body ("" when it has none).
std::string error_code_of(const std::string& body);

}  // namespace nines::hostile
