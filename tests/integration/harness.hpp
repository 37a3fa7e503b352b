#pragma once
// Runs the real `nines` binary in tests: child processes on ephemeral loopback ports, synchronised
// on what they print (never on sleeps), and a small blocking HTTP client.

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/http/sse_parser.hpp"
#include "core/tools/mock_model.hpp"
#include "tools/child_process.hpp"
#include "tools/http_client.hpp"

namespace nines::test {

using std::chrono::milliseconds;

using process = tools::child_process;

struct server {
  std::unique_ptr<process> proc;
  unsigned short port = 0;
  unsigned short admin_port = 0;  // a gateway's admin listener (/metrics, /status, /dashboard)
  unsigned short tls_port = 0;    // a gateway's TLS listener ([tls]); port is then its plain one,
                                  // 0 when it has none
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  std::string admin_url() const { return "http://127.0.0.1:" + std::to_string(admin_port); }
};

// The binary under test: this build's, or NINES_TEST_BINARY (to run a suite against another
// build, an older one say, and see which cases it fails).
std::string binary();
// The port at the end of a "... listening on http://host:port" line.
unsigned short port_from(const std::string& line);

// `nines mock-llm --listen 127.0.0.1:0 <args...>`, once it listens.
server start_mock(std::vector<std::string> args = {});
// `nines gateway --config <file with toml>`, once it listens. The config's listen is replaced.
server start_gateway(const std::string& toml, std::vector<std::string> extra_args = {});
// A gateway whose [gateway] table also holds `gateway_keys` ("drain_timeout_ms = 300\n").
server start_gateway_with(const std::string& gateway_keys, const std::string& toml,
                          std::vector<std::string> extra_args = {});
// The same for `nines edge`: the file gets an [edge] table, and `toml` names [[uplinks]].
server start_edge(const std::string& toml, std::vector<std::string> extra_args = {});
// The same with the default number of workers, run by `launcher` (an absolute path and its
// arguments: `/usr/bin/taskset -c 0`, say).
server start_gateway_under(std::vector<std::string> launcher, const std::string& toml);
// `nines chaos --api 127.0.0.1:0 <args...>`, once its API listens (port is the API's).
server start_chaos(std::vector<std::string> args = {});
// Creates a chaos proxy listening on an ephemeral port in front of `upstream_port`; returns its
// port.
unsigned short add_chaos_proxy(const server& chaos, const std::string& name,
                               unsigned short upstream_port);
// A TOML [[upstreams]] block per URL, named u0, u1, ...
std::string upstreams_toml(const std::vector<std::string>& urls);
// The gateway config of the resume tests: upstream "breaks" (`breaks_url`) always tried first,
// "continues" second, a 200 ms stream idle timeout, and outlier detection off so that the
// breaking upstream keeps being chosen first, break after break. `upstream_extra` goes in both
// upstream tables.
std::string breaks_then_continues_toml(const std::string& breaks_url,
                                       const std::string& continues_url,
                                       const std::string& upstream_extra = {});

using response = tools::http_result;

response http_call(unsigned short port, const std::string& method, const std::string& target,
                   const std::string& body = {},
                   const std::map<std::string, std::string>& headers = {});

// Sends raw bytes and returns everything the server answers until it closes.
std::string raw_exchange(unsigned short port, const std::string& bytes);

// Reads a streamed answer incrementally, to observe events while the stream is still open.
class stream_reader {
 public:
  // With keep_events false only the count and the last event are kept (for long streams).
  stream_reader(unsigned short port, const std::string& target, const std::string& body,
                bool keep_events = true, const std::map<std::string, std::string>& headers = {});
  ~stream_reader();
  // Reads until at least `count` events have arrived; false if the stream ended or failed first.
  bool read_events(std::size_t count);
  const std::vector<core::sse_event>& events() const { return events_; }
  std::size_t count() const { return count_; }
  const core::sse_event& last() const { return last_; }
  bool ended() const { return parser_.is_done(); }
  unsigned status() const { return parser_.get().result_int(); }
  std::string header(const std::string& name) const { return std::string(parser_.get()[name]); }

 private:
  boost::asio::io_context ctx_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  boost::beast::http::response_parser<boost::beast::http::buffer_body> parser_;
  core::sse_parser sse_;
  std::vector<core::sse_event> events_;
  std::size_t count_ = 0;
  core::sse_event last_;
  bool keep_;
};

// The SSE events of a body.
std::vector<core::sse_event> sse_events(const std::string& body);

// Joins choices[0].delta.content (chat) or choices[0].text (completions) of stream events.
std::string stream_text(const std::vector<core::sse_event>& events);

// The text of a non-streamed answer.
std::string answer_text(const std::string& body);

// The exact answer mock-llm gives to `request_body` (a JSON text).
std::string expected_answer(const std::string& request_body, bool chat, std::size_t tokens = 24);

// The exact thought and answer a reasoning mock-llm (--thought-tokens) gives to `request_body`.
core::mock_output expected_output(const std::string& request_body, core::mock_api api,
                                  std::size_t thought_tokens, std::size_t tokens = 24);

// Joins choices[0].delta.reasoning_content, or .reasoning, of chat stream events (one field per
// event: a chunk carrying both counts once).
std::string stream_thought(const std::vector<core::sse_event>& events);

std::string chat_body(const std::string& prompt, bool stream, const std::string& extra = {});

// One series of a server's GET /metrics, e.g. `nines_journal_bytes` or
// `nines_stream_resumes_total{cause="reset",from="a",to="b"}` (labels as exposed); 0 when absent.
std::uint64_t metric_value(unsigned short port, const std::string& series);

// GET /mock/stats as a number for one key.
std::uint64_t mock_stat(unsigned short port, const std::string& key);

// A path in /tmp no other test uses, ending in `suffix` (".toml", ".log").
std::string temp_path(const std::string& suffix);

// The whole content of a file ("" when it cannot be read).
std::string read_file(const std::string& path);

// Looks at `done()` until it holds or `timeout` passes, pausing `every` between looks (for state
// kept by other processes: a Prometheus server's targets, say). Returns the last look. A look
// that costs the watched process work (a 500-phone /devices) is worth a longer pause.
bool eventually(const std::function<bool()>& done, milliseconds timeout = milliseconds(30000),
                milliseconds every = milliseconds(20));

// A local HTTP server that records every request sent to it (alert webhooks, say) and answers
// with the given statuses in order, then 200. One request per connection.
class http_recorder {
 public:
  explicit http_recorder(std::vector<unsigned> statuses = {});
  ~http_recorder();
  http_recorder(const http_recorder&) = delete;
  http_recorder& operator=(const http_recorder&) = delete;

  std::string url(const std::string& path) const;
  struct received {
    std::string method;
    std::string target;
    std::string content_type;
    std::string body;
    unsigned answered = 0;
  };
  // Waits until at least `count` requests have arrived; false on timeout.
  bool wait_for(std::size_t count, milliseconds timeout = milliseconds(15000));
  std::vector<received> requests();

 private:
  void serve();
  boost::asio::io_context ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<received> requests_;
  std::vector<unsigned> statuses_;
  std::thread thread_;
};

}  // namespace nines::test
