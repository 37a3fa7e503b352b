#include "harness.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <spawn.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/mock_model.hpp"

extern char** environ;

namespace nines::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

process::process(std::vector<std::string> args) {
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
    throw std::runtime_error("cannot start " + args[0]);
  }
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  readers_.emplace_back([this, fd = out[0]] { reader(fd); });
  readers_.emplace_back([this, fd = err[0]] { reader(fd); });
}

process::~process() {
  if (!exit_code_) {
    ::kill(pid_, SIGKILL);
    wait_exit(milliseconds(10000));
  }
  for (auto& t : readers_) {
    t.join();
  }
}

void process::reader(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    std::lock_guard lock(mutex_);
    // Keep a bounded tail: a gateway's access log under load is long.
    output_.append(buf, static_cast<std::size_t>(n));
    if (output_.size() > (8u << 20)) {
      output_.erase(0, output_.size() - (4u << 20));
    }
    changed_.notify_all();
  }
  ::close(fd);
}

std::optional<std::string> process::wait_for_output(const std::string& text, milliseconds timeout) {
  std::unique_lock lock(mutex_);
  std::optional<std::string> line;
  changed_.wait_for(lock, timeout, [&] {
    const auto at = output_.find(text);
    if (at == std::string::npos) {
      return false;
    }
    const auto begin = output_.rfind('\n', at);
    const auto end = output_.find('\n', at);
    line = output_.substr(begin == std::string::npos ? 0 : begin + 1,
                          end == std::string::npos ? std::string::npos
                                                   : end - (begin == std::string::npos ? 0 : begin + 1));
    return true;
  });
  return line;
}

std::string process::output() {
  std::lock_guard lock(mutex_);
  return output_;
}

void process::signal(int signo) { ::kill(pid_, signo); }

std::optional<int> process::wait_exit(milliseconds timeout) {
  if (exit_code_) {
    return exit_code_;
  }
  // A pidfd becomes readable when the child exits: an event to wait on, not a polling loop.
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (fd >= 0) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
    ::close(fd);
    if (ready <= 0) {
      return std::nullopt;
    }
  }
  int status = 0;
  if (::waitpid(pid_, &status, 0) != pid_) {
    return std::nullopt;
  }
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

namespace {

unsigned short port_from(const std::string& line) {
  const auto at = line.rfind(':');
  return static_cast<unsigned short>(std::stoi(line.substr(at + 1)));
}

std::string temp_path(const std::string& suffix) {
  static int counter = 0;
  return "/tmp/nines-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + suffix;
}

}  // namespace

server start_mock(std::vector<std::string> args) {
  std::vector<std::string> argv{NINES_BINARY, "mock-llm"};
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

server start_gateway(const std::string& toml, std::vector<std::string> extra_args) {
  const auto path = temp_path(".toml");
  std::ofstream(path) << "[gateway]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n" << toml;
  std::vector<std::string> argv{NINES_BINARY, "gateway", "--config", path};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  server s;
  s.proc = std::make_unique<process>(argv);
  auto line = s.proc->wait_for_output("nines gateway listening on");
  if (!line) {
    throw std::runtime_error("gateway did not start: " + s.proc->output());
  }
  s.port = port_from(line->substr(0, line->find(" with ")));
  return s;
}

std::string upstreams_toml(const std::vector<std::string>& urls) {
  std::string out;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    out += "\n[[upstreams]]\nname = \"u" + std::to_string(i) + "\"\nurl = \"" + urls[i] +
           "/v1\"\n";
  }
  return out;
}

response http_call(unsigned short port, const std::string& method, const std::string& target,
                   const std::string& body, const std::map<std::string, std::string>& headers) {
  asio::io_context ctx;
  beast::tcp_stream stream(ctx);
  stream.expires_after(std::chrono::seconds(60));
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
  }
  for (const auto& [k, v] : headers) {
    req.set(k, v);
  }
  req.body() = body;
  req.prepare_payload();
  beast::error_code ec;
  // A server may answer (413) and stop reading before the body is sent: read the answer anyway.
  http::write(stream, req, ec);
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> holder;
  do {
    holder.emplace();
    holder->body_limit(boost::none);
    http::read(stream, buffer, *holder, ec);
  } while (!ec && holder->get().result_int() / 100 == 1);  // skip 100 Continue
  auto& parser = *holder;
  response r;
  r.status = parser.get().result_int();
  for (const auto& h : parser.get()) {
    std::string name(h.name_string());
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    r.headers[name] = std::string(h.value());
  }
  r.body = parser.get().body();
  r.complete = !ec && parser.is_done();
  return r;
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

stream_reader::stream_reader(unsigned short port, const std::string& target, const std::string& body,
                             bool keep_events)
    : stream_(ctx_), keep_(keep_events) {
  stream_.expires_after(std::chrono::seconds(20));
  stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
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

std::uint64_t mock_stat(unsigned short port, const std::string& key) {
  auto r = http_call(port, "GET", "/mock/stats");
  return json::parse(r.body).as_object().at(key).to_number<std::uint64_t>();
}

}  // namespace nines::test
