#pragma once
// `nines gateway` and `nines edge`: the two roles that run the request path (src/gateway). They
// take the same flags and the same file, named for the role ([gateway]/[[upstreams]],
// [edge]/[[uplinks]]); this reads them, checks every referenced file, and hands over.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "core/config/config.hpp"

namespace nines::app {

inline constexpr int exit_bad_config = 2;

// Prints every problem with its place, as `source:line:column: key: what is wrong`; returns 2.
int print_problems(std::string_view source, const std::vector<core::config_problem>& problems);

// The whole file at `path`; false (and said on stderr) when it cannot be read.
bool read_config_file(const std::string& path, std::string& text);

struct proxy_options {
  core::config_role role = core::config_role::gateway;
  std::string config_path;
  std::vector<std::string> link_urls;  // --upstream / --uplink
  std::string listen;                  // "" : the role's default
  unsigned workers = 0;
  std::string access_log;
  std::string log_format;
  std::string journal_mode;
  core::gateway_flags flags;
  bool check_only = false;
};

// Adds the role's subcommand and its flags to `app`.
CLI::App* add_proxy_command(CLI::App& app, proxy_options& options);

// Reads and checks the configuration, then runs the role until it is stopped. Exit code 2 (every
// problem printed with its place) for a configuration that cannot be used.
int run_proxy_command(proxy_options& options);

}  // namespace nines::app
