#include "app/proxy_command.hpp"

#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <sstream>

#include "devices/device_sidecar.hpp"
#include "gateway/gateway.hpp"
#include "gateway/keys_file.hpp"
#include "gateway/upstream_credentials.hpp"
#include "net/tls_server_identity.hpp"
#include "net/upstream_pool.hpp"

namespace nines::app {

int print_problems(std::string_view source, const std::vector<core::config_problem>& problems) {
  std::cerr << "nines: invalid configuration (" << problems.size() << " problem"
            << (problems.size() == 1 ? "" : "s") << "):\n";
  for (const auto& p : problems) {
    std::cerr << "  " << core::format_problem(source, p) << "\n";
  }
  return exit_bad_config;
}

bool read_config_file(const std::string& path, std::string& text) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "nines: cannot read config file " << path << "\n";
    return false;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  text = buffer.str();
  return true;
}

CLI::App* add_proxy_command(CLI::App& app, proxy_options& o) {
  const bool edge = o.role == core::config_role::edge;
  o.flags.role = o.role;
  auto* cmd = edge ? app.add_subcommand("edge",
                                        "the agent host's side: an OpenAI-compatible listener in "
                                        "front of several uplinks (gateways or paths to one)")
                   : app.add_subcommand("gateway", "OpenAI-compatible failover proxy");
  const auto names = core::names_of(o.role);
  cmd->add_option("--config", o.config_path, "TOML config file (docs/config.md)");
  cmd->add_option(edge ? "--uplink" : "--upstream", o.link_urls,
                  fmt::format("{} base URL (repeatable), without --config", names.link));
  cmd->add_option("--listen", o.listen,
                  fmt::format("host:port to listen on (default {}), without --config",
                              edge ? "127.0.0.1:8081" : "127.0.0.1:8080"));
  cmd->add_option("--workers", o.workers,
                  "worker threads (0: one per usable CPU); overrides the config");
  cmd->add_option("--access-log", o.access_log, "stdout, off, or a file; overrides the config");
  cmd->add_option("--log-format", o.log_format, "text or json: the operational log on stderr")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->add_option("--journal", o.journal_mode,
                  "off, keyed or all: which requests are journaled; overrides the config")
      ->check(CLI::IsMember({"off", "keyed", "all"}));
  cmd->add_option("--keys", o.flags.keys_file,
                  "client keys file (TOML [[keys]]), without --config");
  cmd->add_option("--auth", o.flags.auth_mode, "keys or open, without --config")
      ->check(CLI::IsMember({"keys", "open"}));
  cmd->add_option("--admin-listen", o.flags.admin_listen,
                  "host:port of the admin listener (/metrics, /status, /dashboard), without "
                  "--config");
  cmd->add_option("--tls-cert", o.flags.tls_cert,
                  "PEM certificate chain: the API listener speaks TLS (with --tls-key)");
  cmd->add_option("--tls-key", o.flags.tls_key, "PEM private key of --tls-cert");
  cmd->add_flag("--check", o.check_only, "validate the configuration and exit");
  return cmd;
}

int run_proxy_command(proxy_options& o) {
  const auto names = core::names_of(o.role);
  auto& flags = o.flags;
  core::config_result result;
  std::string source = "command line";
  if (!o.config_path.empty()) {
    std::string text;
    if (!read_config_file(o.config_path, text)) {
      return exit_bad_config;
    }
    source = o.config_path;
    result = core::parse_config(text, o.config_path, o.role);
    if (!o.link_urls.empty()) {
      result.problems.push_back(
          {fmt::format("--{}", names.link), 0, 0, "cannot be combined with --config"});
      result.value.reset();
    }
  } else {
    flags.listen = o.listen;
    flags.upstreams = o.link_urls;
    result = core::config_from_flags(flags);
  }
  if (!result.problems.empty()) {
    return print_problems(source, result.problems);
  }
  auto cfg = *result.value;
  if (!o.config_path.empty() && (!flags.tls_cert.empty() || !flags.tls_key.empty())) {
    // The flags name the listener's certificate over the config's.
    if (flags.tls_cert.empty() || flags.tls_key.empty()) {
      return print_problems("command line",
                            {{flags.tls_cert.empty() ? "--tls-cert" : "--tls-key", 0, 0,
                              "is required with " + std::string(flags.tls_cert.empty()
                                                                    ? "--tls-key"
                                                                    : "--tls-cert")}});
    }
    cfg.tls.cert_file = flags.tls_cert;
    cfg.tls.key_file = flags.tls_key;
  }
  if (o.workers > 0) {
    cfg.gateway.workers = o.workers;
  }
  if (!o.access_log.empty()) {
    cfg.gateway.access_log = o.access_log;
  }
  if (!o.log_format.empty()) {
    cfg.gateway.log_format = o.log_format;
  }
  if (!o.journal_mode.empty()) {
    cfg.journal.mode = o.journal_mode == "keyed" ? core::journal_mode::keyed
                       : o.journal_mode == "all" ? core::journal_mode::all
                                                 : core::journal_mode::off;
  }
  // Every referenced file must exist and parse: CA files as PEM certificates...
  std::vector<core::config_problem> file_problems;
  for (std::size_t i = 0; i < cfg.upstreams.size(); ++i) {
    const auto& u = cfg.upstreams[i];
    if (u.tls && !u.ca_file.empty()) {
      try {
        net::make_client_tls_context(u.tls_verify, u.ca_file);
      } catch (const std::exception& e) {
        file_problems.push_back({fmt::format("{}[{}].ca_file", names.links, i), 0, 0,
                                 "cannot be read as PEM certificates: " + u.ca_file + " (" +
                                     e.what() + ")"});
      }
    }
  }
  // ... key files and OAuth client secrets as one visible-ASCII secret each ...
  for (std::size_t i = 0; i < cfg.upstreams.size(); ++i) {
    const auto& u = cfg.upstreams[i];
    const std::string at = fmt::format("{}[{}].", names.links, i);
    for (const auto& [key, path] : {std::pair{"api_key_file", u.api_key_file},
                                    std::pair{"client_secret_file", u.oauth.client_secret_file}}) {
      std::string why;
      if (!path.empty() && gateway::read_key_file(path, why).empty()) {
        file_problems.push_back({at + key, 0, 0, path + " " + why});
      }
    }
  }
  // ... the listener's certificates, keys and client CA ...
  if (cfg.tls.enabled()) {
    auto tls = net::tls_server_identity::load(cfg.tls);
    file_problems.insert(file_problems.end(), tls.problems.begin(), tls.problems.end());
  }
  // ... and where an edge's device keeper finds the adb server (the environment's say too).
  if (cfg.devices) {
    std::string problem;
    if (!devices::resolve_adb_server(cfg.devices->adb_server, problem)) {
      file_problems.push_back({"devices.adb_server", 0, 0, problem});
    }
  }
  if (!file_problems.empty()) {
    return print_problems(source, file_problems);
  }
  if (core::effective_auth_mode(cfg.auth) == core::auth_mode::keys) {
    // ... and the keys file as keys, named with its own places.
    const auto keys_read = gateway::read_keys_file(cfg.auth.keys_file);
    if (!keys_read.problems.empty()) {
      return print_problems(cfg.auth.keys_file, keys_read.problems);
    }
  }
  if (o.check_only) {
    std::cout << source << ": configuration is valid (" << cfg.upstreams.size() << " "
              << names.links << ")\n";
    return 0;
  }
  return gateway::run_gateway(cfg, o.config_path);
}

}  // namespace nines::app
