#include "core/access/client_keys.hpp"

#include <cstring>
#include <fmt/format.h>
#include <set>

#include "core/config/toml_reader.hpp"

namespace nines::core {
namespace {

std::uint64_t bucket_of(const secret_digest& d) {
  std::uint64_t b = 0;
  std::memcpy(&b, d.data(), sizeof b);
  return b;
}

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::optional<wall_time> to_wall_time(const toml::date_time& t) {
  if (!t.offset) {
    return std::nullopt;  // a local time names no instant
  }
  const auto days = days_from_civil(t.date.year, t.date.month, t.date.day);
  const auto seconds = days * 86400 + t.time.hour * 3600 + t.time.minute * 60 + t.time.second -
                       static_cast<std::int64_t>(t.offset->minutes) * 60;
  return wall_time(std::chrono::seconds(seconds)) +
         std::chrono::duration_cast<wall_time::duration>(std::chrono::nanoseconds(t.time.nanosecond));
}

struct keys_reader : toml_reader {
  using toml_reader::toml_reader;

  std::optional<wall_time> time(const toml::table& t, const std::string& p, std::string_view key) {
    const toml::node* node = t.get(key);
    if (node == nullptr) {
      return std::nullopt;
    }
    std::optional<toml::date_time> value;
    if (const auto* dt = node->as_date_time()) {
      value = dt->get();
    } else if (const auto* s = node->as_string()) {
      // The same RFC 3339 text as a string: let toml++ read it as a value.
      std::vector<config_problem> ignored;
      const auto parsed = parse_toml("v = " + std::string(s->get()), "", ignored);
      if (parsed) {
        if (const auto* dt = parsed->get("v"); dt != nullptr && dt->as_date_time()) {
          value = dt->as_date_time()->get();
        }
      }
    }
    const auto out = value ? to_wall_time(*value) : std::nullopt;
    if (!out) {
      problem(p + std::string(key), node,
              "must be an RFC 3339 date-time with a zone offset, e.g. 2027-01-31T00:00:00Z");
    }
    return out;
  }

  std::optional<secret_digest> digest(const toml::table& t, const std::string& p,
                                      std::string_view key, bool required) {
    const toml::node* node = t.get(key);
    if (node == nullptr) {
      if (required) {
        problem(p + std::string(key), &t, "is required: \"sha256:<64 hex digits>\" of the secret");
      }
      return std::nullopt;
    }
    const auto s = node->value_exact<std::string>();
    const auto d = s ? parse_secret_digest(*s) : std::nullopt;
    if (!d) {
      problem(p + std::string(key), node,
              "must be \"sha256:<64 hex digits>\", the digest of the secret (never the secret "
              "itself; `nines keys new` prints one)");
    }
    return d;
  }

  void read_key(const toml::table& t, const std::string& p, client_key& k) {
    unknown_keys(t, p,
                 {"id", "hash", "models", "requests_per_minute", "tokens_per_minute",
                  "max_concurrent", "allow_hedge", "allow_journal", "expires", "previous_hash",
                  "previous_expires", "when_limits_store_away"});
    string(t, p, "id", k.id);
    if (t.get("id") == nullptr) {
      problem(p + "id", &t, "is required");
    } else if (k.id.empty() || k.id.size() > 64 ||
               k.id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789._-") != std::string::npos) {
      problem(p + "id", t.get("id"), "must be 1 to 64 of A-Z a-z 0-9 . _ -");
    }
    if (const auto d = digest(t, p, "hash", true)) {
      k.hash = *d;
    }
    k.previous_hash = digest(t, p, "previous_hash", false);
    k.expires = time(t, p, "expires");
    k.previous_expires = time(t, p, "previous_expires");
    if (k.previous_hash.has_value() != (t.get("previous_expires") != nullptr)) {
      problem(p + (k.previous_hash ? "previous_expires" : "previous_hash"), &t,
              "previous_hash and previous_expires go together (the old secret works until then)");
    }
    array(t, p, "models", "must be an array of model name patterns (\"*\" for any)",
          [&](const toml::node& n, const std::string& at) {
            const auto v = n.value_exact<std::string>();
            if (!v || v->empty()) {
              problem(at, &n, "must be a model name or a pattern such as \"qwen*\"");
            } else {
              k.models.push_back(*v);
            }
          });
    integer(t, p, "requests_per_minute", k.requests_per_minute, 0, 100000000);
    integer(t, p, "tokens_per_minute", k.tokens_per_minute, 0, 1LL << 40);
    integer(t, p, "max_concurrent", k.max_concurrent, 0, 1000000);
    boolean(t, p, "allow_hedge", k.allow_hedge);
    boolean(t, p, "allow_journal", k.allow_journal);
    if (const toml::node* node = t.get("when_limits_store_away")) {
      const auto v = node->value_exact<std::string>();
      if (v == "open") {
        k.when_store_away = limits_store_away::open;
      } else if (v == "closed") {
        k.when_store_away = limits_store_away::closed;
      } else if (v == "local-share") {
        k.when_store_away = limits_store_away::local_share;
      } else {
        problem(p + "when_limits_store_away", node,
                "must be \"open\", \"closed\" or \"local-share\"");
      }
    }
  }
};

}  // namespace

client_keys::client_keys(std::vector<client_key> keys) : keys_(std::move(keys)) {
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    by_digest_.emplace(bucket_of(keys_[i].hash), i);
    if (keys_[i].previous_hash) {
      by_digest_.emplace(bucket_of(*keys_[i].previous_hash), i);
    }
  }
}

client_keys::match client_keys::find(std::string_view authorization, wall_time now) const {
  match m;
  if (authorization.empty()) {
    return m;
  }
  const auto secret = bearer_secret(authorization);
  if (!secret) {
    m.result = verdict::malformed;
    return m;
  }
  // The lookup depends only on the digest of what was sent, which says nothing of any secret;
  // the comparison itself takes constant time.
  const auto d = sha256_of(*secret);
  const auto [begin, end] = by_digest_.equal_range(bucket_of(d));
  m.result = verdict::unknown;
  for (auto it = begin; it != end; ++it) {
    const auto& k = keys_[it->second];
    if (same_digest(k.hash, d)) {
      m.key = &k;
      m.result = k.expires && now >= *k.expires ? verdict::expired : verdict::ok;
      return m;
    }
    if (k.previous_hash && same_digest(*k.previous_hash, d)) {
      m.key = &k;
      m.by_previous = true;
      m.result = (k.previous_expires && now >= *k.previous_expires) ||
                         (k.expires && now >= *k.expires)
                     ? verdict::expired
                     : verdict::ok;
      return m;
    }
  }
  return m;
}

bool glob_matches(std::string_view pattern, std::string_view text) {
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

bool model_allowed(const client_key& key, std::string_view model) {
  for (const auto& pattern : key.models) {
    if (glob_matches(pattern, model)) {
      return true;
    }
  }
  return false;
}

client_keys_result parse_client_keys(std::string_view toml_text, std::string_view source) {
  client_keys_result result;
  auto parsed = parse_toml(toml_text, source, result.problems);
  if (!parsed) {
    return result;
  }
  keys_reader r(result.problems);
  r.unknown_keys(*parsed, "", {"keys"});
  std::vector<client_key> keys;
  if (const toml::node* node = parsed->get("keys")) {
    const toml::array* arr = node->as_array();
    if (arr == nullptr) {
      r.problem("keys", node, "must be an array of tables ([[keys]])");
    } else {
      std::set<std::string> ids;
      std::set<std::string> digests;
      for (std::size_t i = 0; i < arr->size(); ++i) {
        const std::string p = fmt::format("keys[{}].", i);
        const toml::table* t = (*arr)[i].as_table();
        if (t == nullptr) {
          r.problem(fmt::format("keys[{}]", i), &(*arr)[i], "must be a table");
          continue;
        }
        client_key k;
        r.read_key(*t, p, k);
        if (!k.id.empty() && !ids.insert(k.id).second) {
          r.problem(p + "id", t->get("id"), fmt::format("duplicate key id \"{}\"", k.id));
        }
        if (k.hash != secret_digest{} && !digests.insert(format_secret_digest(k.hash)).second) {
          r.problem(p + "hash", t->get("hash"), "the same secret as another key");
        }
        keys.push_back(std::move(k));
      }
    }
  }
  if (result.problems.empty()) {
    result.value = client_keys(std::move(keys));
  }
  return result;
}

std::string client_key_entry(const std::string& id, const secret_digest& hash,
                             const std::vector<std::string>& models) {
  std::string list;
  for (const auto& m : models) {
    list += fmt::format("{}\"{}\"", list.empty() ? "" : ", ", m);
  }
  return fmt::format(
      "[[keys]]\nid = \"{}\"\nhash = \"{}\"\nmodels = [{}]\n# requests_per_minute = 600\n"
      "# tokens_per_minute = 2000000\n# max_concurrent = 16\n# expires = 2027-12-31T00:00:00Z\n",
      id, format_secret_digest(hash), list);
}

}  // namespace nines::core
