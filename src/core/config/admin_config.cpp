#include "core/config/admin_config.hpp"

#include <fmt/format.h>

#include "core/access/secret_digest.hpp"

namespace nines::core {

void read_listen(toml_reader& r, const toml::table& t, const std::string& p, listen_address& out) {
  if (const toml::node* node = t.get("listen")) {
    auto v = node->value_exact<std::string>();
    auto addr = v ? parse_listen_address(*v) : std::nullopt;
    if (!addr) {
      r.problem(p + "listen", node, "must be \"host:port\", e.g. \"127.0.0.1:9901\"");
    } else {
      out = *addr;
    }
  }
}

void read_admin(toml_reader& r, const toml::table& t, admin_settings& a) {
  const std::string p = "admin.";
  r.unknown_keys(t, p, {"listen", "key_hash"});
  read_listen(r, t, p, a.listen);
  r.string(t, p, "key_hash", a.key_hash);
  if (!a.key_hash.empty() && !parse_secret_digest(a.key_hash)) {
    r.problem(p + "key_hash", t.get("key_hash"),
              "must be \"sha256:<64 hex digits>\", the digest of the admin secret (`nines keys "
              "new --id admin` prints one)");
  }
}

void validate_admin(const admin_settings& a, std::vector<config_problem>& problems) {
  if (!is_loopback(a.listen) && a.key_hash.empty()) {
    problems.push_back({"admin.key_hash", 0, 0,
                        fmt::format("is required: the admin listener listens beyond loopback ({})",
                                    a.listen.host)});
  }
}

}  // namespace nines::core
