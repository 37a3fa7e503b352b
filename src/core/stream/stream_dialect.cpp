#include "core/stream/stream_dialect.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include "core/json/sax_handler.hpp"

#include "core/http/openai_error.hpp"
#include "core/json/json_text.hpp"

namespace nines::core {
namespace {

namespace json = boost::json;

// A SAX reader for the two top-level fields of a typed event; everything else is skipped without
// being copied.
class typed_event_reader : public sax_handler {
 public:

  typed_event event;
  bool top_is_object = false;
  bool type_seen = false;
  bool bad = false;  // a repeated "type", or a non-finite number

  bool on_object_begin(json::error_code&) { return open(true); }
  bool on_object_end(std::size_t, json::error_code&) { return close(); }
  bool on_array_begin(json::error_code&) { return open(false); }
  bool on_array_end(std::size_t, json::error_code&) { return close(); }
  bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
    add_key(part);
    return true;
  }
  bool on_key(json::string_view part, std::size_t, json::error_code&) {
    add_key(part);
    key_ = depth_ == 1 && !key_long_ ? key_text_ : std::string();
    key_text_.clear();
    key_long_ = false;
    return true;
  }
  bool on_string_part(json::string_view part, std::size_t, json::error_code&) {
    if (at("type")) {
      type_text_.append(part.data(), part.size());
    }
    return true;
  }
  bool on_string(json::string_view part, std::size_t, json::error_code&) {
    if (at("type")) {
      type_text_.append(part.data(), part.size());
      bad = bad || type_seen;
      type_seen = true;
      event.type = std::move(type_text_);
      type_text_.clear();
    }
    key_.clear();
    return true;
  }
  bool on_int64(std::int64_t v, json::string_view, json::error_code&) {
    if (at("sequence_number")) {
      event.sequence_number = v;
    }
    key_.clear();
    return true;
  }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) {
    key_.clear();  // beyond int64: not a sequence number we can continue
    return true;
  }
  bool on_double(double v, json::string_view, json::error_code&) {
    bad = bad || !std::isfinite(v);
    key_.clear();
    return true;
  }
  bool on_bool(bool, json::error_code&) {
    key_.clear();
    return true;
  }
  bool on_null(json::error_code&) {
    key_.clear();
    return true;
  }

 private:
  bool at(std::string_view key) const { return depth_ == 1 && key_ == key; }
  void add_key(json::string_view part) {
    if (key_text_.size() + part.size() > 24) {
      key_long_ = true;
      key_text_.clear();
    } else if (!key_long_) {
      key_text_.append(part.data(), part.size());
    }
  }
  bool open(bool object) {
    if (depth_ == 0) {
      top_is_object = object;
    }
    key_.clear();
    return ++depth_ <= 64;
  }
  bool close() {
    --depth_;
    key_.clear();
    return true;
  }

  unsigned depth_ = 0;
  std::string key_;
  std::string key_text_;
  bool key_long_ = false;
  std::string type_text_;
};

}  // namespace

stream_dialect dialect_of(api_route route) {
  switch (route) {
    case api_route::chat_completions:
    case api_route::completions:
    case api_route::embeddings:
      return stream_dialect::openai_chunks;
    case api_route::responses:
      return stream_dialect::responses;
    case api_route::messages:
      return stream_dialect::messages;
    default:
      return stream_dialect::opaque;
  }
}

typed_event read_typed_event(std::string_view data) {
  json::parse_options options;
  options.max_depth = 64;
  json::basic_parser<typed_event_reader> parser(options);
  json::error_code ec;
  const std::size_t used = parser.write_some(false, data.data(), data.size(), ec);
  auto& reader = parser.handler();
  if (ec || used != data.size() || !reader.top_is_object || !reader.type_seen || reader.bad) {
    return typed_event{};
  }
  reader.event.valid = true;
  return std::move(reader.event);
}

bool is_terminal_event(stream_dialect dialect, std::string_view type) {
  switch (dialect) {
    case stream_dialect::responses:
      return type == "response.completed" || type == "response.failed" ||
             type == "response.incomplete";
    case stream_dialect::messages:
      return type == "message_stop";
    default:
      return false;
  }
}

incomplete_event make_incomplete_event(stream_dialect dialect, std::string_view message,
                                       std::optional<std::int64_t> last_sequence) {
  incomplete_event out;
  switch (dialect) {
    case stream_dialect::responses: {
      // The Responses API's own error event, and the same as an OpenAI error object: the openai
      // SDK yields an "error" event without one as an ordinary event, so that a loop reading only
      // the deltas would end as if the answer were whole; with it, the SDK raises.
      out.type = "error";
      out.data = R"({"type":"error","code":"stream_incomplete","message":)";
      append_json_string(out.data, message);
      out.data += R"(,"param":null,"sequence_number":)";
      out.data += std::to_string(!last_sequence ? 0
                                 : *last_sequence < (std::int64_t{1} << 53) ? *last_sequence + 1
                                                                            : *last_sequence);
      out.data += R"(,"error":{"type":"stream_incomplete","code":"upstream_stream_broken","message":)";
      append_json_string(out.data, message);
      out.data += "}}";
      break;
    }
    case stream_dialect::messages:
      out.type = "error";
      out.data = R"({"type":"error","error":{"type":"api_error","message":)";
      append_json_string(out.data, message);
      out.data += "}}";
      break;
    default: {
      // openai_error_event is "data: {...}\n\n": its data only.
      std::string e = openai_error_event("stream_incomplete", message, "upstream_stream_broken");
      out.data = e.substr(6, e.size() - 8);
      break;
    }
  }
  return out;
}

}  // namespace nines::core
