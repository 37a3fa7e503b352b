#include "tools/bench.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <map>

#include "core/mock_model.hpp"
#include "core/sse_parser.hpp"
#include "net/asio.hpp"

namespace nines::tools {
namespace {

using namespace net;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

struct sample {
  bool ok = false;
  unsigned status = 0;
  std::string failure;
  double ttfb_ms = 0;
  double total_ms = 0;
};

struct prepared_request {
  std::string body;
  std::string expected;  // full answer text when validating
};

struct bench_run {
  const bench_options& options;
  std::string host;
  std::string port;
  std::string path;
  std::vector<prepared_request> prepared;
  std::size_t next = 0;
  steady::time_point stop_at;
  std::vector<sample> samples;
  std::vector<double> event_delays;  // ms from mock-llm's send to our receipt (with --stamp)
};

std::string make_image(std::size_t bytes) {
  std::string s = "data:image/png;base64,";
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (std::size_t i = 0; i < bytes; ++i) {
    s.push_back(alphabet[(i * 2654435761u >> 7) % 64]);
  }
  return s;
}

prepared_request prepare(const bench_options& o, std::size_t index, const std::string& image) {
  json::object body;
  body["model"] = "mock-model";
  body["stream"] = o.stream;
  body["temperature"] = 0;
  const std::string text = fmt::format("Step {}: what should the agent tap next?", index);
  const bool chat = o.route != "completions";
  if (chat) {
    json::value content = json::string(text);
    if (!image.empty()) {
      content = json::array{json::object{{"type", "text"}, {"text", text}},
                            json::object{{"type", "image_url"},
                                         {"image_url", json::object{{"url", image}}}}};
    }
    body["messages"] = json::array{json::object{{"role", "user"}, {"content", content}}};
  } else {
    body["prompt"] = text;
  }
  prepared_request p;
  p.body = json::serialize(body);
  if (o.validate) {
    core::mock_plan plan;
    std::string error;
    core::plan_mock_answer(body, chat, o.answer_tokens, plan, error);
    p.expected = core::mock_answer_text(plan.seed, plan.first_token, plan.end_token);
  }
  return p;
}

// Extracts the generated text from one chunk or one whole response.
bool append_content(std::string_view data, bool chunk, std::string& out, std::string& error,
                    std::vector<double>* event_delays = nullptr) {
  // A stack arena: a load generator must not spend its CPU in malloc for every event.
  unsigned char arena[8192];
  json::monotonic_resource resource(arena, sizeof arena);
  json::error_code ec;
  auto v = json::parse(data, ec, &resource);
  if (ec || !v.is_object()) {
    error = "invalid JSON in answer";
    return false;
  }
  const auto& o = v.get_object();
  if (o.contains("error")) {
    error = "error event: " + json::serialize(o.at("error")).substr(0, 200);
    return false;
  }
  if (const auto* sent = o.if_contains("x_sent_ns"); sent && event_delays && sent->is_int64()) {
    // mock-llm --stamp: the chunk's send time on the same monotonic clock.
    const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         steady::now().time_since_epoch()).count();
    event_delays->push_back(static_cast<double>(now - sent->get_int64()) / 1e6);
  }
  const auto* choices = o.if_contains("choices");
  if (choices == nullptr || !choices->is_array()) {
    error = "no choices";
    return false;
  }
  for (const auto& c : choices->get_array()) {
    const auto* co = c.if_object();
    if (co == nullptr) {
      continue;
    }
    const json::value* text = co->if_contains("text");
    if (text == nullptr) {
      const auto* holder = co->if_contains(chunk ? "delta" : "message");
      if (holder && holder->is_object()) {
        text = holder->get_object().if_contains("content");
      }
    }
    if (text && text->is_string()) {
      out.append(text->get_string());
    }
  }
  return true;
}

awaitable<void> client_loop(bench_run& run) {
  auto executor = co_await asio::this_coro::executor;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  while (run.next < run.options.requests && steady::now() < run.stop_at) {
    const auto& prepared = run.prepared[run.next % run.prepared.size()];
    ++run.next;
    sample s;
    const auto start = steady::now();
    if (!stream) {
      stream.emplace(executor);
      stream->expires_after(std::chrono::seconds(10));
      tcp::resolver resolver(executor);
      auto [rec, results] = co_await resolver.async_resolve(run.host, run.port, use_nothrow);
      error_code ec = rec;
      if (!ec) {
        auto [cec, ep] = co_await stream->async_connect(results, use_nothrow);
        ec = cec;
      }
      if (ec) {
        s.failure = "connect: " + ec.message();
        s.total_ms = std::chrono::duration<double, std::milli>(steady::now() - start).count();
        run.samples.push_back(s);
        stream.reset();
        continue;
      }
      stream->socket().set_option(tcp::no_delay(true));
      buffer.clear();
    }
    http::request<http::string_body> req{http::verb::post, run.path, 11};
    req.set(http::field::host, run.host);
    req.set(http::field::content_type, "application/json");
    req.body() = prepared.body;
    req.prepare_payload();
    stream->expires_after(std::chrono::seconds(120));
    auto [wec, wn] = co_await http::async_write(*stream, req, use_nothrow);
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    error_code ec = wec;
    if (!ec) {
      auto [hec, hn] = co_await http::async_read_header(*stream, buffer, parser, use_nothrow);
      ec = hec;
    }
    std::string content;
    bool complete = false;
    if (!ec) {
      s.status = parser.get().result_int();
      s.ttfb_ms = std::chrono::duration<double, std::milli>(steady::now() - start).count();
      const bool sse = parser.get()[http::field::content_type].starts_with("text/event-stream");
      core::sse_parser events_parser;
      std::vector<core::sse_event> events;
      std::string whole;
      char buf[16384];
      while (!parser.is_done()) {
        parser.get().body().data = buf;
        parser.get().body().size = sizeof buf;
        auto [rec, rn] = co_await http::async_read_some(*stream, buffer, parser, use_nothrow);
        if (rec && rec != http::error::need_buffer) {
          ec = rec;
          break;
        }
        const std::size_t got = sizeof buf - parser.get().body().size;
        if (sse) {
          events_parser.feed(std::string_view(buf, got), events);
          for (auto& e : events) {
            if (e.data == "[DONE]") {
              complete = true;
            } else if (s.failure.empty() &&
                       !append_content(e.data, true, content, s.failure, &run.event_delays)) {
              complete = false;
            }
          }
          events.clear();
        } else {
          whole.append(buf, got);
        }
      }
      if (!ec && !sse && s.status == 200) {
        complete = append_content(whole, false, content, s.failure);
      }
    }
    if (ec) {
      s.failure = "connection: " + ec.message();
      stream.reset();
    } else if (s.status != 200) {
      s.failure = fmt::format("status {}", s.status);
    } else if (!complete && s.failure.empty()) {
      s.failure = "incomplete stream (no [DONE])";
    } else if (s.failure.empty() && run.options.validate && content != prepared.expected) {
      s.failure = "wrong content";
    }
    s.ok = s.failure.empty();
    if (stream && !parser.get().keep_alive()) {
      stream.reset();
    }
    s.total_ms = std::chrono::duration<double, std::milli>(steady::now() - start).count();
    run.samples.push_back(std::move(s));
  }
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::min<double>(v.size() - 1, p / 100.0 * v.size()));
  return v[i];
}

}  // namespace

void add_bench_options(CLI::App& app, bench_options& o) {
  app.add_option("--url", o.url, "gateway or server base URL (http://host:port)");
  app.add_option("--route", o.route, "chat or completions")->check(CLI::IsMember({"chat", "completions"}));
  app.add_option("--stream", o.stream, "streamed requests (true/false)");
  app.add_option("--requests", o.requests, "requests to send in all");
  app.add_option("--concurrency", o.concurrency, "connections sending at once");
  app.add_option("--max-seconds", o.max_seconds, "stop sending after this long");
  app.add_option("--prompts", o.prompts, "distinct prompts cycled through");
  app.add_option("--image-bytes", o.image_bytes, "base64 image part size per chat request");
  app.add_option("--answer-tokens", o.answer_tokens, "mock-llm --tokens, for validation");
  app.add_option("--validate", o.validate, "compare content with mock-llm's answer");
  app.add_option("--json", o.json_path, "write the report as JSON to this file");
}

int run_bench(const bench_options& o) {
  auto url = boost::urls::parse_absolute_uri(o.url);
  if (!url || url->scheme() != "http") {
    std::cerr << "nines bench: --url must be http://host:port\n";
    return 2;
  }
  asio::io_context ctx{1};
  bench_run run{o, std::string(url->host_address()), url->has_port() ? std::string(url->port()) : "80",
                o.route == "completions" ? "/v1/completions" : "/v1/chat/completions", {}, 0,
                steady::now() + std::chrono::milliseconds(static_cast<long>(o.max_seconds * 1000)),
                {}, {}};
  const std::string image = o.image_bytes > 0 ? make_image(o.image_bytes) : std::string();
  for (std::size_t i = 0; i < std::max<std::size_t>(o.prompts, 1); ++i) {
    run.prepared.push_back(prepare(o, i, image));
  }
  run.samples.reserve(o.requests);
  const auto start = steady::now();
  for (unsigned i = 0; i < std::max(o.concurrency, 1U); ++i) {
    asio::co_spawn(ctx, client_loop(run), asio::detached);
  }
  ctx.run();
  const double seconds = std::chrono::duration<double>(steady::now() - start).count();

  std::size_t ok = 0;
  std::map<std::string, std::size_t> failures;
  std::map<unsigned, std::size_t> statuses;
  std::vector<double> ttfb, total;
  for (const auto& s : run.samples) {
    ok += s.ok ? 1 : 0;
    statuses[s.status]++;
    if (!s.ok) {
      failures[s.failure]++;
    }
    if (s.status != 0) {
      ttfb.push_back(s.ttfb_ms);
    }
    total.push_back(s.total_ms);
  }
  const std::size_t sent = run.samples.size();
  json::object report;
  report["requests"] = sent;
  report["succeeded"] = ok;
  report["failed"] = sent - ok;
  report["success_rate"] = sent ? static_cast<double>(ok) / sent : 0.0;
  report["seconds"] = seconds;
  report["requests_per_second"] = seconds > 0 ? sent / seconds : 0.0;
  json::object status_obj;
  for (auto& [k, v] : statuses) {
    status_obj[std::to_string(k)] = v;
  }
  report["statuses"] = std::move(status_obj);
  json::object failure_obj;
  for (auto& [k, v] : failures) {
    failure_obj[k] = v;
  }
  report["failures"] = std::move(failure_obj);
  for (auto [name, values] : {std::pair{"ttfb_ms", &ttfb}, std::pair{"total_ms", &total},
                              std::pair{"event_delay_ms", &run.event_delays}}) {
    json::object p;
    for (double q : {50.0, 90.0, 99.0, 99.9, 100.0}) {
      p[q == 100.0 ? std::string("max") : fmt::format("p{}", q)] = percentile(*values, q);
    }
    report[name] = std::move(p);
  }
  std::cout << fmt::format("requests {}  succeeded {}  failed {}  success {:.4f}%  {:.1f} req/s\n",
                           sent, ok, sent - ok, sent ? 100.0 * ok / sent : 0.0,
                           seconds > 0 ? sent / seconds : 0.0);
  std::cout << fmt::format("ttfb ms   p50 {:.2f}  p90 {:.2f}  p99 {:.2f}  max {:.2f}\n",
                           percentile(ttfb, 50), percentile(ttfb, 90), percentile(ttfb, 99),
                           percentile(ttfb, 100));
  std::cout << fmt::format("total ms  p50 {:.2f}  p90 {:.2f}  p99 {:.2f}  max {:.2f}\n",
                           percentile(total, 50), percentile(total, 90), percentile(total, 99),
                           percentile(total, 100));
  if (!run.event_delays.empty()) {
    std::cout << fmt::format("event delay ms (send to receipt)  p50 {:.3f}  p99 {:.3f}  max {:.3f}\n",
                             percentile(run.event_delays, 50), percentile(run.event_delays, 99),
                             percentile(run.event_delays, 100));
  }
  for (auto& [k, v] : failures) {
    std::cout << fmt::format("failure   {} x {}\n", v, k);
  }
  if (!o.json_path.empty()) {
    std::ofstream(o.json_path) << json::serialize(report) << "\n";
  }
  return ok == sent && sent > 0 ? 0 : 1;
}

}  // namespace nines::tools
