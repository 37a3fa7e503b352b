#pragma once
// One problem found in a file written by people (a config, a scenario), with its key path and
// place, printed as `file:line:column: key: what is wrong`.

#include <string>
#include <string_view>

namespace nines::core {

struct config_problem {
  std::string key;  // e.g. "upstreams[1].url"
  int line = 0;     // 1-based; 0 when the problem has no place in a file
  int column = 0;
  std::string message;
};

std::string format_problem(std::string_view source, const config_problem& problem);

}  // namespace nines::core
