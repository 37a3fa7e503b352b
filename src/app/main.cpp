// nines: one binary, several roles. This is the only file that knows every module: it parses the
// command line, reads the config, and hands over to the role.

#include <CLI/CLI.hpp>
#include <iostream>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "app/devices_command.hpp"
#include "app/proxy_command.hpp"
#include "core/config/config.hpp"
#include "core/access/client_keys.hpp"
#include "tools/agent_sim.hpp"
#include "tools/bench.hpp"
#include "tools/chaos.hpp"
#include "tools/fake_adb_cli.hpp"
#include "tools/mock_llm.hpp"
#include "tools/probe_cli.hpp"
#include "tools/status_cli.hpp"
#include "tools/tls_check.hpp"
#include "tools/scenario_runner.hpp"

namespace {

using nines::app::exit_bad_config;

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_logger_mt("nines"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");

  CLI::App app{"nines: a high-availability connection layer for LLM agent fleets"};
  app.require_subcommand(1);

  nines::app::proxy_options gateway_opts;
  auto* gateway = nines::app::add_proxy_command(app, gateway_opts);
  nines::app::proxy_options edge_opts;
  edge_opts.role = nines::core::config_role::edge;
  auto* edge = nines::app::add_proxy_command(app, edge_opts);

  nines::app::devices_options devices_opts;
  auto* devices = nines::app::add_devices_command(app, devices_opts);

  auto* keys = app.add_subcommand("keys", "client keys for the gateway's keys file");
  auto* keys_new = keys->add_subcommand("new", "print a new secret, once, and its [[keys]] entry");
  keys->require_subcommand(1);
  std::string new_key_id;
  std::vector<std::string> new_key_models;
  keys_new->add_option("--id", new_key_id, "the key's id (shown in logs and metrics)")->required();
  keys_new->add_option("--models", new_key_models, "model name patterns it may use (default: *)");

  auto* mock = app.add_subcommand("mock-llm", "OpenAI-compatible mock model server with faults");
  nines::tools::mock_options mock_opts;
  std::string mock_faults;
  mock->add_option("--listen", mock_opts.listen, "host:port (port 0: any free port)");
  mock->add_option("--workers", mock_opts.workers, "worker threads");
  mock->add_option("--tokens", mock_opts.answer_tokens, "tokens in every full answer");
  mock->add_option("--model", mock_opts.model, "model name reported");
  mock->add_option("--thought-tokens", mock_opts.thought_tokens,
                   "a reasoning model: this many thought tokens before every answer");
  mock->add_option("--reasoning-field", mock_opts.reasoning_field,
                   "the delta field of the thought: reasoning_content, reasoning or both")
      ->check(CLI::IsMember({"reasoning_content", "reasoning", "both"}));
  mock->add_option("--seed", mock_opts.seed, "seed for injected fault rates");
  mock->add_option("--faults", mock_faults,
                   "faults, e.g. error_rate=0.5,die_after=3,ttft_ms=100,tpot_ms=50");
  mock->add_flag("--refuse", mock_opts.refuse, "hold the port and refuse every connection");
  mock->add_flag("--stamp", mock_opts.stamp, "stamp chunks with their send time (benchmarks)");
  mock->add_option("--accept-keys", mock_opts.accept_keys,
                   "API keys accepted on /v1/* (comma-separated; others get a 401)")
      ->delimiter(',');
  mock->add_option("--token-ttl-s", mock_opts.token_ttl_s,
                   "serve POST /oauth/token (client credentials) issuing tokens valid this long; "
                   "/v1/* then needs one (or an --accept-keys key)");
  mock->add_option("--oauth-client", mock_opts.oauth_client,
                   "ID:SECRET the token endpoint accepts (HTTP Basic)");

  auto* fake_adb = app.add_subcommand(
      "fake-adb", "a stand-in adb server with synthetic phones (device keeper benchmarks)");
  nines::tools::fake_adb_options fake_adb_opts;
  fake_adb->add_option("--port", fake_adb_opts.port, "port on 127.0.0.1 (0: any free port)");
  fake_adb->add_option("--devices", fake_adb_opts.devices, "synthetic phones, all answering")
      ->check(CLI::Range(0u, nines::tools::fake_adb_max_devices));
  fake_adb->add_option("--prefix", fake_adb_opts.prefix, "their serials' prefix (then 0000, 0001, ...)");

  auto* fake_adbd = app.add_subcommand(
      "fake-adbd", "a phone's adbd for the real adb server (adb connect HOST:PORT) in tests");
  nines::tools::fake_adbd_options fake_adbd_opts;
  fake_adbd->add_option("--listen", fake_adbd_opts.listen, "IP:PORT (port 0: any free port)");
  fake_adbd->add_option("--mode", fake_adbd_opts.mode, "ok, unauthorized, silent or hang")
      ->check(CLI::IsMember({"ok", "unauthorized", "silent", "hang"}));
  fake_adbd->add_option("--screenshot-bytes", fake_adbd_opts.screenshot_bytes,
                        "size of each screencap")
      ->check(CLI::Range(std::size_t{8}, std::size_t{64} << 20));
  fake_adbd->add_option("--phones", fake_adbd_opts.phones,
                        "phones on PORT, PORT+1, ... (a fixed port when more than one)")
      ->check(CLI::Range(1U, nines::tools::fake_adbd_max_phones));

  auto* agent_sim = app.add_subcommand(
      "agent-sim", "agents driving phones over ADB and a model, step by step (the whole link)");
  nines::tools::agent_sim_options sim_opts;
  agent_sim->add_option("--adb-port", sim_opts.adb_port,
                        "the adb server's port on 127.0.0.1, or the keeper's ADB proxy's");
  agent_sim->add_option("--phone", sim_opts.phones, "a phone's serial (repeatable; one agent each)")
      ->required();
  agent_sim->add_option("--chat", sim_opts.chat_url, "http://HOST:PORT of the chat API");
  agent_sim->add_option("--steps", sim_opts.steps, "steps in all")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000000}));
  agent_sim->add_option("--screenshot-bytes", sim_opts.screenshot_bytes,
                        "the size a pulled screenshot must have")
      ->check(CLI::Range(std::size_t{8}, std::size_t{64} << 20));
  agent_sim->add_option("--answer-tokens", sim_opts.answer_tokens, "mock-llm's --tokens");
  agent_sim->add_option("--model", sim_opts.model, "the model asked");
  agent_sim->add_option("--screen-path", sim_opts.screen_path, "where screencap writes");
  agent_sim->add_option("--adb-timeout-ms", sim_opts.adb_timeout_ms, "each ADB command's bound")
      ->check(CLI::Range(1U, 600000U));
  agent_sim->add_option("--chat-timeout-ms", sim_opts.chat_timeout_ms, "each chat request's bound")
      ->check(CLI::Range(1U, 600000U));
  agent_sim->add_option("--min-step-ms", sim_opts.min_step_ms,
                        "the agent's own time per step: a step, failed or not, lasts this long")
      ->check(CLI::Range(0U, 600000U));
  agent_sim->add_option("--max-seconds", sim_opts.max_seconds, "no step begins after this")
      ->check(CLI::Range(0.1, 86400.0));
  agent_sim->add_option("--tap-log", sim_opts.tap_log,
                        "the phones' output, whose 'tap SERIAL X Y' lines are checked");
  agent_sim->add_option("--objective", sim_opts.objective, "the success rate that exits 0")
      ->check(CLI::Range(0.0, 1.0));
  agent_sim->add_option("--json", sim_opts.json_path, "also write the report as JSON here");
  agent_sim->add_option("--label", sim_opts.label, "this run's name in the report");

  auto* bench = app.add_subcommand("bench", "load generator that validates every answer");
  nines::tools::bench_options bench_opts;
  nines::tools::add_bench_options(*bench, bench_opts);

  auto* chaos = app.add_subcommand("chaos", "TCP fault proxy (Toxiproxy-like) with an HTTP API");
  nines::tools::chaos_options chaos_opts;
  chaos->add_option("--api", chaos_opts.api, "host:port of the control API (port 0: any)");
  chaos->add_option("--proxy", chaos_opts.proxies,
                    "name=N,listen=IP:PORT,upstream=IP:PORT[,enabled=false] (repeatable)");
  chaos->add_option("--toxic", chaos_opts.toxics,
                    "proxy=N,type=T[,stream=upstream|downstream][,toxicity=P][,name=X],ATTR=V... "
                    "(repeatable)");
  chaos->add_option("--seed", chaos_opts.seed, "seed for toxicity draws, jitter and slices");

  auto* chaos_ctl = app.add_subcommand("chaos-ctl", "change a running nines chaos through its API");
  nines::tools::chaos_ctl_options ctl_opts;
  chaos_ctl->add_option("--api", ctl_opts.api, "the chaos API's base URL");
  chaos_ctl->add_option("command", ctl_opts.command,
                        "list | add-proxy SPEC | remove-proxy NAME | enable NAME | disable NAME | "
                        "add-toxic SPEC | update-toxic SPEC | remove-toxic PROXY TOXIC | reset")
      ->required();
  chaos_ctl->add_option("args", ctl_opts.args, "the command's arguments");

  auto* scenario = app.add_subcommand(
      "scenario", "run reliability scenarios through nines, nginx and HAProxy; report what clients saw");
  nines::tools::scenario_options scenario_opts;
  scenario->add_option("files", scenario_opts.files, "bench/scenarios/*.toml")->required();
  scenario->add_option("--proxies", scenario_opts.proxies, "nines, nginx, haproxy")->delimiter(',');
  scenario->add_flag("--quick", scenario_opts.quick, "the scenarios' short loads (CI)");
  scenario->add_option("--markdown", scenario_opts.markdown_path, "write the report here");
  scenario->add_option("--json", scenario_opts.json_path, "write every run's measurements here");

  auto* status = app.add_subcommand("status", "print a gateway's GET /status as a table");
  std::string status_url;
  bool status_json = false;
  status->add_option("url", status_url, "the gateway's base URL, http://host:port")->required();
  status->add_flag("--json", status_json, "print the JSON as it is");

  auto* probe = app.add_subcommand("probe", "measure RTT, loss and jitter to targets");
  nines::tools::probe_options probe_opts;
  nines::tools::add_probe_options(*probe, probe_opts);

  auto* tls_check = app.add_subcommand(
      "tls-check", "what a TLS server presents: protocol, cipher, chain, and what is wrong with it");
  nines::tools::tls_check_options tls_check_opts;
  nines::tools::add_tls_check_options(*tls_check, tls_check_opts);

  CLI11_PARSE(app, argc, argv);

  try {
    if (*gateway) {
      return nines::app::run_proxy_command(gateway_opts);
    }
    if (*edge) {
      return nines::app::run_proxy_command(edge_opts);
    }
    if (*devices) {
      return nines::app::run_devices_command(devices_opts);
    }
    if (*keys_new) {
      // The secret is printed once, here; the file holds only its digest.
      const auto secret = nines::core::new_client_secret();
      if (new_key_models.empty()) {
        new_key_models.push_back("*");
      }
      std::cout << "secret (shown once; give it to the client as its API key):\n  " << secret
                << "\n\nentry for the keys file:\n\n"
                << nines::core::client_key_entry(new_key_id, nines::core::sha256_of(secret),
                                                 new_key_models);
      return 0;
    }
    if (*mock) {
      if (auto err = nines::tools::parse_mock_faults(mock_faults, mock_opts.faults); !err.empty()) {
        std::cerr << "nines mock-llm: --faults: " << err << "\n";
        return exit_bad_config;
      }
      return nines::tools::run_mock_llm(mock_opts);
    }
    if (*fake_adb) {
      return nines::tools::run_fake_adb(fake_adb_opts);
    }
    if (*agent_sim) {
      return nines::tools::run_agent_sim(sim_opts);
    }
    if (*fake_adbd) {
      return nines::tools::run_fake_adbd(fake_adbd_opts);
    }
    if (*bench) {
      return nines::tools::run_bench(bench_opts);
    }
    if (*scenario) {
      std::string self(4096, '\0');
      const auto n = ::readlink("/proc/self/exe", self.data(), self.size());
      scenario_opts.binary = n > 0 ? self.substr(0, static_cast<std::size_t>(n)) : argv[0];
      scenario_opts.command_line = "nines";
      for (int i = 1; i < argc; ++i) {
        scenario_opts.command_line += std::string(" ") + argv[i];
      }
      return nines::tools::run_scenarios(scenario_opts);
    }
    if (*status) {
      return nines::tools::run_status(status_url, status_json);
    }
    if (*probe) {
      return nines::tools::run_probe(probe_opts);
    }
    if (*tls_check) {
      return nines::tools::run_tls_check(tls_check_opts);
    }
    if (*chaos) {
      return nines::tools::run_chaos(chaos_opts);
    }
    if (*chaos_ctl) {
      return nines::tools::run_chaos_ctl(ctl_opts);
    }
  } catch (const std::exception& e) {
    std::cerr << "nines: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
