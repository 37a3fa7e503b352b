#pragma once
// For the config tests: whether a parse listed a problem at `key` whose message holds `part`.

#include <string>

#include "core/config/config.hpp"

namespace nines::core {

inline bool has_problem(const config_result& r, const std::string& key,
                        const std::string& part = {}) {
  for (const auto& p : r.problems) {
    if (p.key == key && p.message.find(part) != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace nines::core
