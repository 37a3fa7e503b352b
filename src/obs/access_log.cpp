#include "obs/access_log.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fmt/format.h>
#include <stdexcept>
#include <unistd.h>

#include "core/json/json_text.hpp"

namespace nines::obs {

std::string_view known_outcome(std::string_view text) {
  static constexpr std::string_view outcomes[] = {"ok",       "failed",    "stream_incomplete",
                                                  "client_closed", "rejected", "cancelled"};
  for (auto o : outcomes) {
    if (o == text) {
      return o;
    }
  }
  return "other";
}

std::string_view level_of(const request_record& r) {
  if (r.outcome == "failed" || r.outcome == "stream_incomplete") {
    return "error";
  }
  return r.outcome == "rejected" ? "warning" : "info";
}

std::string format_access_line(const request_record& r) {
  std::string line;
  line.reserve(320);
  // The wall-clock time of the line (UTC, milliseconds), then the request.
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  fmt::format_to(std::back_inserter(line),
                 "{{\"time\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"level\":\"{}\",\"id\":",
                 utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                 utc.tm_sec, ms.count() % 1000, level_of(r));
  core::append_json_string(line, r.id);
  if (!r.trace_id.empty()) {
    line.append(",\"trace_id\":\"").append(r.trace_id).append("\",\"span_id\":\"").append(r.span_id);
    line.push_back('"');
    if (!r.parent_id.empty()) {
      line.append(",\"parent_id\":\"").append(r.parent_id).push_back('"');
    }
  }
  line.append(",\"method\":");
  core::append_json_string(line, r.method);
  line.append(",\"route\":");
  core::append_json_string(line, r.path);
  if (!r.key_id.empty()) {
    line.append(",\"key\":");  // the client key's id, never its secret
    core::append_json_string(line, r.key_id);
  }
  fmt::format_to(std::back_inserter(line),
                 ",\"status\":{},\"stream\":{},\"attempts\":{},\"resumes\":{}", r.status,
                 r.stream, r.attempts, r.resumes);
  if (r.hedges > 0) {
    fmt::format_to(std::back_inserter(line), ",\"hedges\":{}", r.hedges);
  }
  if (r.connect_races > 0) {
    fmt::format_to(std::back_inserter(line), ",\"connect_races\":{}", r.connect_races);
  }
  line.append(",\"upstreams\":[");
  for (std::size_t i = 0; i < r.upstreams.size(); ++i) {
    if (i > 0) {
      line.push_back(',');
    }
    core::append_json_string(line, r.upstreams[i]);
  }
  line.append("]");
  if (!r.served_by.empty()) {
    line.append(",\"served_by\":");
    core::append_json_string(line, r.served_by);
  }
  if (!r.resume_log.empty()) {
    line.append(",\"resume_log\":[").append(r.resume_log);
    // A resume whose continuation never reached the client has no "to" and no gap.
    if (r.resume_log.back() != '}') {
      line.push_back('}');
    }
    line.push_back(']');
  }
  if (!r.cache.empty()) {
    line.append(",\"cache\":");
    core::append_json_string(line, r.cache);
  }
  if (!r.journal.empty()) {
    line.append(",\"journal\":");
    core::append_json_string(line, r.journal);
  }
  line.append(",\"outcome\":");
  core::append_json_string(line, r.outcome);
  if (!r.detail.empty()) {
    line.append(",\"detail\":");
    core::append_json_string(line, r.detail);
  }
  if (r.ttfb_ms >= 0) {
    fmt::format_to(std::back_inserter(line), ",\"ttfb_ms\":{:.3f}", r.ttfb_ms);
  }
  if (r.usage_tokens) {
    fmt::format_to(std::back_inserter(line), ",\"tokens\":{}", *r.usage_tokens);
  }
  fmt::format_to(std::back_inserter(line),
                 ",\"duration_ms\":{:.3f},\"bytes_in\":{},\"bytes_out\":{}}}\n", r.duration_ms,
                 r.bytes_in, r.bytes_out);
  return line;
}

std::shared_ptr<access_log_sink> access_log_sink::open(const std::string& where) {
  if (where == "off") {
    return std::shared_ptr<access_log_sink>(new access_log_sink(-1, false, {}));
  }
  if (where == "stdout" || where.empty()) {
    return std::shared_ptr<access_log_sink>(new access_log_sink(STDOUT_FILENO, false, {}));
  }
  const int fd = ::open(where.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    throw std::runtime_error("cannot open access log " + where + ": " + std::strerror(errno));
  }
  return std::shared_ptr<access_log_sink>(new access_log_sink(fd, true, where));
}

std::string access_log_sink::reopen() {
  if (!owned_) {
    return {};  // stdout or off: nothing to reopen
  }
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return "cannot reopen " + path_ + ": " + std::strerror(errno);  // keep writing to the old one
  }
  std::lock_guard lock(mutex_);
  ::close(fd_);
  fd_ = fd;
  return {};
}

access_log_sink::~access_log_sink() {
  if (owned_ && fd_ >= 0) {
    ::close(fd_);
  }
}

void access_log_sink::write(std::string_view lines) {
  if (fd_ < 0) {
    return;
  }
  std::lock_guard lock(mutex_);
  while (!lines.empty()) {
    const ssize_t n = ::write(fd_, lines.data(), lines.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return;  // a full disk or a closed pipe must not stop the gateway; lines are dropped
    }
    lines.remove_prefix(static_cast<std::size_t>(n));
  }
}

void access_log_buffer::append(const request_record& record) {
  if (!sink_->enabled()) {
    return;
  }
  pending_.append(format_access_line(record));
  if (pending_.size() >= 16 * 1024) {
    flush();
  }
}

void access_log_buffer::flush() {
  if (!pending_.empty()) {
    sink_->write(pending_);
    pending_.clear();
  }
}

}  // namespace nines::obs
