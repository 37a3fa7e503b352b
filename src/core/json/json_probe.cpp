#include "core/json/json_probe.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include "core/json/sax_handler.hpp"
#include <fmt/format.h>

namespace nines::core {
namespace {

namespace json = boost::json;
using json::error_code;
using json::string_view;

// Remembers which top-level key a value belongs to. Keys longer than 16 bytes are not ours.
class facts_handler : public sax_handler {
 public:

  json_facts facts;

  bool on_object_begin(error_code&) {
    if (depth_ == 0) {
      facts.is_object = true;
    }
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, error_code&) {
    --depth_;
    return true;
  }
  bool on_array_begin(error_code&) {
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t, error_code&) {
    --depth_;
    return true;
  }
  bool on_key_part(string_view part, std::size_t, error_code&) {
    if (depth_ == 1) {
      append_key(part);
    }
    return true;
  }
  bool on_key(string_view part, std::size_t, error_code&) {
    if (depth_ == 1) {
      append_key(part);
      current_ = key_ == "stream"                  ? key::stream
                 : key_ == "model"                 ? key::model
                 : key_ == "error"                 ? key::error
                 : key_ == "max_tokens" || key_ == "max_completion_tokens" ||
                         key_ == "max_output_tokens"
                     ? key::max_tokens
                 : key_ == "temperature" ? key::temperature
                                         : key::other;
      if (current_ == key::temperature) {
        facts.temperature_repeated = facts.temperature_repeated || temperature_seen_;
        temperature_seen_ = true;
        facts.temperature.reset();
      }
      if (current_ == key::error) {
        facts.has_error = true;
      }
      key_.clear();
      key_too_long_ = false;
    }
    return true;
  }
  bool on_string_part(string_view part, std::size_t, error_code&) {
    if (depth_ == 1 && current_ == key::model) {
      model_.append(part.data(), part.size());
    }
    return true;
  }
  bool on_string(string_view part, std::size_t, error_code&) {
    if (depth_ == 1 && current_ == key::model) {
      model_.append(part.data(), part.size());
      facts.model = std::move(model_);
      model_.clear();
    }
    return true;
  }
  bool on_int64(std::int64_t v, string_view, error_code&) {
    note_temperature(static_cast<double>(v));
    if (depth_ == 1 && current_ == key::max_tokens && v >= 0) {
      facts.max_tokens = static_cast<std::uint64_t>(v);
    }
    return true;
  }
  bool on_uint64(std::uint64_t v, string_view, error_code&) {
    note_temperature(static_cast<double>(v));
    if (depth_ == 1 && current_ == key::max_tokens) {
      facts.max_tokens = v;
    }
    return true;
  }
  bool on_double(double v, string_view, error_code&) {
    note_temperature(v);
    return true;
  }
  bool on_bool(bool b, error_code&) {
    if (depth_ == 1 && current_ == key::stream) {
      facts.stream = b;
    }
    return true;
  }
  bool on_null(error_code&) { return true; }

 private:
  enum class key { other, stream, model, error, max_tokens, temperature };
  void note_temperature(double v) {
    if (depth_ == 1 && current_ == key::temperature && !facts.temperature_repeated) {
      facts.temperature = v;
    }
  }
  void append_key(string_view part) {
    if (key_.size() + part.size() > 24) {  // the longest key looked for is 21 bytes
      key_too_long_ = true;
      key_.clear();
    } else if (!key_too_long_) {
      key_.append(part.data(), part.size());
    }
  }

  int depth_ = 0;
  key current_ = key::other;
  std::string key_;
  bool key_too_long_ = false;
  bool temperature_seen_ = false;
  std::string model_;
};

}  // namespace

json_probe_result probe_json(std::string_view text) {
  json::parse_options options;
  options.max_depth = 64;
  json::basic_parser<facts_handler> parser(options);
  error_code ec;
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  json_probe_result result;
  if (ec) {
    result.error = fmt::format("invalid JSON at byte {}: {}", used, ec.message());
    return result;
  }
  if (used != text.size()) {
    result.error = fmt::format("invalid JSON at byte {}: unexpected text after the document", used);
    return result;
  }
  result.valid = true;
  result.facts = std::move(parser.handler().facts);
  return result;
}

}  // namespace nines::core
