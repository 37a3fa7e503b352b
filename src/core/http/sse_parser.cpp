#include "core/http/sse_parser.hpp"

#include <algorithm>
#include <charconv>

namespace nines::core {

sse_error sse_parser::feed(std::string_view bytes, std::vector<sse_event>& out) {
  if (failed_) {
    return sse_error::event_too_large;
  }
  if (at_stream_start_ && !bytes.empty()) {
    // A BOM may only open the stream; it can itself arrive split.
    static constexpr std::string_view bom = "\xEF\xBB\xBF";
    const std::size_t have = line_.size();
    const std::size_t take = std::min(bom.size() - have, bytes.size());
    if (bom.substr(have, take) == bytes.substr(0, take)) {
      line_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (line_.size() < bom.size()) {
        return sse_error::none;
      }
      line_.clear();
    } else {
      // Not a BOM after all: what was held back is ordinary data.
    }
    at_stream_start_ = false;
  }
  if (skip_lf_ && !bytes.empty()) {
    skip_lf_ = false;
    if (bytes.front() == '\n') {
      bytes.remove_prefix(1);
    }
  }
  while (!bytes.empty()) {
    const auto* begin = bytes.data();
    const auto* end = begin + bytes.size();
    const auto* eol = std::find_if(begin, end, [](char c) { return c == '\n' || c == '\r'; });
    const std::size_t len = static_cast<std::size_t>(eol - begin);
    if (eol == end) {
      if (line_.size() + len + data_.size() > max_event_bytes_) {
        failed_ = true;
        return sse_error::event_too_large;
      }
      line_.append(begin, len);
      return sse_error::none;
    }
    if (line_.empty()) {
      process_line(std::string_view(begin, len), out);
    } else {
      line_.append(begin, len);
      process_line(line_, out);
      line_.clear();
    }
    if (failed_) {
      return sse_error::event_too_large;
    }
    std::size_t consumed = len + 1;
    if (*eol == '\r') {
      if (eol + 1 == end) {
        skip_lf_ = true;
      } else if (eol[1] == '\n') {
        ++consumed;
      }
    }
    bytes.remove_prefix(consumed);
  }
  return sse_error::none;
}

void sse_parser::process_line(std::string_view line, std::vector<sse_event>& out) {
  if (line.empty()) {
    if (!data_.empty()) {
      sse_event event;
      data_.pop_back();  // the LF after the last data line
      event.data = std::move(data_);
      event.type = std::move(type_);
      event.id = last_event_id_;
      event.retry_ms = retry_;
      out.push_back(std::move(event));
    }
    data_.clear();
    type_.clear();
    retry_.reset();
    pending_ = false;
    return;
  }
  if (line.front() == ':') {
    return;  // comment
  }
  std::string_view field = line;
  std::string_view value;
  if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') {
      value.remove_prefix(1);
    }
  }
  pending_ = true;
  if (field == "data") {
    if (data_.size() + value.size() + 1 > max_event_bytes_) {
      failed_ = true;
      return;
    }
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "event") {
    type_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) {
      last_event_id_ = std::string(value);
    }
  } else if (field == "retry") {
    unsigned long long ms = 0;
    const auto* end = value.data() + value.size();
    auto [ptr, ec] = std::from_chars(value.data(), end, ms);
    if (!value.empty() && ec == std::errc() && ptr == end) {
      retry_ = ms;
    }
  }
  // Any other field name is ignored, as the specification says.
}

void append_sse_event(std::string& out, const sse_event& event) {
  if (!event.type.empty()) {
    out.append("event: ").append(event.type).push_back('\n');
  }
  if (event.retry_ms) {
    out.append("retry: ").append(std::to_string(*event.retry_ms)).push_back('\n');
  }
  std::string_view data = event.data;
  while (true) {
    const auto nl = data.find('\n');
    out.append("data: ").append(data.substr(0, nl)).push_back('\n');
    if (nl == std::string_view::npos) {
      break;
    }
    data.remove_prefix(nl + 1);
  }
  // The id last, just before the blank line that dispatches the event: a client that records an
  // id as soon as it reads the field (as @microsoft/fetch-event-source does) and then loses the
  // connection can then be wrong only when exactly the final byte was lost, not the whole event.
  if (event.id) {
    out.append("id: ").append(*event.id).push_back('\n');
  }
  out.push_back('\n');
}

std::string without_event_ids(std::string_view events) {
  // Every line of the canonical form starts with its field's name: only an id line starts "id: ".
  std::string out;
  out.reserve(events.size());
  while (!events.empty()) {
    const auto nl = events.find('\n');
    const auto line = events.substr(0, nl == std::string_view::npos ? events.size() : nl + 1);
    if (!line.starts_with("id: ")) {
      out.append(line);
    }
    events.remove_prefix(line.size());
  }
  return out;
}

}  // namespace nines::core
