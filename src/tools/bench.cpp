#include "tools/bench.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <deque>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "core/obs/latency_histogram.hpp"
#include "core/tools/load_schedule.hpp"
#include "core/tools/mock_model.hpp"
#include "core/http/sse_parser.hpp"
#include "net/asio.hpp"
#include "net/spawn.hpp"
#include "net/wakeup.hpp"

namespace nines::tools {
namespace {

using namespace net;
namespace json = boost::json;
using steady = std::chrono::steady_clock;
using std::chrono::microseconds;

struct prepared_request {
  std::string body;
  std::string expected;  // full answer text when validating
  std::string expected_thought;  // and the thought (reasoning_content or reasoning), if any
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
  if (o.max_tokens >= 0) {
    body["max_tokens"] = o.max_tokens;
  }
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
    core::plan_mock_answer(body, chat ? core::mock_api::chat : core::mock_api::completions,
                           o.answer_tokens, o.thought_tokens, plan, error);
    auto output = core::mock_output_text(plan);
    p.expected = std::move(output.answer);
    p.expected_thought = std::move(output.thought);
  }
  return p;
}

// What one event or one whole answer held.
struct content_read {
  bool ok = true;
  std::string failure;
  bool has_text = false;
};

// Extracts the generated text from one chunk or one whole response.
content_read append_content(std::string_view data, bool chunk, std::string& out,
                            std::string& thought, std::vector<double>* event_delays = nullptr) {
  content_read r;
  // A stack arena: a load generator must not spend its CPU in malloc for every event.
  unsigned char arena[8192];
  json::monotonic_resource resource(arena, sizeof arena);
  json::error_code ec;
  auto v = json::parse(data, ec, &resource);
  if (ec || !v.is_object()) {
    return {false, "invalid JSON in answer", false};
  }
  const auto& o = v.get_object();
  if (const auto* error = o.if_contains("error")) {
    // The gateway's explicit end of a stream it could not complete, or any upstream error object.
    const auto* type = error->is_object() ? error->get_object().if_contains("type") : nullptr;
    return {false,
            "error event: " + (type && type->is_string() ? std::string(type->get_string())
                                                         : std::string("(no type)")),
            false};
  }
  if (const auto* sent = o.if_contains("x_sent_ns"); sent && event_delays && sent->is_int64()) {
    // mock-llm --stamp: the chunk's send time on the same monotonic clock.
    const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         steady::now().time_since_epoch()).count();
    event_delays->push_back(static_cast<double>(now - sent->get_int64()) / 1e6);
  }
  const auto* choices = o.if_contains("choices");
  if (choices == nullptr || !choices->is_array()) {
    return {false, "no choices", false};
  }
  bool r_has_text = false;
  for (const auto& c : choices->get_array()) {
    const auto* co = c.if_object();
    if (co == nullptr) {
      continue;
    }
    const json::value* text = co->if_contains("text");
    if (text == nullptr) {
      const auto* holder = co->if_contains(chunk ? "delta" : "message");
      if (holder && holder->is_object()) {
        const auto& h = holder->get_object();
        text = h.if_contains("content");
        // A reasoning model's thought, in either field name (one, when a server sends both).
        const auto* r = h.if_contains("reasoning_content");
        if (r == nullptr || !r->is_string()) {
          r = h.if_contains("reasoning");
        }
        if (r != nullptr && r->is_string() && !r->get_string().empty()) {
          thought.append(r->get_string());
          r_has_text = true;
        }
      }
    }
    if (text && text->is_string() && !text->get_string().empty()) {
      out.append(text->get_string());
      r.has_text = true;
    }
  }
  r.has_text = r.has_text || r_has_text;
  return r;
}

struct sample {
  bool ok = false;
  unsigned status = 0;
  std::string failure;
};

// The results of a run, recorded as requests finish.
struct bench_results {
  std::size_t sent = 0;
  std::size_t done = 0;
  std::size_t ok = 0;
  std::map<unsigned, std::size_t> statuses;
  std::map<std::string, std::size_t> failures;
  core::latency_histogram ttfb;   // µs: due (or sent) → response header
  core::latency_histogram after_body;  // µs: the request's last byte written → response header
  core::latency_histogram ttft;   // µs: due (or sent) → first event with text (streams)
  core::latency_histogram itl;    // µs: between events with text
  core::latency_histogram total;  // µs: due (or sent) → complete
  std::vector<double> event_delays;
  std::size_t connections_opened = 0;
  std::size_t max_in_flight = 0;
  std::size_t in_flight = 0;
  std::size_t tokens = 0;  // events with text
  std::optional<double> first_failure_s;  // seconds from the start of the run
  std::optional<double> last_failure_s;
};

std::uint64_t micros(steady::duration d) {
  return static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<microseconds>(d).count()));
}

class bench_run {
 public:
  bench_run(const bench_options& o, asio::io_context& ctx)
      : o_(o), ctx_(ctx), schedule_(o.rate), stop_sending_at_(steady::time_point::max()) {}

  bool init();  // false with a message on stderr when the options cannot work
  awaitable<void> run();
  int report(std::ostream& out) const;

 private:
  struct worker_slot {
    explicit worker_slot(asio::io_context& ctx) : wake(ctx.get_executor()) {}
    wakeup wake;
    std::optional<beast::tcp_stream> stream;
  };
  awaitable<void> dispatch();
  awaitable<void> worker(std::shared_ptr<worker_slot> slot);
  awaitable<void> progress();
  awaitable<void> hard_stop();
  // The next request for a worker (index, due time), or nothing when the run is over for it.
  std::optional<std::pair<std::size_t, steady::time_point>> take();
  awaitable<void> perform(worker_slot& slot, std::size_t index, steady::time_point due);
  void spawn_worker();
  void record(const sample& s);
  // Ends the run's timers once nothing is left to send or receive, so that the context returns.
  void finish_if_done();

  const bench_options& o_;
  asio::io_context& ctx_;
  core::load_schedule schedule_;
  std::string host_;
  std::string port_;
  std::string path_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::vector<prepared_request> prepared_;
  std::size_t total_ = 0;  // requests this run will send at most
  steady::time_point start_;
  steady::time_point stop_sending_at_;
  steady::time_point end_;
  std::deque<std::pair<std::size_t, steady::time_point>> pending_;  // open loop: due, not sent
  std::vector<std::shared_ptr<worker_slot>> idle_;
  std::vector<std::weak_ptr<worker_slot>> workers_;
  std::size_t next_ = 0;  // closed loop: the next index to send
  bool dispatch_done_ = false;
  bool stopping_ = false;
  unsigned live_workers_ = 0;
  bench_results results_;
  asio::steady_timer end_timer_{ctx_};
  asio::steady_timer progress_timer_{ctx_};
};

void bench_run::finish_if_done() {
  if (dispatch_done_ && live_workers_ == 0) {
    end_timer_.cancel();
    progress_timer_.cancel();
  }
}

bool bench_run::init() {
  auto url = boost::urls::parse_absolute_uri(o_.url);
  if (!url || url->scheme() != "http") {
    std::cerr << "nines bench: --url must be http://host:port\n";
    return false;
  }
  host_ = std::string(url->host_address());
  port_ = url->has_port() ? std::string(url->port()) : "80";
  path_ = o_.route == "completions" ? "/v1/completions" : "/v1/chat/completions";
  for (const auto& h : o_.headers) {
    const auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0) {
      std::cerr << "nines bench: --header must be \"name: value\", got " << h << "\n";
      return false;
    }
    auto value = h.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    headers_.emplace_back(h.substr(0, colon), value);
  }
  total_ = o_.requests;
  if (o_.rate > 0 && o_.duration > 0) {
    total_ = std::min<std::size_t>(total_, static_cast<std::size_t>(o_.rate * o_.duration));
  }
  const std::string image = o_.image_bytes > 0 ? make_image(o_.image_bytes) : std::string();
  for (std::size_t i = 0; i < std::max<std::size_t>(o_.prompts, 1); ++i) {
    prepared_.push_back(prepare(o_, i, image));
  }
  return true;
}

awaitable<void> bench_run::run() {
  start_ = steady::now();
  end_ = start_ + std::chrono::milliseconds(static_cast<std::int64_t>(o_.max_seconds * 1000));
  if (o_.duration > 0) {
    stop_sending_at_ = start_ + std::chrono::milliseconds(static_cast<std::int64_t>(o_.duration * 1000));
  }
  spawn(ctx_.get_executor(), hard_stop(), "bench hard stop");
  if (o_.progress > 0) {
    spawn(ctx_.get_executor(), progress(), "bench progress");
  }
  if (schedule_.open_loop()) {
    co_await dispatch();
  } else {
    for (unsigned i = 0; i < std::max(o_.connections, 1U); ++i) {
      spawn_worker();
    }
    dispatch_done_ = true;
  }
  finish_if_done();
}

void bench_run::spawn_worker() {
  auto slot = std::make_shared<worker_slot>(ctx_);
  workers_.push_back(slot);
  ++live_workers_;
  spawn(ctx_.get_executor(), worker(slot), "bench worker");
}

awaitable<void> bench_run::dispatch() {
  asio::steady_timer timer(ctx_);
  for (std::size_t i = 0; i < total_ && !stopping_; ++i) {
    const auto due = start_ + schedule_.due(i);
    if (due >= stop_sending_at_) {
      break;
    }
    if (due > steady::now()) {
      timer.expires_at(due);
      co_await timer.async_wait(use_nothrow);
    }
    pending_.emplace_back(i, due);
    if (!idle_.empty()) {
      idle_.back()->wake.notify();
      idle_.pop_back();
    } else if (live_workers_ < std::max(o_.connections, 1U)) {
      spawn_worker();
    }
  }
  dispatch_done_ = true;
  for (auto& slot : idle_) {
    slot->wake.notify();
  }
  idle_.clear();
  finish_if_done();
}

std::optional<std::pair<std::size_t, steady::time_point>> bench_run::take() {
  if (stopping_) {
    return std::nullopt;
  }
  if (schedule_.open_loop()) {
    if (pending_.empty()) {
      return std::nullopt;
    }
    auto next = pending_.front();
    pending_.pop_front();
    return next;
  }
  const auto now = steady::now();
  if (next_ >= total_ || now >= stop_sending_at_) {
    return std::nullopt;
  }
  return std::pair{next_++, now};
}

awaitable<void> bench_run::worker(std::shared_ptr<worker_slot> slot) {
  for (;;) {
    auto next = take();
    if (!next) {
      if (dispatch_done_ || stopping_) {
        break;
      }
      idle_.push_back(slot);
      co_await slot->wake.wait();
      std::erase(idle_, slot);
      continue;
    }
    co_await perform(*slot, next->first, next->second);
  }
  slot->stream.reset();
  --live_workers_;
  finish_if_done();
}

awaitable<void> bench_run::progress() {
  const auto every = std::chrono::milliseconds(static_cast<std::int64_t>(o_.progress * 1000));
  while (!stopping_ && (live_workers_ > 0 || !dispatch_done_)) {
    progress_timer_.expires_after(every);
    if (auto [ec] = co_await progress_timer_.async_wait(use_nothrow); ec) {
      break;
    }
    const std::chrono::duration<double> t = steady::now() - start_;
    std::cerr << fmt::format("[{:6.1f}s] sent {} / {}  done {}  ok {}  failed {}  in flight {}  "
                             "ttft p99 {:.1f} ms\n",
                             t.count(), results_.sent, total_, results_.done, results_.ok,
                             results_.done - results_.ok, results_.in_flight,
                             results_.ttft.value_at_percentile(99) / 1000.0);
  }
}

awaitable<void> bench_run::hard_stop() {
  end_timer_.expires_at(end_);
  if (auto [ec] = co_await end_timer_.async_wait(use_nothrow); ec) {
    co_return;  // the run finished first
  }
  // Whatever is still in flight fails now: the run is bounded in time.
  stopping_ = true;
  for (auto& weak : workers_) {
    if (auto slot = weak.lock(); slot && slot->stream) {
      error_code ignored;
      slot->stream->socket().close(ignored);
    }
    if (auto slot = weak.lock()) {
      slot->wake.notify();
    }
  }
}

void bench_run::record(const sample& s) {
  ++results_.done;
  results_.statuses[s.status]++;
  if (s.ok) {
    ++results_.ok;
  } else {
    results_.failures[s.failure]++;
    const double at = std::chrono::duration<double>(steady::now() - start_).count();
    if (!results_.first_failure_s) {
      results_.first_failure_s = at;
    }
    results_.last_failure_s = at;
  }
}

awaitable<void> bench_run::perform(worker_slot& slot, std::size_t index, steady::time_point due) {
  const auto& prepared = prepared_[index % prepared_.size()];
  auto executor = co_await asio::this_coro::executor;
  ++results_.sent;
  ++results_.in_flight;
  results_.max_in_flight = std::max(results_.max_in_flight, results_.in_flight);
  sample s;
  const auto sent = steady::now();
  const auto origin = schedule_.open_loop() ? due : sent;  // latency counts from here
  auto& stream = slot.stream;
  error_code ec;
  if (!stream) {
    stream.emplace(executor);
    stream->expires_after(std::chrono::seconds(10));
    tcp::resolver resolver(executor);
    auto [rec, results] = co_await resolver.async_resolve(host_, port_, use_nothrow);
    ec = rec;
    if (!ec) {
      auto [cec, ep] = co_await stream->async_connect(results, use_nothrow);
      ec = cec;
    }
    if (ec) {
      s.failure = "connect: " + ec.message();
      stream.reset();
    } else {
      ++results_.connections_opened;
      stream->socket().set_option(tcp::no_delay(true), ec);
      ec = {};
    }
  }
  beast::flat_buffer buffer;
  std::string content;
  std::string thought;
  bool complete = false;
  if (s.failure.empty()) {
    http::request<http::string_body> req{http::verb::post, path_, 11};
    req.set(http::field::host, host_);
    req.set(http::field::content_type, "application/json");
    for (const auto& [k, v] : headers_) {
      req.set(k, v);
    }
    req.body() = prepared.body;
    req.prepare_payload();
    stream->expires_after(std::chrono::milliseconds(static_cast<std::int64_t>(o_.timeout * 1000)));
    error_code wec;
    if (o_.send_rate > 0) {
      // The head, then the body in 64 KiB pieces, each when the rate says (a link's pace).
      std::ostringstream head;
      head << req.base();
      const auto text = head.str();
      auto [hec, hn] = co_await asio::async_write(stream->socket(), asio::buffer(text), use_nothrow);
      wec = hec;
      asio::steady_timer pace(executor);
      const auto start = steady::now();
      const std::string& b = req.body();
      for (std::size_t at = 0; !wec && at < b.size();) {
        const auto n = std::min<std::size_t>(64u << 10, b.size() - at);
        auto [pec, pn] = co_await asio::async_write(stream->socket(), asio::buffer(b.data() + at, n),
                                                    use_nothrow);
        wec = pec;
        at += n;
        pace.expires_at(start + std::chrono::duration_cast<steady::duration>(
                                    std::chrono::duration<double>(static_cast<double>(at) /
                                                                  (o_.send_rate * 1e6))));
        if (at < b.size()) {
          co_await pace.async_wait(use_nothrow);
        }
      }
    } else {
      auto [aec, an] = co_await http::async_write(*stream, req, use_nothrow);
      wec = aec;
    }
    const auto written = steady::now();  // the kernel took the last byte
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    ec = wec;
    if (!ec) {
      auto [hec, hn] = co_await http::async_read_header(*stream, buffer, parser, use_nothrow);
      ec = hec;
    }
    if (!ec) {
      s.status = parser.get().result_int();
      const auto headed = steady::now();
      results_.ttfb.record(micros(headed - origin));
      results_.after_body.record(micros(headed - written));
      const bool sse = parser.get()[http::field::content_type].starts_with("text/event-stream");
      core::sse_parser events_parser;
      std::vector<core::sse_event> events;
      std::string whole;
      char buf[16384];
      std::optional<steady::time_point> last_token;
      while (!parser.is_done()) {
        parser.get().body().data = buf;
        parser.get().body().size = sizeof buf;
        auto [rec, rn] = co_await http::async_read_some(*stream, buffer, parser, use_nothrow);
        if (rec && rec != http::error::need_buffer) {
          ec = rec;
          break;
        }
        const std::size_t got = sizeof buf - parser.get().body().size;
        if (!sse) {
          whole.append(buf, got);
          continue;
        }
        events_parser.feed(std::string_view(buf, got), events);
        const auto now = steady::now();
        for (auto& e : events) {
          if (e.data == "[DONE]") {
            complete = s.failure.empty();
            continue;
          }
          if (!s.failure.empty()) {
            continue;
          }
          const auto read = append_content(e.data, true, content, thought, &results_.event_delays);
          if (!read.ok) {
            s.failure = read.failure;
            complete = false;
          } else if (read.has_text) {
            ++results_.tokens;
            if (!last_token) {
              results_.ttft.record(micros(now - origin));
            } else {
              results_.itl.record(micros(now - *last_token));
            }
            last_token = now;
          }
        }
        events.clear();
      }
      if (!ec && !sse && s.status == 200) {
        const auto read = append_content(whole, false, content, thought);
        complete = read.ok;
        if (!read.ok) {
          s.failure = read.failure;
        } else {
          results_.ttft.record(micros(steady::now() - origin));
        }
      }
      if (stream && !parser.get().keep_alive()) {
        stream.reset();
      }
    }
  }
  if (s.failure.empty() && ec) {
    s.failure = ec == beast::error::timeout ? "timeout" : "connection: " + ec.message();
    if (stopping_) {
      s.failure = "unfinished when the run ended (--max-seconds)";
    }
  }
  if (ec) {
    stream.reset();
  }
  if (!s.failure.empty()) {
    // Recorded as it is.
  } else if (s.status != 200) {
    s.failure = fmt::format("status {}", s.status);
  } else if (!complete) {
    s.failure = "incomplete stream (no [DONE])";
  } else if (o_.validate && content != prepared.expected) {
    s.failure = "wrong content";
  } else if (o_.validate && thought != prepared.expected_thought) {
    s.failure = "wrong thought";
  }
  s.ok = s.failure.empty();
  results_.total.record(micros(steady::now() - origin));
  --results_.in_flight;
  record(s);
}

json::object percentiles_ms(const core::latency_histogram& h) {
  json::object p;
  for (const auto& [name, q] : {std::pair{"p50", 50.0}, std::pair{"p90", 90.0},
                                std::pair{"p99", 99.0}, std::pair{"p99.9", 99.9}}) {
    p[name] = h.value_at_percentile(q) / 1000.0;
  }
  p["max"] = h.max() / 1000.0;
  p["mean"] = h.mean() / 1000.0;
  p["count"] = h.count();
  return p;
}

json::object percentiles_ms(std::vector<double> v) {
  core::latency_histogram h;
  for (double x : v) {
    h.record(static_cast<std::uint64_t>(std::max(0.0, x * 1000.0)));
  }
  return percentiles_ms(h);
}

int bench_run::report(std::ostream& out) const {
  const auto& r = results_;
  const double seconds = std::chrono::duration<double>(steady::now() - start_).count();
  const double success = r.done ? static_cast<double>(r.ok) / static_cast<double>(r.done) : 0.0;
  json::object report;
  if (!o_.label.empty()) {
    report["label"] = o_.label;
  }
  report["requests"] = r.done;
  report["succeeded"] = r.ok;
  report["failed"] = r.done - r.ok;
  report["success_rate"] = success;
  report["seconds"] = seconds;
  report["requests_per_second"] = seconds > 0 ? static_cast<double>(r.done) / seconds : 0.0;
  report["tokens_per_second"] = seconds > 0 ? static_cast<double>(r.tokens) / seconds : 0.0;
  report["open_loop"] = schedule_.open_loop();
  report["rate"] = o_.rate;
  report["connections_opened"] = r.connections_opened;
  report["max_in_flight"] = r.max_in_flight;
  json::object statuses;
  for (const auto& [k, v] : r.statuses) {
    statuses[std::to_string(k)] = v;
  }
  report["statuses"] = std::move(statuses);
  json::object failures;
  for (const auto& [k, v] : r.failures) {
    failures[k] = v;
  }
  report["failures"] = std::move(failures);
  // When the failures happened (seconds from the start), for failover measurements.
  report["first_failure_s"] = r.first_failure_s ? json::value(*r.first_failure_s) : json::value(nullptr);
  report["last_failure_s"] = r.last_failure_s ? json::value(*r.last_failure_s) : json::value(nullptr);
  report["ttfb_ms"] = percentiles_ms(r.ttfb);
  report["after_body_ms"] = percentiles_ms(r.after_body);
  report["ttft_ms"] = percentiles_ms(r.ttft);
  report["itl_ms"] = percentiles_ms(r.itl);
  report["total_ms"] = percentiles_ms(r.total);
  report["event_delay_ms"] = percentiles_ms(r.event_delays);

  out << fmt::format("requests {}  succeeded {}  failed {}  success {:.4f}%  {:.1f} req/s ({})\n",
                     r.done, r.ok, r.done - r.ok, 100.0 * success,
                     seconds > 0 ? static_cast<double>(r.done) / seconds : 0.0,
                     schedule_.open_loop() ? fmt::format("open loop at {} req/s", o_.rate)
                                           : fmt::format("closed loop, {} connections",
                                                         o_.connections));
  out << fmt::format("{:<22}{:>10}{:>10}{:>10}{:>10}{:>10}\n", "latency ms", "p50", "p90", "p99",
                     "p99.9", "max");
  const auto row = [&](const char* name, const core::latency_histogram& h) {
    out << fmt::format("{:<22}{:>10.2f}{:>10.2f}{:>10.2f}{:>10.2f}{:>10.2f}\n", name,
                       h.value_at_percentile(50) / 1000.0, h.value_at_percentile(90) / 1000.0,
                       h.value_at_percentile(99) / 1000.0, h.value_at_percentile(99.9) / 1000.0,
                       h.max() / 1000.0);
  };
  row("time to first byte", r.ttfb);
  row("after the last byte", r.after_body);
  row("time to first token", r.ttft);
  if (o_.stream) {
    row("inter-token", r.itl);
  }
  row("total", r.total);
  if (!r.event_delays.empty()) {
    const auto d = percentiles_ms(r.event_delays);
    out << fmt::format("event delay ms (send to receipt)  p50 {:.3f}  p99 {:.3f}  max {:.3f}\n",
                       d.at("p50").as_double(), d.at("p99").as_double(), d.at("max").as_double());
  }
  std::string statuses_line = "statuses ";
  for (const auto& [k, v] : r.statuses) {
    statuses_line += fmt::format(" {} x {}", k == 0 ? std::string("none") : std::to_string(k), v);
  }
  out << statuses_line << "\n";
  for (const auto& [k, v] : r.failures) {
    out << fmt::format("failure   {} x {}\n", v, k);
  }
  if (!o_.json_path.empty()) {
    std::ofstream(o_.json_path) << json::serialize(report) << "\n";
  }
  return r.ok == r.done && r.done > 0 ? 0 : 1;
}

}  // namespace

void add_bench_options(CLI::App& app, bench_options& o) {
  app.add_option("--url", o.url, "gateway or server base URL (http://host:port)");
  app.add_option("--route", o.route, "chat or completions")->check(CLI::IsMember({"chat", "completions"}));
  app.add_option("--stream", o.stream, "streamed requests (true/false)");
  app.add_option("--rate", o.rate, "requests per second, open loop (0: closed loop)");
  app.add_option("--duration", o.duration, "seconds of sending (with --rate: rate x duration requests)");
  app.add_option("--requests", o.requests, "requests to send at most");
  app.add_option("--connections,--concurrency", o.connections,
                 "most connections at once (closed loop: clients sending back to back)");
  app.add_option("--max-seconds", o.max_seconds, "hard end of the run; requests in flight then fail");
  app.add_option("--timeout", o.timeout, "seconds for one request, streaming included");
  app.add_option("--prompts", o.prompts, "distinct prompts cycled through");
  app.add_option("--image-bytes", o.image_bytes, "base64 image part size per chat request");
  app.add_option("--send-rate", o.send_rate,
                 "MB/s at which each request body is written, in 64 KiB pieces (0: at once)");
  app.add_option("--answer-tokens", o.answer_tokens, "mock-llm --tokens, for validation");
  app.add_option("--thought-tokens", o.thought_tokens,
                 "mock-llm --thought-tokens: the thought is validated too");
  app.add_option("--max-tokens", o.max_tokens, "max_tokens sent with every request");
  app.add_option("--validate", o.validate, "compare content with mock-llm's answer");
  app.add_option("--header", o.headers, "\"name: value\" added to every request (repeatable)");
  app.add_option("--progress", o.progress, "seconds between progress lines on stderr (0: none)");
  app.add_option("--json", o.json_path, "write the report as JSON to this file");
  app.add_option("--label", o.label, "a name for this run in the JSON report");
}

int run_bench(const bench_options& o) {
  asio::io_context ctx{1};
  bench_run run(o, ctx);
  if (!run.init()) {
    return 2;
  }
  std::cerr << "nines bench: started\n";
  spawn(ctx.get_executor(), run.run(), "bench");
  ctx.run();
  return run.report(std::cout);
}

}  // namespace nines::tools
