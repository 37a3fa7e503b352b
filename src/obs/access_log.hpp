#pragma once
// One JSON line per request (docs/architecture.md lists the fields). Each worker formats into its
// own buffer and writes whole lines to the shared sink when the buffer passes 16 KiB or when its
// periodic flush runs (every 100 ms), so the hot path takes no lock and makes no system call.
// Secrets (API keys, Authorization headers) are never part of a record.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nines::obs {

struct request_record {
  std::string id;
  std::string trace_id;   // W3C trace context: the trace this request belongs to
  std::string span_id;    // the gateway's span (the upstream's parent)
  std::string parent_id;  // the client's span, when it sent a traceparent
  std::uint8_t trace_flags = 1;
  std::string_view method;
  std::string path;
  std::string key_id;  // the client key that was accepted ("" when open, or refused)
  unsigned status = 0;
  std::vector<std::string> upstreams;  // tried, in order
  std::string served_by;               // the upstream whose answer the client got (the last one
                                       // of a resumed stream); empty when none did
  unsigned attempts = 0;
  unsigned hedges = 0;                  // attempts sent as hedges
  unsigned connect_races = 0;           // attempts sent because a connect was slow
  unsigned resumes = 0;                 // continuations of a broken stream
  std::string resume_log;               // JSON objects, comma-separated: cause, from, to, gap
  bool stream = false;
  std::string_view outcome = "ok";  // ok, failed, stream_incomplete, client_closed, rejected,
                                    // cancelled (a journaled generation nobody waited for)
  std::string_view journal;         // "", new, last_event_id, idempotency, detached
  std::string_view cache;           // "" (no cache), hit, shared, miss, bypass
  std::string detail;               // why, when not ok
  double ttfb_ms = -1;              // -1: no byte reached the client
  double duration_ms = 0;
  std::size_t bytes_in = 0;
  std::size_t bytes_out = 0;
  std::optional<std::uint64_t> usage_tokens;  // the answer's usage.total_tokens, when it said
};

std::string format_access_line(const request_record& record);

// The outcome named by `text`, as a view of static storage (request_record::outcome outlives
// whatever string it came from).
std::string_view known_outcome(std::string_view text);

// The level of a request's line: info when it was answered, warning when it was refused (bad input),
// error when the gateway could not serve it.
std::string_view level_of(const request_record& record);

// Where lines go: a file descriptor shared by all workers. Thread-safe.
class access_log_sink {
 public:
  // "stdout", "off", or a path (opened for append; created when missing). Throws on failure.
  static std::shared_ptr<access_log_sink> open(const std::string& where);
  ~access_log_sink();
  bool enabled() const { return fd_ >= 0; }
  void write(std::string_view lines);
  // Opens the file again (after logrotate moved it, on SIGUSR1); returns what went wrong, or empty.
  std::string reopen();

 private:
  access_log_sink(int fd, bool owned, std::string path)
      : fd_(fd), owned_(owned), path_(std::move(path)) {}
  int fd_;
  bool owned_;
  std::string path_;
  std::mutex mutex_;
};

// Per worker; not thread-safe.
class access_log_buffer {
 public:
  explicit access_log_buffer(std::shared_ptr<access_log_sink> sink) : sink_(std::move(sink)) {}
  ~access_log_buffer() { flush(); }
  void append(const request_record& record);
  void flush();

 private:
  std::shared_ptr<access_log_sink> sink_;
  std::string pending_;
};

}  // namespace nines::obs
