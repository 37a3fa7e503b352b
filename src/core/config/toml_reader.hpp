#pragma once
// Reading TOML files written by people (the gateway's config, the reliability scenarios): every
// problem is collected with its key path and its place in the file, none stops the reading, so
// that one run lists them all as `file:line:column: key: what is wrong`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <toml++/toml.h>
#include <vector>

#include "core/config/config_problem.hpp"

namespace nines::core {

// Parses `text`; a syntax error is recorded in `problems` and yields nullopt.
std::optional<toml::table> parse_toml(std::string_view text, std::string_view source,
                                      std::vector<config_problem>& problems);

// Typed reads of one table's keys into existing values (which keep their defaults when the key is
// absent); a wrong type or range is recorded and leaves the value unchanged. `prefix` is the key
// path of the table, with its trailing dot ("retry.").
class toml_reader {
 public:
  explicit toml_reader(std::vector<config_problem>& problems) : problems_(problems) {}

  void problem(const std::string& key, const toml::node* node, std::string message);

  // Reports keys of `table` not in `known`.
  void unknown_keys(const toml::table& table, const std::string& prefix,
                    std::initializer_list<std::string_view> known);

  template <class Int>
  void integer(const toml::table& table, const std::string& prefix, std::string_view key,
               Int& out, std::int64_t min, std::int64_t max) {
    std::int64_t v = static_cast<std::int64_t>(out);
    if (read_integer(table, prefix, key, v, min, max)) {
      out = static_cast<Int>(v);
    }
  }

  void number(const toml::table& table, const std::string& prefix, std::string_view key,
              double& out, double min, double max);
  void duration(const toml::table& table, const std::string& prefix, std::string_view key,
                std::chrono::milliseconds& out, std::int64_t min_ms = 1);
  void string(const toml::table& table, const std::string& prefix, std::string_view key,
              std::string& out);
  void boolean(const toml::table& table, const std::string& prefix, std::string_view key,
               bool& out);
  // An array: calls `item(element, path)` for each element, `path` naming it for problems
  // ("retry.retry_on_status[2]"). Records `not_array` when the key holds something else. False
  // when the key is absent or not an array.
  bool array(const toml::table& table, const std::string& prefix, std::string_view key,
             std::string_view not_array,
             const std::function<void(const toml::node&, const std::string&)>& item);
  // A sub-table; nullptr when absent or (recorded) not a table.
  const toml::table* section(const toml::table& root, std::string_view key,
                             const std::string& prefix = {});

 private:
  bool read_integer(const toml::table& table, const std::string& prefix, std::string_view key,
                    std::int64_t& out, std::int64_t min, std::int64_t max);
  std::vector<config_problem>& problems_;
};

}  // namespace nines::core
