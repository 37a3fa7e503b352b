#pragma once
// One JSON line per request (docs/architecture.md lists the fields). Each worker formats into its
// own buffer and writes whole lines to the shared sink when the buffer passes 16 KiB or when its
// periodic flush runs (every 100 ms), so the hot path takes no lock and makes no system call.
// Secrets (API keys, Authorization headers) are never part of a record.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace nines::obs {

struct request_record {
  std::string id;
  std::string_view method;
  std::string path;
  unsigned status = 0;
  std::vector<std::string> upstreams;  // tried, in order
  unsigned attempts = 0;
  unsigned hedges = 0;                  // attempts sent as hedges
  unsigned resumes = 0;                 // continuations of a broken stream
  std::string resume_log;               // JSON objects, comma-separated: cause, from, to, gap
  bool stream = false;
  std::string_view outcome = "ok";  // ok, failed, stream_incomplete, client_closed, rejected,
                                    // cancelled (a journaled generation nobody waited for)
  std::string_view journal;         // "", new, last_event_id, idempotency, detached
  std::string detail;               // why, when not ok
  double ttfb_ms = -1;              // -1: no byte reached the client
  double duration_ms = 0;
  std::size_t bytes_in = 0;
  std::size_t bytes_out = 0;
};

std::string format_access_line(const request_record& record);

// The outcome named by `text`, as a view of static storage (request_record::outcome outlives
// whatever string it came from).
std::string_view known_outcome(std::string_view text);

// Where lines go: a file descriptor shared by all workers. Thread-safe.
class access_log_sink {
 public:
  // "stdout", "off", or a path (opened for append; created when missing). Throws on failure.
  static std::shared_ptr<access_log_sink> open(const std::string& where);
  ~access_log_sink();
  bool enabled() const { return fd_ >= 0; }
  void write(std::string_view lines);

 private:
  explicit access_log_sink(int fd, bool owned) : fd_(fd), owned_(owned) {}
  int fd_;
  bool owned_;
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
