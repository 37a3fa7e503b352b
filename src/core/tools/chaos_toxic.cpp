#include "core/tools/chaos_toxic.hpp"

#include "core/config/key_values.hpp"

#include <algorithm>
#include <limits>
#include <boost/json.hpp>
#include <fmt/format.h>

namespace nines::core {
namespace {

namespace json = boost::json;
using std::chrono::nanoseconds;

struct attribute {
  std::string_view key;
  std::int64_t toxic::*field;
  std::int64_t max;  // an hour of time, a GiB of size: far beyond any test, far from overflow
};

constexpr std::int64_t hour_ms = 3'600'000;
constexpr std::int64_t hour_us = hour_ms * 1000;
constexpr std::int64_t gib = std::int64_t{1} << 30;
constexpr std::int64_t unbounded = std::numeric_limits<std::int64_t>::max();

// The attributes of each type, under their Toxiproxy names.
std::span<const attribute> attributes_of(toxic_type type) {
  static constexpr attribute latency[] = {{"latency", &toxic::latency, hour_ms},
                                          {"jitter", &toxic::jitter, hour_ms}};
  static constexpr attribute bandwidth[] = {{"rate", &toxic::rate, unbounded}};
  static constexpr attribute slow_close[] = {{"delay", &toxic::delay, hour_ms}};
  static constexpr attribute timeout[] = {{"timeout", &toxic::timeout, hour_ms}};
  static constexpr attribute slicer[] = {{"average_size", &toxic::average_size, gib},
                                         {"size_variation", &toxic::size_variation, gib},
                                         {"delay", &toxic::slice_delay, hour_us}};
  static constexpr attribute limit_data[] = {{"bytes", &toxic::bytes, unbounded}};
  switch (type) {
    case toxic_type::latency: return latency;
    case toxic_type::bandwidth: return bandwidth;
    case toxic_type::slow_close: return slow_close;
    case toxic_type::timeout:
    case toxic_type::reset_peer: return timeout;
    case toxic_type::slicer: return slicer;
    case toxic_type::limit_data: return limit_data;
  }
  return {};
}

std::optional<toxic_type> type_from(std::string_view s) {
  static constexpr std::pair<std::string_view, toxic_type> names[] = {
      {"latency", toxic_type::latency},       {"bandwidth", toxic_type::bandwidth},
      {"slow_close", toxic_type::slow_close}, {"timeout", toxic_type::timeout},
      {"reset_peer", toxic_type::reset_peer}, {"slicer", toxic_type::slicer},
      {"limit_data", toxic_type::limit_data}};
  for (const auto& [name, type] : names) {
    if (s == name) {
      return type;
    }
  }
  return std::nullopt;
}

std::optional<toxic_stream> stream_from(std::string_view s) {
  if (s == "upstream") {
    return toxic_stream::upstream;
  }
  if (s == "downstream") {
    return toxic_stream::downstream;
  }
  return std::nullopt;
}

// Relations between attributes, once the toxic is complete.
std::string check(const toxic& t) {
  if (t.name.empty() || t.name.size() > 64 ||
      !std::all_of(t.name.begin(), t.name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      })) {
    return "name must be 1 to 64 letters, digits, '_', '-' or '.'";
  }
  if (!(t.toxicity >= 0 && t.toxicity <= 1)) {
    return "toxicity must be between 0 and 1";
  }
  for (const auto& a : attributes_of(t.type)) {
    if (t.*a.field < 0) {
      return fmt::format("{} must not be negative", a.key);
    }
    if (t.*a.field > a.max) {
      return fmt::format("{} must be at most {}", a.key, a.max);
    }
  }
  if (t.type == toxic_type::bandwidth && t.rate <= 0) {
    return "rate must be positive (KB/s)";
  }
  if (t.type == toxic_type::slicer &&
      (t.average_size <= 0 || t.size_variation >= t.average_size)) {
    return "slicer needs average_size > 0 and size_variation < average_size";
  }
  if (t.type == toxic_type::latency && t.jitter > t.latency) {
    return "jitter must not exceed latency";
  }
  return {};
}

std::string default_name(const toxic& t) {
  return fmt::format("{}_{}", to_string(t.type), to_string(t.stream));
}

nanoseconds ms(std::int64_t n) { return std::chrono::milliseconds(n); }

}  // namespace

std::string_view to_string(toxic_type type) {
  switch (type) {
    case toxic_type::latency: return "latency";
    case toxic_type::bandwidth: return "bandwidth";
    case toxic_type::slow_close: return "slow_close";
    case toxic_type::timeout: return "timeout";
    case toxic_type::reset_peer: return "reset_peer";
    case toxic_type::slicer: return "slicer";
    case toxic_type::limit_data: return "limit_data";
  }
  return "unknown";
}

std::string_view to_string(toxic_stream stream) {
  return stream == toxic_stream::upstream ? "upstream" : "downstream";
}

std::string toxic_from_json(const json::value& value, toxic& out, const toxic* fallback) {
  const auto* o = value.if_object();
  if (o == nullptr) {
    return "a toxic must be a JSON object";
  }
  toxic t = fallback ? *fallback : toxic{};
  bool named = fallback != nullptr;
  for (const auto& [key, v] : *o) {
    if (key == "name") {
      if (!v.is_string()) {
        return "name must be a string";
      }
      t.name = std::string(v.get_string());
      named = true;
    } else if (key == "type") {
      const auto type = v.is_string() ? type_from(v.get_string()) : std::nullopt;
      if (!type) {
        return "type must be one of latency, bandwidth, slow_close, timeout, reset_peer, slicer, "
               "limit_data";
      }
      if (fallback && *type != fallback->type) {
        return "the type of a toxic cannot change";
      }
      t.type = *type;
    } else if (key == "stream") {
      const auto stream = v.is_string() ? stream_from(v.get_string()) : std::nullopt;
      if (!stream) {
        return "stream must be \"upstream\" or \"downstream\"";
      }
      t.stream = *stream;
    } else if (key == "toxicity") {
      json::error_code ec;
      const double d = v.to_number<double>(ec);
      if (ec) {
        return "toxicity must be a number";
      }
      t.toxicity = d;
    } else if (key != "attributes") {
      return fmt::format("unknown field \"{}\"", std::string_view(key));
    }
  }
  if (!fallback && !o->contains("type")) {
    return "type is required";
  }
  if (const auto* attrs = o->if_contains("attributes")) {
    const auto* ao = attrs->if_object();
    if (ao == nullptr) {
      return "attributes must be an object";
    }
    const auto known = attributes_of(t.type);
    for (const auto& [key, v] : *ao) {
      const std::string_view name = key;  // (clang 14 cannot capture a structured binding)
      const auto it = std::find_if(known.begin(), known.end(),
                                   [&](const attribute& a) { return a.key == name; });
      if (it == known.end()) {
        return fmt::format("{} has no attribute \"{}\"", to_string(t.type), std::string_view(key));
      }
      json::error_code ec;
      const auto n = v.to_number<std::int64_t>(ec);
      if (ec) {
        return fmt::format("{} must be an integer", std::string_view(key));
      }
      t.*it->field = n;
    }
  }
  if (!named) {
    t.name = default_name(t);
  }
  if (auto why = check(t); !why.empty()) {
    return why;
  }
  out = std::move(t);
  return {};
}

json::object toxic_to_json(const toxic& t) {
  json::object attrs;
  for (const auto& a : attributes_of(t.type)) {
    attrs[a.key] = t.*a.field;
  }
  return json::object{{"name", t.name},
                      {"type", to_string(t.type)},
                      {"stream", to_string(t.stream)},
                      {"toxicity", t.toxicity},
                      {"attributes", std::move(attrs)}};
}

std::string toxic_json_from_text(std::string_view text, json::object& o,
                                 std::span<const std::string_view> extra_keys,
                                 std::vector<std::pair<std::string, std::string>>* extras) {
  o.clear();
  json::object attrs;
  std::vector<key_value> items;
  if (auto why = split_key_values(text, items); !why.empty()) {
    return why;
  }
  for (const auto& [key, value] : items) {
    if (std::find(extra_keys.begin(), extra_keys.end(), key) != extra_keys.end()) {
      if (extras) {
        extras->emplace_back(key, value);
      }
    } else if (key == "name" || key == "type" || key == "stream") {
      o[key] = value;
    } else if (key == "toxicity") {
      const auto d = parse_double(value);
      if (!d) {
        return "toxicity must be a number";
      }
      o[key] = *d;
    } else {
      const auto n = parse_int(value);
      if (!n) {
        return fmt::format("{} must be an integer", key);
      }
      attrs[key] = *n;
    }
  }
  if (!attrs.empty()) {
    o["attributes"] = std::move(attrs);
  }
  return {};
}

std::string toxic_from_text(std::string_view text, toxic& out,
                            std::span<const std::string_view> extra_keys,
                            std::vector<std::pair<std::string, std::string>>* extras) {
  json::object o;
  if (auto why = toxic_json_from_text(text, o, extra_keys, extras); !why.empty()) {
    return why;
  }
  return toxic_from_json(o, out);
}

bool toxic_applies(const toxic& t, rng& random) {
  return t.toxicity >= 1.0 || (t.toxicity > 0 && random.uniform01() < t.toxicity);
}

chunk_plan plan_chunk(std::span<const toxic* const> active, std::size_t size,
                      direction_progress& progress, rng& random) {
  chunk_plan plan;
  std::size_t allowed = size;
  for (const toxic* t : active) {
    if (t->type == toxic_type::timeout) {
      plan.drop = true;
      return plan;
    }
    if (t->type == toxic_type::limit_data) {
      const auto limit = static_cast<std::uint64_t>(t->bytes);
      const std::uint64_t left = limit > progress.forwarded ? limit - progress.forwarded : 0;
      if (left <= allowed) {
        allowed = static_cast<std::size_t>(left);
        plan.close_after = true;
      }
    }
  }
  // Slices: one piece, unless a slicer cuts the chunk.
  std::vector<chunk_piece> pieces;
  const toxic* slicer = nullptr;
  for (const toxic* t : active) {
    if (t->type == toxic_type::slicer) {
      slicer = t;
    }
  }
  if (slicer == nullptr) {
    if (allowed > 0) {
      pieces.push_back({0, allowed, nanoseconds(0)});
    }
  } else {
    const auto variation = static_cast<std::uint64_t>(slicer->size_variation);
    for (std::size_t at = 0; at < allowed;) {
      // average ± variation, uniform; never zero.
      const auto spread = random.below(2 * variation + 1);
      const auto length = static_cast<std::size_t>(
          std::max<std::int64_t>(1, slicer->average_size - static_cast<std::int64_t>(variation) +
                                        static_cast<std::int64_t>(spread)));
      const auto take = std::min(length, allowed - at);
      pieces.push_back({at, take, at == 0 ? nanoseconds(0)
                                          : std::chrono::microseconds(slicer->slice_delay)});
      at += take;
    }
  }
  for (const toxic* t : active) {
    if (t->type == toxic_type::latency) {
      const auto jitter = t->jitter > 0
                              ? static_cast<std::int64_t>(random.below(2 * t->jitter + 1)) - t->jitter
                              : 0;
      plan.latency += ms(std::max<std::int64_t>(0, t->latency + jitter));
    } else if (t->type == toxic_type::bandwidth) {
      // Each piece waits for its own bytes to pass at the rate: bytes / (rate × 1000 B/s).
      for (auto& p : pieces) {
        p.pause += nanoseconds(static_cast<std::int64_t>(p.length) * 1'000'000 / t->rate);
      }
    }
  }
  progress.forwarded += allowed;
  plan.pieces = std::move(pieces);
  return plan;
}

}  // namespace nines::core
