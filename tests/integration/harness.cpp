#include "harness.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/tools/mock_model.hpp"

namespace nines::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

std::string temp_path(const std::string& suffix) {
  static int counter = 0;
  return "/tmp/nines-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + suffix;
}

unsigned short port_from(const std::string& line) {
  const auto at = line.rfind(':');
  return static_cast<unsigned short>(std::stoi(line.substr(at + 1)));
}

std::string binary() {
  const char* other = std::getenv("NINES_TEST_BINARY");
  return other != nullptr && *other != '\0' ? other : NINES_BINARY;
}

server start_mock(std::vector<std::string> args) {
  std::vector<std::string> argv{binary(), "mock-llm"};
  if (std::find(args.begin(), args.end(), "--listen") == args.end()) {
    argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  server s;
  s.proc = std::make_unique<process>(argv);
  auto line = s.proc->wait_for_output("mock-llm ");
  if (!line || line->find("http://") == std::string::npos) {
    throw std::runtime_error("mock-llm did not start: " + s.proc->output());
  }
  s.port = port_from(*line);
  return s;
}

namespace {

server launch_gateway(std::vector<std::string> argv, const std::string& toml,
                      const std::string& workers_line, std::vector<std::string> extra_args,
                      const std::string& role = "gateway") {
  const auto path = temp_path(".toml");
  const bool own_admin = toml.find("[admin]") != std::string::npos;
  std::ofstream(path) << "[" << role << "]\nlisten = \"127.0.0.1:0\"\n"
                      << workers_line << (own_admin ? "" : "[admin]\nlisten = \"127.0.0.1:0\"\n")
                      << toml;
  argv.insert(argv.end(), {binary(), role, "--config", path});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  server s;
  s.proc = std::make_unique<process>(argv);
  auto admin = s.proc->wait_for_output("nines admin listening on");
  auto line = s.proc->wait_for_output("nines " + role + " listening on");
  if (!line || !admin) {
    throw std::runtime_error(role + " did not start: " + s.proc->output());
  }
  // "listening on http://h:p with ...", "on https://h:p with ...", or "on http://h:p and
  // https://h:p with ...".
  const auto urls = line->substr(0, line->find(" with "));
  const auto tls = urls.find("https://");
  if (tls != std::string::npos) {
    s.tls_port = port_from(urls.substr(tls));
  }
  const auto plain = urls.find("http://");
  if (plain != std::string::npos) {
    s.port = port_from(urls.substr(0, urls.find(" and ")));
  }
  const auto admin_url = admin->substr(0, admin->find(" (admin key"));
  s.admin_port = port_from(admin_url);
  return s;
}

}  // namespace

server start_gateway(const std::string& toml, std::vector<std::string> extra_args) {
  return launch_gateway({}, toml, "workers = 2\n", std::move(extra_args));
}

server start_gateway_with(const std::string& gateway_keys, const std::string& toml,
                          std::vector<std::string> extra_args) {
  return launch_gateway({}, toml, "workers = 2\n" + gateway_keys, std::move(extra_args));
}

server start_edge(const std::string& toml, std::vector<std::string> extra_args) {
  return launch_gateway({}, toml, "workers = 2\n", std::move(extra_args), "edge");
}

server start_gateway_under(std::vector<std::string> launcher, const std::string& toml) {
  return launch_gateway(std::move(launcher), toml, "", {});
}

server start_chaos(std::vector<std::string> args) {
  std::vector<std::string> argv{binary(), "chaos", "--api", "127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  server s;
  s.proc = std::make_unique<process>(argv);
  auto line = s.proc->wait_for_output("nines chaos api listening on");
  if (!line) {
    throw std::runtime_error("chaos did not start: " + s.proc->output());
  }
  s.port = port_from(*line);
  return s;
}

unsigned short add_chaos_proxy(const server& chaos, const std::string& name,
                               unsigned short upstream_port) {
  const auto r =
      http_call(chaos.port, "POST", "/proxies",
                R"({"name":")" + name + R"(","listen":"127.0.0.1:0","upstream":"127.0.0.1:)" +
                    std::to_string(upstream_port) + R"("})");
  if (r.status != 201) {
    throw std::runtime_error("cannot add chaos proxy: " + r.body);
  }
  const auto listen = std::string(json::parse(r.body).as_object().at("listen").as_string());
  return port_from(listen);
}

std::string upstreams_toml(const std::vector<std::string>& urls) {
  std::string out;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    out += "\n[[upstreams]]\nname = \"u" + std::to_string(i) + "\"\nurl = \"" + urls[i] + "/v1\"\n";
  }
  return out;
}

response http_call(unsigned short port, const std::string& method, const std::string& target,
                   const std::string& body, const std::map<std::string, std::string>& headers) {
  return tools::http_call("127.0.0.1", port, method, target, body, headers);
}

std::string raw_exchange(unsigned short port, const std::string& bytes) {
  asio::io_context ctx;
  beast::tcp_stream stream(ctx);
  stream.expires_after(std::chrono::seconds(30));
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(stream, asio::buffer(bytes));
  std::string out;
  char buf[4096];
  beast::error_code ec;
  for (;;) {
    const auto n = stream.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) {
      break;
    }
  }
  return out;
}

stream_reader::stream_reader(unsigned short port, const std::string& target,
                             const std::string& body, bool keep_events,
                             const std::map<std::string, std::string>& headers)
    : stream_(ctx_), keep_(keep_events) {
  stream_.expires_after(std::chrono::seconds(20));
  stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) {
    req.set(k, v);
  }
  req.body() = body;
  req.prepare_payload();
  http::write(stream_, req);
  parser_.body_limit(boost::none);
  http::read_header(stream_, buffer_, parser_);
}

stream_reader::~stream_reader() = default;

bool stream_reader::read_events(std::size_t count) {
  char buf[4096];
  std::vector<core::sse_event> fresh;
  while (count_ < count && !parser_.is_done()) {
    parser_.get().body().data = buf;
    parser_.get().body().size = sizeof buf;
    beast::error_code ec;
    stream_.expires_after(std::chrono::seconds(60));
    http::read_some(stream_, buffer_, parser_, ec);
    if (ec && ec != http::error::need_buffer) {
      return false;
    }
    sse_.feed(std::string_view(buf, sizeof buf - parser_.get().body().size), fresh);
    count_ += fresh.size();
    if (!fresh.empty()) {
      last_ = fresh.back();
    }
    if (keep_) {
      std::move(fresh.begin(), fresh.end(), std::back_inserter(events_));
    }
    fresh.clear();
  }
  return count_ >= count;
}

std::vector<core::sse_event> sse_events(const std::string& body) {
  core::sse_parser p;
  std::vector<core::sse_event> out;
  p.feed(body, out);
  return out;
}

std::string stream_text(const std::vector<core::sse_event>& events) {
  std::string text;
  for (const auto& e : events) {
    if (e.data == "[DONE]") {
      continue;
    }
    auto v = json::parse(e.data);
    const auto& choices = v.as_object().at("choices").as_array();
    if (choices.empty()) {
      continue;
    }
    const auto& c = choices[0].as_object();
    if (const auto* t = c.if_contains("text")) {
      text += t->as_string();
    } else if (const auto* d = c.at("delta").as_object().if_contains("content")) {
      text += d->as_string();
    }
  }
  return text;
}

std::string answer_text(const std::string& body) {
  auto v = json::parse(body);
  const auto& c = v.as_object().at("choices").as_array()[0].as_object();
  if (const auto* t = c.if_contains("text")) {
    return std::string(t->as_string());
  }
  return std::string(c.at("message").as_object().at("content").as_string());
}

std::string expected_answer(const std::string& request_body, bool chat, std::size_t tokens) {
  core::mock_plan plan;
  std::string error;
  if (!core::plan_mock_answer(json::parse(request_body).as_object(), chat, tokens, plan, error)) {
    throw std::runtime_error(error);
  }
  return core::mock_answer_text(plan.seed, plan.first_token, plan.end_token);
}

core::mock_output expected_output(const std::string& request_body, core::mock_api api,
                                  std::size_t thought_tokens, std::size_t tokens) {
  core::mock_plan plan;
  std::string error;
  if (!core::plan_mock_answer(json::parse(request_body).as_object(), api, tokens, thought_tokens,
                              plan, error)) {
    throw std::runtime_error(error);
  }
  return core::mock_output_text(plan);
}

std::string stream_thought(const std::vector<core::sse_event>& events) {
  std::string text;
  for (const auto& e : events) {
    if (e.data == "[DONE]") {
      continue;
    }
    auto v = json::parse(e.data);
    const auto* list = v.as_object().if_contains("choices");
    if (list == nullptr || list->as_array().empty()) {
      continue;  // the usage chunk, or an error event
    }
    const auto* d = list->as_array()[0].as_object().if_contains("delta");
    if (d == nullptr) {
      continue;
    }
    if (const auto* r = d->as_object().if_contains("reasoning_content")) {
      text += r->as_string();
    } else if (const auto* r2 = d->as_object().if_contains("reasoning")) {
      text += r2->as_string();
    }
  }
  return text;
}

std::string breaks_then_continues_toml(const std::string& breaks_url,
                                       const std::string& continues_url,
                                       const std::string& upstream_extra) {
  return "[timeouts]\nstream_idle_ms = 200\n[outlier]\nenabled = false\n"
         "[[upstreams]]\nname = \"breaks\"\nurl = \"" +
         breaks_url + "\"\npriority = 0\n" + upstream_extra +
         "[[upstreams]]\nname = \"continues\"\nurl = \"" + continues_url + "\"\npriority = 1\n" +
         upstream_extra;
}

std::string chat_body(const std::string& prompt, bool stream, const std::string& extra) {
  json::object o{{"model", "mock-model"},
                 {"stream", stream},
                 {"temperature", 0},
                 {"messages", json::array{json::object{{"role", "user"}, {"content", prompt}}}}};
  std::string s = json::serialize(o);
  if (!extra.empty()) {
    s.pop_back();
    s += "," + extra + "}";
  }
  return s;
}

std::uint64_t metric_value(unsigned short port, const std::string& series) {
  const auto body = "\n" + http_call(port, "GET", "/metrics").body;
  const auto at = body.find("\n" + series + " ");
  if (at == std::string::npos) {
    return 0;
  }
  return std::stoull(body.substr(at + series.size() + 2));
}

std::uint64_t mock_stat(unsigned short port, const std::string& key) {
  auto r = http_call(port, "GET", "/mock/stats");
  return json::parse(r.body).as_object().at(key).to_number<std::uint64_t>();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool eventually(const std::function<bool()>& done, milliseconds timeout, milliseconds every) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(every);
  }
  return done();
}

http_recorder::http_recorder(std::vector<unsigned> statuses)
    : acceptor_(ctx_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
      statuses_(std::move(statuses)) {
  thread_ = std::thread([this] { serve(); });
}

http_recorder::~http_recorder() {
  // Wakes the blocked accept (Linux fails it after shutdown of a listening socket); the
  // acceptor itself is closed by its destructor once serve() has returned.
  ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
  thread_.join();
}

std::string http_recorder::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + path;
}

void http_recorder::serve() {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket(ctx_);
    acceptor_.accept(socket, ec);
    if (ec) {
      return;
    }
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::read(socket, buffer, req, ec);
    if (ec) {
      continue;
    }
    received r{std::string(req.method_string()), std::string(req.target()),
               std::string(req[http::field::content_type]), req.body(), 200};
    {
      std::lock_guard lock(mutex_);
      if (requests_.size() < statuses_.size()) {
        r.answered = statuses_[requests_.size()];
      }
      requests_.push_back(r);
    }
    http::response<http::string_body> res{static_cast<http::status>(r.answered), 11};
    res.body() = "{}";
    res.keep_alive(false);
    res.prepare_payload();
    http::write(socket, res, ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
    changed_.notify_all();
  }
}

bool http_recorder::wait_for(std::size_t count, milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= count; });
}

std::vector<http_recorder::received> http_recorder::requests() {
  std::lock_guard lock(mutex_);
  return requests_;
}

}  // namespace nines::test
