#include "tools/scenario_runner.hpp"

#include <boost/asio/connect.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <csignal>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

#include "core/tools/chaos_toxic.hpp"
#include "core/config/key_values.hpp"
#include "core/tools/scenario.hpp"
#include "net/asio.hpp"
#include "tools/child_process.hpp"
#include "tools/http_client.hpp"

namespace nines::tools {
namespace {

namespace json = boost::json;
using net::asio::ip::tcp;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// A port nothing listens on now (for nginx and HAProxy, which cannot report the port they got).
unsigned short free_port() {
  net::asio::io_context ctx;
  tcp::acceptor a(ctx, tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

// Waits until something accepts connections on the port (a tool's startup, not a test).
bool wait_port(unsigned short port, milliseconds timeout) {
  const auto until = steady::now() + timeout;
  while (steady::now() < until) {
    net::asio::io_context ctx;
    tcp::socket s(ctx);
    net::error_code ec;
    s.connect(tcp::endpoint(net::asio::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

unsigned short port_after_last_colon(std::string_view text) {
  const auto at = text.rfind(':');
  auto port = core::parse_count(text.substr(at + 1, text.find_first_not_of("0123456789", at + 1) -
                                                        (at + 1)));
  return static_cast<unsigned short>(port.value_or(0));
}

// A command line as a shell would take it back.
std::string join(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) {
    out += out.empty() ? "" : " ";
    out += a.find_first_of(" \"'") == std::string::npos ? a : "'" + a + "'";
  }
  return out;
}

// "error_rate=1,retry_after=5" as mock-llm's JSON faults (later keys win).
json::object faults_json(std::string_view text) {
  json::object o;
  std::vector<core::key_value> items;
  core::split_key_values(text, items);
  for (const auto& [k, v] : items) {
    if (auto i = core::parse_int(v)) {
      o[k] = *i;
    } else if (auto d = core::parse_double(v)) {
      o[k] = *d;
    } else {
      o[k] = v;
    }
  }
  return o;
}

// The mock model servers and chaos links of one run.
class topology {
 public:
  topology(const core::scenario& s, std::string bin) : s_(s), bin_(std::move(bin)) {}

  void start() {
    for (std::size_t i = 0; i < s_.upstreams; ++i) {
      std::vector<std::string> args{"mock-llm", "--tokens", std::to_string(s_.tokens), "--seed",
                                    std::to_string(i + 1)};
      if (s_.thought_tokens > 0) {
        args.insert(args.end(), {"--thought-tokens", std::to_string(s_.thought_tokens)});
      }
      const auto faults = base_faults(i);
      if (!faults.empty()) {
        args.insert(args.end(), {"--faults", faults});
      }
      if (refuses(i)) {
        args.push_back("--refuse");
      }
      args_.push_back(args);
      mocks_.emplace_back();
      ports_.push_back(0);
      start_mock(i);
    }
    if (s_.chaos) {
      std::vector<std::string> argv{bin_, "chaos", "--api", "127.0.0.1:0", "--seed", "7"};
      for (std::size_t i = 0; i < s_.upstreams; ++i) {
        argv.insert(argv.end(), {"--proxy", fmt::format("name=link{},listen=127.0.0.1:0,upstream="
                                                        "127.0.0.1:{}",
                                                        i, ports_[i])});
      }
      chaos_ = std::make_unique<child_process>(argv);
      const auto line = chaos_->wait_for_output("nines chaos api listening on");
      if (!line) {
        throw std::runtime_error("chaos did not start: " + chaos_->output());
      }
      chaos_api_ = port_after_last_colon(*line);
      const auto r = http_call("127.0.0.1", chaos_api_, "GET", "/proxies");
      const auto all = json::parse(r.body).as_object();
      for (std::size_t i = 0; i < s_.upstreams; ++i) {
        links_.push_back(port_after_last_colon(
            all.at(fmt::format("link{}", i)).at("listen").as_string()));
      }
      commands_.push_back("nines " + join({argv.begin() + 1, argv.end()}));
    }
  }

  // Where a proxy sends upstream i's traffic: the chaos link when there is one.
  std::vector<unsigned short> entries() const { return s_.chaos ? links_ : ports_; }
  const std::vector<std::string>& commands() const { return commands_; }

  // Plays one timeline event; returns what went wrong, empty when done.
  std::string perform(const core::scenario_event& e) {
    std::string errors;
    for (const auto i : e.targets) {
      std::string why;
      switch (e.action) {
        case core::scenario_action::kill:
          if (mocks_[i]) {
            mocks_[i]->signal(SIGKILL);
            mocks_[i]->wait_exit();
            mocks_[i].reset();
          }
          break;
        case core::scenario_action::restart:
          if (!mocks_[i]) {
            why = start_mock(i);
          }
          break;
        case core::scenario_action::faults: {
          // The event's faults are added to the upstream's own (its latency, say), not instead.
          const auto text = base_faults(i) + "," + e.value;
          const auto r = http_call("127.0.0.1", ports_[i], "POST", "/mock/faults",
                                   json::serialize(faults_json(text)));
          why = r.status == 200 ? "" : "faults: " + r.body + r.error;
          break;
        }
        case core::scenario_action::toxic: {
          json::object toxic;
          core::toxic_json_from_text(e.value, toxic);
          why = chaos_call("POST", fmt::format("/proxies/link{}/toxics", i), json::serialize(toxic));
          break;
        }
        case core::scenario_action::remove_toxic:
          why = chaos_call("DELETE", fmt::format("/proxies/link{}/toxics/{}", i, e.value), "");
          break;
        case core::scenario_action::link_down:
        case core::scenario_action::link_up:
          why = chaos_call("POST", fmt::format("/proxies/link{}", i),
                           e.action == core::scenario_action::link_up ? R"({"enabled":true})"
                                                                       : R"({"enabled":false})");
          break;
      }
      if (!why.empty()) {
        errors += fmt::format("{}{}: {}", errors.empty() ? "" : "; ", i, why);
      }
    }
    return errors;
  }

  // mock-llm's counters summed over the upstreams alive now, and the chaos links' connections.
  json::object stats() const {
    json::object sum;
    if (chaos_api_ != 0) {
      const auto r = http_call("127.0.0.1", chaos_api_, "GET", "/proxies");
      json::error_code ec;
      const auto v = json::parse(r.body, ec);
      std::uint64_t connections = 0;
      for (std::size_t i = 0; !ec && v.is_object() && i < s_.upstreams; ++i) {
        connections += static_cast<std::uint64_t>(
            v.at(fmt::format("link{}", i)).at("connections").at("total").to_number<double>());
      }
      sum["link_connections"] = connections;
    }
    for (std::size_t i = 0; i < mocks_.size(); ++i) {
      if (!mocks_[i] || refuses(i)) {
        continue;
      }
      const auto r = http_call("127.0.0.1", ports_[i], "GET", "/mock/stats");
      json::error_code ec;
      const auto v = json::parse(r.body, ec);
      if (ec || !v.is_object()) {
        continue;
      }
      for (const auto& [k, n] : v.get_object()) {
        json::error_code nec;
        const auto count = n.to_number<std::uint64_t>(nec);
        if (!nec) {
          const auto* have = sum.if_contains(k);
          sum[k] = (have ? have->to_number<std::uint64_t>() : 0) + count;
        }
      }
    }
    return sum;
  }

 private:
  std::string base_faults(std::size_t i) const {
    std::string faults = s_.faults;
    for (const auto& o : s_.overrides) {
      if (o.index == i && !o.faults.empty()) {
        faults = o.faults;
      }
    }
    return faults;
  }
  bool refuses(std::size_t i) const {
    return std::any_of(s_.overrides.begin(), s_.overrides.end(),
                       [&](const auto& o) { return o.index == i && o.refuse; });
  }

  std::string start_mock(std::size_t i) {
    std::vector<std::string> argv{bin_};
    argv.insert(argv.end(), args_[i].begin(), args_[i].end());
    argv.insert(argv.end(), {"--listen", fmt::format("127.0.0.1:{}", ports_[i])});
    auto p = std::make_unique<child_process>(argv);
    const auto line = p->wait_for_output("mock-llm ");
    if (!line || line->find("http://") == std::string::npos) {
      return "mock-llm did not start: " + p->output();
    }
    if (ports_[i] == 0) {
      ports_[i] = port_after_last_colon(*line);
      argv.back() = "127.0.0.1:0";
      commands_.push_back("nines " + join({argv.begin() + 1, argv.end()}));
    }
    mocks_[i] = std::move(p);
    return {};
  }

  std::string chaos_call(const std::string& method, const std::string& path,
                         const std::string& body) {
    const auto r = http_call("127.0.0.1", chaos_api_, method, path, body);
    return r.status / 100 == 2 ? "" : fmt::format("chaos {} {}: {} {}", method, path, r.body, r.error);
  }

  const core::scenario& s_;
  std::string bin_;
  std::vector<std::vector<std::string>> args_;
  std::vector<std::unique_ptr<child_process>> mocks_;
  std::vector<unsigned short> ports_;
  std::unique_ptr<child_process> chaos_;
  unsigned short chaos_api_ = 0;
  std::vector<unsigned short> links_;
  std::vector<std::string> commands_;
};

// The proxy under test, configured for the scenario.
struct proxy_process {
  std::unique_ptr<child_process> process;
  unsigned short port = 0;
  std::string config;  // the configuration it was given
  std::string command;
};

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  const auto path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string nines_config(const core::scenario& s, const std::vector<unsigned short>& entries) {
  std::string c = fmt::format(
      "[gateway]\nlisten = \"127.0.0.1:0\"\nworkers = 1\naccess_log = \"off\"\n\n"
      "[admin]\nlisten = \"127.0.0.1:0\"\n\n"
      "[timeouts]\nconnect_ms = {}\nfirst_byte_ms = {}\nstream_idle_ms = {}\n",
      s.timeouts.connect_ms, s.timeouts.first_byte_ms, s.timeouts.stream_idle_ms);
  if (!s.nines_config.empty()) {
    c += "\n" + s.nines_config + "\n";
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    c += fmt::format("\n[[upstreams]]\nname = \"u{}\"\nurl = \"http://127.0.0.1:{}/v1\"\n", i,
                     entries[i]);
  }
  return c;
}

// nginx as an operator would set it up for an OpenAI-compatible backend pool: one worker,
// keep-alive upstream connections, no response buffering (streams), passive health
// (max_fails/fail_timeout), and its retry feature for every failure it can retry, POSTs included.
std::string nginx_config(const core::scenario& s, const std::vector<unsigned short>& entries,
                         unsigned short port, const std::string& dir) {
  std::string servers;
  for (const auto e : entries) {
    servers += fmt::format("    server 127.0.0.1:{} max_fails=1 fail_timeout=10s;\n", e);
  }
  return fmt::format(R"(worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  client_max_body_size 64m;
  upstream models {{
{servers}    keepalive 256;
  }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    keepalive_requests 1000000;
    location / {{
      proxy_pass http://models;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_connect_timeout {connect}ms;
      proxy_read_timeout {read}ms;
      proxy_next_upstream error timeout invalid_header http_502 http_503 http_504 http_429 non_idempotent;
      proxy_next_upstream_tries 3;
      proxy_next_upstream_timeout 60s;
    }}
  }}
}}
)",
                     fmt::arg("dir", dir), fmt::arg("servers", servers), fmt::arg("port", port),
                     fmt::arg("connect", s.timeouts.connect_ms),
                     fmt::arg("read", s.timeouts.first_byte_ms));
}

// HAProxy likewise: one thread, keep-alive and connection reuse, no send coalescing (streams:
// without http-no-delay the kernel holds small writes back for up to 200 ms), active health
// checks, and its retries with redispatch on every condition it can retry (HAProxy 2.6 cannot
// retry a 429).
std::string haproxy_config(const core::scenario& s, const std::vector<unsigned short>& entries,
                           unsigned short port) {
  std::string servers;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    servers += fmt::format("  server u{} 127.0.0.1:{}\n", i, entries[i]);
  }
  return fmt::format(R"(global
  nbthread 1
  maxconn 9000
defaults
  mode http
  timeout connect {connect}ms
  timeout client 120s
  timeout server {read}ms
  timeout http-keep-alive 60s
  timeout queue 60s
  option http-keep-alive
  option http-no-delay
  http-reuse safe
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response junk-response response-timeout 502 503 504
frontend fe
  bind 127.0.0.1:{port}
  default_backend models
backend models
  balance roundrobin
  option httpchk GET /health
  default-server check inter 1s fall 2 rise 2
{servers})",
                     fmt::arg("connect", s.timeouts.connect_ms),
                     fmt::arg("read", s.timeouts.first_byte_ms), fmt::arg("port", port),
                     fmt::arg("servers", servers));
}

proxy_process start_proxy(const std::string& proxy, const core::scenario& s,
                          const std::vector<unsigned short>& entries, const std::string& bin,
                          const std::string& dir) {
  proxy_process p;
  if (proxy == "nines") {
    p.config = nines_config(s, entries);
    const auto path = write_file(dir, "gateway.toml", p.config);
    p.process = std::make_unique<child_process>(
        std::vector<std::string>{bin, "gateway", "--config", path});
    p.command = "nines gateway --config gateway.toml";
    const auto line = p.process->wait_for_output("nines gateway listening on");
    if (!line) {
      throw std::runtime_error("nines gateway did not start: " + p.process->output());
    }
    p.port = port_after_last_colon(line->substr(0, line->find(" with ")));
    return p;
  }
  p.port = free_port();
  if (proxy == "nginx") {
    p.config = nginx_config(s, entries, p.port, dir);
    const auto path = write_file(dir, "nginx.conf", p.config);
    p.process = std::make_unique<child_process>(
        std::vector<std::string>{"/usr/sbin/nginx", "-c", path, "-p", dir + "/"});
    p.command = "nginx -c nginx.conf";
  } else {
    p.config = haproxy_config(s, entries, p.port);
    const auto path = write_file(dir, "haproxy.cfg", p.config);
    p.process = std::make_unique<child_process>(
        std::vector<std::string>{"/usr/sbin/haproxy", "-db", "-f", path});
    p.command = "haproxy -db -f haproxy.cfg";
  }
  if (!wait_port(p.port, milliseconds(10000))) {
    throw std::runtime_error(proxy + " did not start: " + p.process->output());
  }
  return p;
}

struct run_record {
  std::string scenario;
  std::string proxy;
  json::object bench;
  std::vector<core::objective_check> checks;
  bool met = false;
  json::object upstream_stats;
  json::array timeline;
  std::string bench_command;
  std::vector<std::string> topology_commands;
  std::string proxy_command;
  std::string proxy_config;
  std::string error;  // the run could not be carried out
};

double number_at(const json::object& o, std::initializer_list<const char*> path) {
  const json::value* v = nullptr;
  const json::object* at = &o;
  for (const char* key : path) {
    v = at ? at->if_contains(key) : nullptr;
    if (v == nullptr) {
      return 0;
    }
    at = v->if_object();
  }
  json::error_code ec;
  const double d = v->to_number<double>(ec);
  return ec ? 0 : d;
}

run_record run_one(const core::scenario& s, const std::string& proxy, const scenario_options& o,
                   const std::string& dir) {
  run_record rec;
  rec.scenario = s.name;
  rec.proxy = proxy;
  const auto& load = o.quick ? s.quick : s.load;
  const auto events = o.quick ? core::quick_timeline(s) : s.timeline;
  topology topo(s, o.binary);
  try {
    topo.start();
  } catch (const std::exception& e) {
    rec.error = e.what();
    return rec;
  }
  rec.topology_commands = topo.commands();
  proxy_process px;
  try {
    px = start_proxy(proxy, s, topo.entries(), o.binary, dir);
  } catch (const std::exception& e) {
    rec.error = e.what();
    return rec;
  }
  rec.proxy_command = px.command;
  rec.proxy_config = px.config;
  const auto report_path = dir + "/bench.json";
  std::remove(report_path.c_str());
  const auto requests = static_cast<std::size_t>(std::ceil(load.rate * load.duration_s));
  std::vector<std::string> bench{o.binary,
                                 "bench",
                                 "--url",
                                 fmt::format("http://127.0.0.1:{}", px.port),
                                 "--route",
                                 load.route,
                                 "--stream",
                                 load.stream ? "true" : "false",
                                 "--rate",
                                 fmt::format("{}", load.rate),
                                 "--duration",
                                 fmt::format("{}", load.duration_s),
                                 "--requests",
                                 std::to_string(requests),
                                 "--connections",
                                 std::to_string(load.connections),
                                 "--answer-tokens",
                                 std::to_string(s.tokens),
                                 "--thought-tokens",
                                 std::to_string(s.thought_tokens),
                                 "--image-bytes",
                                 std::to_string(load.image_bytes),
                                 "--timeout",
                                 "60",
                                 "--max-seconds",
                                 fmt::format("{}", load.duration_s + 90),
                                 "--label",
                                 s.name + "/" + proxy,
                                 "--json",
                                 report_path};
  rec.bench_command = "nines " + join({bench.begin() + 1, bench.end() - 2});
  child_process load_gen(bench);
  if (!load_gen.wait_for_output("nines bench: started", milliseconds(30000))) {
    rec.error = "bench did not start: " + load_gen.output();
    return rec;
  }
  const auto t0 = steady::now();
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  std::thread timeline([&] {
    for (const auto& e : events) {
      {
        std::unique_lock lock(mutex);
        const auto at = t0 + std::chrono::duration_cast<steady::duration>(
                                 std::chrono::duration<double>(e.at_s));
        if (finished.wait_until(lock, at, [&] { return done; })) {
          return;
        }
      }
      const auto error = topo.perform(e);
      const std::chrono::duration<double> when = steady::now() - t0;
      json::array targets;
      for (auto t : e.targets) {
        targets.push_back(t);
      }
      json::object entry{{"at_s", e.at_s},       {"done_at_s", when.count()},
                         {"action", to_string(e.action)}, {"targets", std::move(targets)},
                         {"value", e.value}};
      if (!error.empty()) {
        entry["error"] = error;
        std::cerr << fmt::format("nines scenario: {} at {:.1f} s: {}\n", to_string(e.action),
                                 e.at_s, error);
      }
      std::lock_guard lock(mutex);
      rec.timeline.push_back(std::move(entry));
    }
  });
  const auto exit_code =
      load_gen.wait_exit(milliseconds(static_cast<std::int64_t>((load.duration_s + 120) * 1000)));
  {
    std::lock_guard lock(mutex);
    done = true;
  }
  finished.notify_all();
  timeline.join();
  rec.upstream_stats = topo.stats();
  px.process->signal(SIGTERM);
  px.process->wait_exit(milliseconds(10000));
  std::ifstream in(report_path);
  std::stringstream text;
  text << in.rdbuf();
  json::error_code ec;
  auto report = json::parse(text.str(), ec);
  if (!exit_code || ec || !report.is_object()) {
    rec.error = "bench gave no report: " + load_gen.output();
    return rec;
  }
  rec.bench = report.get_object();
  for (const auto& entry : rec.timeline) {
    if (const auto* error = entry.as_object().if_contains("error")) {
      rec.error = "the fault timeline could not be played: " + std::string(error->as_string());
    }
  }
  core::run_measurements m;
  m.requests = static_cast<std::size_t>(number_at(rec.bench, {"requests"}));
  m.success_rate = number_at(rec.bench, {"success_rate"});
  m.ttft_p99_ms = number_at(rec.bench, {"ttft_ms", "p99"});
  m.total_p99_ms = number_at(rec.bench, {"total_ms", "p99"});
  rec.checks = core::check_objectives(s.objectives, m);
  rec.met = std::all_of(rec.checks.begin(), rec.checks.end(), [](const auto& c) { return c.met; });
  return rec;
}

json::object to_json(const run_record& r) {
  json::array checks;
  for (const auto& c : r.checks) {
    checks.push_back(json::object{{"objective", c.name},
                                  {"target", c.target},
                                  {"measured", c.measured},
                                  {"met", c.met}});
  }
  json::object o{{"scenario", r.scenario},     {"proxy", r.proxy},
                 {"met", r.met},               {"objectives", std::move(checks)},
                 {"bench", r.bench},           {"upstream_stats", r.upstream_stats},
                 {"timeline", r.timeline},     {"bench_command", r.bench_command},
                 {"proxy_command", r.proxy_command}, {"proxy_config", r.proxy_config}};
  if (!r.error.empty()) {
    o["error"] = r.error;
  }
  return o;
}

std::string failures_text(const json::object& bench) {
  const auto* f = bench.if_contains("failures");
  if (f == nullptr || !f->is_object() || f->get_object().empty()) {
    return "none";
  }
  std::string out;
  for (const auto& [reason, n] : f->get_object()) {
    out += fmt::format("{}{} × {}", out.empty() ? "" : "; ", n.to_number<std::uint64_t>(),
                       std::string_view(reason));
  }
  return out;
}

std::string timeline_text(const std::vector<core::scenario_event>& events) {
  if (events.empty()) {
    return "none";
  }
  std::string out;
  for (const auto& e : events) {
    std::string targets;
    for (auto t : e.targets) {
      targets += (targets.empty() ? "" : ",") + std::to_string(t);
    }
    const bool link = e.action == core::scenario_action::toxic ||
                      e.action == core::scenario_action::remove_toxic ||
                      e.action == core::scenario_action::link_down ||
                      e.action == core::scenario_action::link_up;
    out += fmt::format("{}at {:g} s: {} {} {}{}", out.empty() ? "" : "; ", e.at_s,
                       to_string(e.action), link ? "link" : "upstream", targets,
                       e.value.empty() ? "" : " (`" + e.value + "`)");
  }
  return out;
}

std::string first_line_of(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    return "unknown";
  }
  char buf[256] = {0};
  const char* got = std::fgets(buf, sizeof buf, pipe);
  ::pclose(pipe);
  std::string line = got ? buf : "unknown";
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.pop_back();
  }
  return line;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("model name")) {
      return line.substr(line.find(':') + 2);
    }
  }
  return "unknown CPU";
}

std::string markdown(const std::vector<core::scenario>& scenarios,
                     const std::vector<run_record>& runs, const scenario_options& o) {
  std::string md;
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%MZ", std::gmtime(&now));
  md += "# Reliability: what clients see when servers and links fail\n\n";
  md += "<!-- Written by `nines scenario`; do not edit by hand: rerun the command below. -->\n\n";
  md += fmt::format("Produced by `{}` on {}, {} cores ({}); {}, {}.\n\n", o.command_line, when,
                    std::thread::hardware_concurrency(), cpu_model(),
                    first_line_of("/usr/sbin/nginx -v"), first_line_of("/usr/sbin/haproxy -v"));
  md += R"(Each scenario starts its own mock model servers (`nines mock-llm`, deterministic answers,
faults on demand), puts `nines chaos` links in front of them when the scenario needs link faults,
and runs the same open-loop load (`nines bench`, latency measured from each request's intended send
time) through each proxy in turn, with the same fault timeline. A request succeeds only when its
answer is complete and equal, byte for byte, to the model's answer. The three proxies get one
worker each and equivalent settings: the same connect timeout, nginx's and HAProxy's read timeout
set to nines' first-byte timeout, and each one's own retry and health features switched on as a
competent operator would (the generated configurations are at the end of this page, and in the
JSON file). The machine is shared by the load generator, the upstreams and the proxy.

## Summary

| scenario | proxy | requests | succeeded | success rate | TTFT p50 ms | TTFT p99 ms | total p99 ms | objectives |
|---|---|---:|---:|---:|---:|---:|---:|---|
)";
  for (const auto& r : runs) {
    if (!r.error.empty()) {
      md += fmt::format("| {} | {} | — | — | — | — | — | — | run failed: {} |\n", r.scenario,
                        r.proxy, r.error.substr(0, 120));
      continue;
    }
    md += fmt::format("| {} | {} | {} | {} | {:.4f}% | {:.1f} | {:.1f} | {:.1f} | {} |\n",
                      r.scenario, r.proxy, number_at(r.bench, {"requests"}),
                      number_at(r.bench, {"succeeded"}),
                      100 * number_at(r.bench, {"success_rate"}),
                      number_at(r.bench, {"ttft_ms", "p50"}), number_at(r.bench, {"ttft_ms", "p99"}),
                      number_at(r.bench, {"total_ms", "p99"}), r.met ? "met" : "**missed**");
  }
  for (const auto& s : scenarios) {
    const auto& load = o.quick ? s.quick : s.load;
    md += fmt::format("\n## {} (`{}`)\n\n{}\n\n", s.title, s.name, s.summary);
    const run_record* any = nullptr;
    for (const auto& r : runs) {
      if (r.scenario == s.name && r.error.empty()) {
        any = &r;
        break;
      }
    }
    if (any != nullptr) {
      md += "Topology:\n\n```sh\n";
      for (const auto& c : any->topology_commands) {
        md += c + "\n";
      }
      md += "```\n\nLoad (through each proxy's port):\n\n```sh\n" + any->bench_command + "\n```\n\n";
    }
    md += fmt::format("Load: {} requests/s for {:g} s, {} {}{}. Timeline: {}.\n\n", load.rate,
                      load.duration_s, load.stream ? "streamed" : "whole", load.route,
                      load.image_bytes ? fmt::format(" with a {}-byte image", load.image_bytes) : "",
                      timeline_text(o.quick ? core::quick_timeline(s) : s.timeline));
    md += fmt::format("Objectives: success ≥ {:.2f}%", 100 * s.objectives.success_rate);
    if (s.objectives.ttft_p99_ms) {
      md += fmt::format(", TTFT p99 ≤ {:g} ms", *s.objectives.ttft_p99_ms);
    }
    if (s.objectives.total_p99_ms) {
      md += fmt::format(", total p99 ≤ {:g} ms", *s.objectives.total_p99_ms);
    }
    md += ".\n\n| proxy | success rate | failed | failures by reason | TTFT p50 / p99 / max ms | "
          "inter-token p99 ms | total p99 ms | objectives |\n|---|---:|---:|---|---:|---:|---:|---|\n";
    for (const auto& r : runs) {
      if (r.scenario != s.name || !r.error.empty()) {
        continue;
      }
      std::string checks;
      for (const auto& c : r.checks) {
        checks += fmt::format("{}{} {}", checks.empty() ? "" : "; ", c.name, c.text);
      }
      md += fmt::format("| {} | {:.4f}% | {} | {} | {:.1f} / {:.1f} / {:.1f} | {:.1f} | {:.1f} | {} |\n",
                        r.proxy, 100 * number_at(r.bench, {"success_rate"}),
                        number_at(r.bench, {"failed"}), failures_text(r.bench),
                        number_at(r.bench, {"ttft_ms", "p50"}), number_at(r.bench, {"ttft_ms", "p99"}),
                        number_at(r.bench, {"ttft_ms", "max"}), number_at(r.bench, {"itl_ms", "p99"}),
                        number_at(r.bench, {"total_ms", "p99"}), checks);
    }
  }
  // One configuration of each proxy, from the first run that has it.
  md += "\n## The proxies' configurations\n\nAs generated for the first scenario each ran "
        "(ports and upstream lists differ per scenario; nines adds the scenario's own settings).\n";
  for (const std::string proxy : {"nines", "nginx", "haproxy"}) {
    for (const auto& r : runs) {
      if (r.proxy == proxy && !r.proxy_config.empty()) {
        md += fmt::format("\n### {} (`{}`, scenario `{}`)\n\n```\n{}```\n", proxy, r.proxy_command,
                          r.scenario, r.proxy_config);
        break;
      }
    }
  }
  return md;
}

}  // namespace

int run_scenarios(const scenario_options& o) {
  std::vector<core::scenario> scenarios;
  bool bad = false;
  for (const auto& path : o.files) {
    std::ifstream in(path);
    if (!in) {
      std::cerr << "nines scenario: cannot read " << path << "\n";
      return 2;
    }
    std::stringstream text;
    text << in.rdbuf();
    auto name = path.substr(path.find_last_of('/') + 1);
    name = name.substr(0, name.rfind(".toml"));
    auto result = core::parse_scenario(text.str(), path, name);
    for (const auto& p : result.problems) {
      std::cerr << core::format_problem(path, p) << "\n";
    }
    if (!result.value) {
      bad = true;
      continue;
    }
    scenarios.push_back(std::move(*result.value));
  }
  if (bad) {
    return 2;
  }
  for (const auto& p : o.proxies) {
    if (p != "nines" && p != "nginx" && p != "haproxy") {
      std::cerr << "nines scenario: unknown proxy \"" << p << "\" (nines, nginx, haproxy)\n";
      return 2;
    }
    const char* path = p == "nginx" ? "/usr/sbin/nginx" : p == "haproxy" ? "/usr/sbin/haproxy" : nullptr;
    if (path != nullptr && ::access(path, X_OK) != 0) {
      std::cerr << "nines scenario: " << p << " is not installed (" << path
                << "); scripts/install-deps.sh bench installs it\n";
      return 2;
    }
  }
  char dir_template[] = "/tmp/nines-scenario.XXXXXX";
  const char* dir = ::mkdtemp(dir_template);
  if (dir == nullptr) {
    std::cerr << "nines scenario: cannot create a work directory\n";
    return 1;
  }
  std::vector<run_record> runs;
  bool nines_met = true;
  for (const auto& s : scenarios) {
    for (const auto& proxy : o.proxies) {
      if (std::find(s.proxies.begin(), s.proxies.end(), proxy) == s.proxies.end()) {
        continue;
      }
      std::cerr << fmt::format("nines scenario: {} through {} ...\n", s.name, proxy);
      auto r = run_one(s, proxy, o, dir);
      if (!r.error.empty()) {
        std::cerr << fmt::format("nines scenario: {} / {}: run failed: {}\n", s.name, proxy, r.error);
      } else {
        std::string checks;
        for (const auto& c : r.checks) {
          checks += fmt::format("  {} {}{}", c.name, c.text, c.met ? "" : " MISSED");
        }
        std::cerr << fmt::format("nines scenario: {} / {}: {} requests, {} failed;{}\n", s.name,
                                 proxy, number_at(r.bench, {"requests"}),
                                 number_at(r.bench, {"failed"}), checks);
      }
      if (proxy == "nines" && (!r.met || !r.error.empty())) {
        nines_met = false;
      }
      runs.push_back(std::move(r));
    }
  }
  if (!o.json_path.empty()) {
    json::array all;
    for (const auto& r : runs) {
      all.push_back(to_json(r));
    }
    std::ofstream(o.json_path) << json::serialize(json::object{
        {"command", o.command_line}, {"quick", o.quick}, {"runs", std::move(all)}})
                               << "\n";
  }
  if (!o.markdown_path.empty()) {
    std::ofstream(o.markdown_path) << markdown(scenarios, runs, o);
  }
  std::cerr << (nines_met ? "nines scenario: nines met every objective\n"
                          : "nines scenario: nines MISSED an objective (see above)\n");
  return nines_met ? 0 : 1;
}

}  // namespace nines::tools
