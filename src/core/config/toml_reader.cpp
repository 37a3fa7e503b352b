#include "core/config/toml_reader.hpp"

#include <fmt/format.h>

namespace nines::core {

std::string format_problem(std::string_view source, const config_problem& p) {
  std::string where(source);
  if (p.line > 0) {
    where += fmt::format(":{}:{}", p.line, p.column);
  }
  if (p.key.empty()) {
    return fmt::format("{}: {}", where, p.message);
  }
  return fmt::format("{}: {}: {}", where, p.key, p.message);
}

std::optional<toml::table> parse_toml(std::string_view text, std::string_view source,
                                      std::vector<config_problem>& problems) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    problems.push_back({"", static_cast<int>(e.source().begin.line),
                        static_cast<int>(e.source().begin.column),
                        std::string("TOML syntax: ") + std::string(e.description())});
    return std::nullopt;
  }
}

void toml_reader::problem(const std::string& key, const toml::node* node, std::string message) {
  int line = 0;
  int column = 0;
  if (node != nullptr) {
    line = static_cast<int>(node->source().begin.line);
    column = static_cast<int>(node->source().begin.column);
  }
  problems_.push_back({key, line, column, std::move(message)});
}

void toml_reader::unknown_keys(const toml::table& table, const std::string& prefix,
                               std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : table) {
    bool found = false;
    for (auto name : known) {
      found = found || k.str() == name;
    }
    if (!found) {
      problem(prefix + std::string(k.str()), &v, "unknown key");
    }
  }
}

bool toml_reader::read_integer(const toml::table& table, const std::string& prefix,
                               std::string_view key, std::int64_t& out, std::int64_t min,
                               std::int64_t max) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return false;
  }
  const std::string path = prefix + std::string(key);
  auto v = node->value_exact<std::int64_t>();
  if (!v) {
    problem(path, node, "must be an integer");
    return false;
  }
  if (*v < min || *v > max) {
    problem(path, node, fmt::format("must be between {} and {}, got {}", min, max, *v));
    return false;
  }
  out = *v;
  return true;
}

void toml_reader::number(const toml::table& table, const std::string& prefix, std::string_view key,
                         double& out, double min, double max) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return;
  }
  const std::string path = prefix + std::string(key);
  std::optional<double> v;
  if (auto i = node->value_exact<std::int64_t>()) {
    v = static_cast<double>(*i);
  } else if (auto d = node->value_exact<double>()) {
    v = *d;
  }
  if (!v) {
    problem(path, node, "must be a number");
    return;
  }
  if (!(*v >= min && *v <= max)) {
    problem(path, node, fmt::format("must be between {} and {}, got {}", min, max, *v));
    return;
  }
  out = *v;
}

void toml_reader::duration(const toml::table& table, const std::string& prefix,
                           std::string_view key, std::chrono::milliseconds& out,
                           std::int64_t min_ms) {
  std::int64_t ms = out.count();
  if (read_integer(table, prefix, key, ms, min_ms, 7LL * 24 * 3600 * 1000)) {
    out = std::chrono::milliseconds(ms);
  }
}

void toml_reader::string(const toml::table& table, const std::string& prefix, std::string_view key,
                         std::string& out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return;
  }
  auto v = node->value_exact<std::string>();
  if (!v) {
    problem(prefix + std::string(key), node, "must be a string");
    return;
  }
  out = *v;
}

void toml_reader::boolean(const toml::table& table, const std::string& prefix, std::string_view key,
                          bool& out) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return;
  }
  auto v = node->value_exact<bool>();
  if (!v) {
    problem(prefix + std::string(key), node, "must be true or false");
    return;
  }
  out = *v;
}

bool toml_reader::array(const toml::table& table, const std::string& prefix, std::string_view key,
                        std::string_view not_array,
                        const std::function<void(const toml::node&, const std::string&)>& item) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    return false;
  }
  const toml::array* arr = node->as_array();
  if (arr == nullptr) {
    problem(prefix + std::string(key), node, std::string(not_array));
    return false;
  }
  for (std::size_t i = 0; i < arr->size(); ++i) {
    item((*arr)[i], fmt::format("{}{}[{}]", prefix, key, i));
  }
  return true;
}

const toml::table* toml_reader::section(const toml::table& root, std::string_view key,
                                        const std::string& prefix) {
  const toml::node* node = root.get(key);
  if (node == nullptr) {
    return nullptr;
  }
  if (!node->is_table()) {
    problem(prefix + std::string(key), node, "must be a table ([" + prefix + std::string(key) + "])");
    return nullptr;
  }
  return node->as_table();
}

}  // namespace nines::core
