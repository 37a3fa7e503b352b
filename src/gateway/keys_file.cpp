#include "gateway/keys_file.hpp"

#include <fstream>
#include <sstream>

namespace nines::gateway {

core::client_keys_result read_keys_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    core::client_keys_result r;
    r.problems.push_back({"auth.keys_file", 0, 0, "cannot read the keys file " + path});
    return r;
  }
  std::stringstream text;
  text << in.rdbuf();
  return core::parse_client_keys(text.str(), path);
}

}  // namespace nines::gateway
