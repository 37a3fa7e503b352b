#include "tools/agent_sim.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "core/codec/base64.hpp"
#include "core/devices/adb_wire.hpp"
#include "core/http/sse_parser.hpp"
#include "core/tools/mock_model.hpp"
#include "devices/adb_client.hpp"
#include "tools/adb_host_calls.hpp"
#include "tools/http_client.hpp"

namespace nines::tools {

namespace json = boost::json;
using clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t max_reasons = 32;   // distinct failure reasons kept; the rest are "other"
constexpr std::size_t max_examples = 20;  // failed steps described in full
constexpr std::string_view png_signature = "\x89PNG\r\n\x1a\n";

struct step_result {
  std::size_t step = 0;
  std::size_t phone = 0;
  bool ok = false;
  std::string hop;  // "adb screencap", "adb pull", "chat", "adb tap", "tap"
  std::string reason;
  double ms = 0;
  double at_s = 0;  // when the step began, since the run's start
};

// Words from a server or a phone, fit for one line of the report.
std::string short_words(std::string_view s) {
  return devices::printable_words(s.substr(0, 96));
}

// The chat request of a step, and the answer mock-llm gives it.
struct chat_request {
  std::string body;
  std::string expected;
};

chat_request make_chat(const agent_sim_options& o, std::size_t step, const std::string& serial,
                       std::string_view screenshot) {
  json::object body;
  body["model"] = o.model;
  body["stream"] = true;
  body["temperature"] = 0;
  json::array content;
  content.push_back(json::object{
      {"type", "text"},
      {"text",
       fmt::format("Step {} on {}: the screen is attached. What do you tap next?", step, serial)}});
  content.push_back(json::object{
      {"type", "image_url"},
      {"image_url",
       json::object{{"url", "data:image/png;base64," + core::base64_encode(screenshot)}}}});
  body["messages"] = json::array{json::object{{"role", "user"}, {"content", std::move(content)}}};
  chat_request r;
  core::mock_plan plan;
  std::string error;
  core::plan_mock_answer(body, core::mock_api::chat, o.answer_tokens, 0, plan, error);
  r.expected = core::mock_output_text(plan).answer;
  r.body = json::serialize(body);
  return r;
}

// Empty when the streamed answer is exactly `expected`; why not otherwise.
std::string check_stream(const http_result& answer, const std::string& expected) {
  if (answer.status == 0) {
    return "no answer: " + short_words(answer.error);
  }
  if (answer.status != 200) {
    std::string what;
    boost::system::error_code ec;
    const auto v = json::parse(answer.body, ec);
    if (!ec && v.is_object() && v.as_object().contains("error") &&
        v.as_object().at("error").is_object()) {
      const auto& e = v.as_object().at("error").as_object();
      if (const auto* t = e.if_contains("type"); t != nullptr && t->is_string()) {
        what = std::string(t->as_string());
      }
    }
    return fmt::format("HTTP {}{}", answer.status, what.empty() ? "" : " (" + what + ")");
  }
  core::sse_parser parser(4 << 20);
  std::vector<core::sse_event> events;
  if (parser.feed(answer.body, events) != core::sse_error::none) {
    return "an event too large";
  }
  std::string text;
  bool done = false;
  for (const auto& e : events) {
    if (done) {
      return "events after [DONE]";
    }
    if (e.data == "[DONE]") {
      done = true;
      continue;
    }
    boost::system::error_code ec;
    const auto v = json::parse(e.data, ec);
    if (ec || !v.is_object()) {
      return "an event that is not JSON";
    }
    const auto& chunk = v.as_object();
    if (const auto* err = chunk.if_contains("error")) {
      std::string type = "error";
      if (err->is_object()) {
        if (const auto* t = err->as_object().if_contains("type"); t != nullptr && t->is_string()) {
          type = std::string(t->as_string());
        }
      }
      return "error event (" + short_words(type) + ")";
    }
    const auto* choices = chunk.if_contains("choices");
    if (choices == nullptr || !choices->is_array() || choices->as_array().empty()) {
      continue;  // a usage chunk, say
    }
    const auto& choice = choices->as_array().front();
    if (!choice.is_object()) {
      return "a choice that is not an object";
    }
    const auto* delta = choice.as_object().if_contains("delta");
    if (delta != nullptr && delta->is_object()) {
      if (const auto* c = delta->as_object().if_contains("content");
          c != nullptr && c->is_string()) {
        text.append(c->as_string().data(), c->as_string().size());
      }
    }
  }
  if (!answer.complete) {
    return "the stream broke: " + short_words(answer.error);
  }
  if (!done) {
    return "no [DONE]";
  }
  if (text != expected) {
    return "a wrong answer";
  }
  return {};
}

class simulation {
 public:
  explicit simulation(const agent_sim_options& o) : o_(o) {}

  bool parse_url(std::string& why) {
    constexpr std::string_view scheme = "http://";
    std::string_view u = o_.chat_url;
    if (!u.starts_with(scheme)) {
      why = "--chat wants http://HOST:PORT";
      return false;
    }
    u.remove_prefix(scheme.size());
    if (const auto slash = u.find('/'); slash != std::string_view::npos) {
      u = u.substr(0, slash);
    }
    const auto colon = u.rfind(':');
    unsigned port = 0;
    if (colon == std::string_view::npos ||
        std::sscanf(std::string(u.substr(colon + 1)).c_str(), "%5u", &port) != 1 || port == 0 ||
        port > 65535) {
      why = "--chat wants http://HOST:PORT";
      return false;
    }
    host_ = std::string(u.substr(0, colon));
    port_ = static_cast<unsigned short>(port);
    return true;
  }

  void run() {
    start_ = clock::now();
    end_ = start_ + std::chrono::duration_cast<clock::duration>(
                        std::chrono::duration<double>(o_.max_seconds));
    std::vector<std::thread> agents;
    for (std::size_t i = 0; i < o_.phones.size(); ++i) {
      agents.emplace_back([this, i] { agent(i); });
    }
    for (auto& a : agents) {
      a.join();
    }
    elapsed_s_ = std::chrono::duration<double>(clock::now() - start_).count();
  }

  // Each successful step's tap must be in the phones' record exactly once.
  void check_taps() {
    std::ifstream in(o_.tap_log);
    if (!in) {
      tap_log_problem_ = "cannot read " + o_.tap_log;
      return;
    }
    std::map<std::string, int> seen;  // "SERIAL X Y" → times
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("tap ")) {
        ++seen[line.substr(4)];
      }
    }
    for (auto& r : results_) {
      const auto key = fmt::format("{} {} {}", o_.phones[r.phone], r.step, r.phone + 1);
      const auto it = seen.find(key);
      const int times = it == seen.end() ? 0 : it->second;
      if (times > 1) {
        ++repeated_taps_;
      }
      if (r.ok && times != 1) {
        r.ok = false;
        r.hop = "tap";
        r.reason = times == 0 ? "adb said done, the phone never got it" : "landed twice";
      }
    }
  }

  int report() {
    std::vector<double> ms;
    std::map<std::string, std::size_t> failures;
    std::vector<const step_result*> examples;
    for (const auto& r : results_) {
      if (r.ok) {
        ms.push_back(r.ms);
        continue;
      }
      auto key = r.hop + ": " + r.reason;
      if (!failures.contains(key) && failures.size() >= max_reasons) {
        key = r.hop + ": other";
      }
      ++failures[key];
      if (examples.size() < max_examples) {
        examples.push_back(&r);
      }
    }
    std::sort(ms.begin(), ms.end());
    const auto pct = [&ms](double p) {
      if (ms.empty()) {
        return 0.0;
      }
      const auto i = static_cast<std::size_t>(std::ceil(p * static_cast<double>(ms.size())));
      return ms[std::min(ms.size() - 1, i == 0 ? 0 : i - 1)];
    };
    const std::size_t steps = results_.size();
    const double rate =
        steps == 0 ? 0 : static_cast<double>(ms.size()) / static_cast<double>(steps);
    std::cout << fmt::format("{}: {} phones, {} of {} steps run in {:.1f} s\n", o_.label,
                             o_.phones.size(), steps, o_.steps, elapsed_s_);
    std::cout << fmt::format("  succeeded   {} ({:.4f}%; objective {:.2f}%)\n", ms.size(),
                             rate * 100, o_.objective * 100);
    std::cout << fmt::format("  step time   p50 {:.0f} ms, p99 {:.0f} ms, max {:.0f} ms\n",
                             pct(0.5), pct(0.99), ms.empty() ? 0.0 : ms.back());
    if (o_.tap_log.empty()) {
      std::cout << "  taps        not checked against the phones (no --tap-log)\n";
    } else if (!tap_log_problem_.empty()) {
      std::cout << "  taps        not checked: " << tap_log_problem_ << "\n";
    } else {
      std::cout << fmt::format(
          "  taps        checked against the phones' record; {} landed "
          "more than once\n",
          repeated_taps_);
    }
    for (const auto& [what, n] : failures) {
      std::cout << fmt::format("  failed      {:>6}  {}\n", n, what);
    }
    for (const auto* r : examples) {
      std::cout << fmt::format("  e.g. step {} on {} at {:.2f} s: {}: {}\n", r->step,
                               o_.phones[r->phone], r->at_s, r->hop, r->reason);
    }
    if (!o_.json_path.empty()) {
      json::object f;
      for (const auto& [what, n] : failures) {
        f[what] = n;
      }
      const json::object doc{{"label", o_.label},
                             {"phones", o_.phones.size()},
                             {"steps", steps},
                             {"succeeded", ms.size()},
                             {"success_rate", rate},
                             {"p50_ms", pct(0.5)},
                             {"p99_ms", pct(0.99)},
                             {"max_ms", ms.empty() ? 0.0 : ms.back()},
                             {"seconds", elapsed_s_},
                             {"taps_checked", !o_.tap_log.empty() && tap_log_problem_.empty()},
                             {"repeated_taps", repeated_taps_},
                             {"failures", std::move(f)}};
      std::ofstream(o_.json_path) << json::serialize(doc) << "\n";
    }
    // A tap that landed twice fails the run whatever the rate: it is the one fault an agent
    // cannot see.
    const bool met = steps == o_.steps && rate >= o_.objective && tap_log_problem_.empty() &&
                     repeated_taps_ == 0;
    return met ? 0 : 1;
  }

 private:
  void agent(std::size_t phone) {
    const auto& serial = o_.phones[phone];
    const std::chrono::milliseconds adb_timeout(o_.adb_timeout_ms);
    for (;;) {
      const std::size_t step = next_step_.fetch_add(1) + 1;
      if (step > o_.steps || clock::now() >= end_) {
        return;
      }
      step_result r;
      r.step = step;
      r.phone = phone;
      const auto began = clock::now();
      r.at_s = std::chrono::duration<double>(began - start_).count();
      const auto fail = [&r](std::string hop, std::string reason) {
        r.hop = std::move(hop);
        r.reason = std::move(reason);
      };
      const auto shot =
          adb_shell(o_.adb_port, serial, "screencap -p " + o_.screen_path, adb_timeout);
      if (!shot.ok || !shot.output.empty()) {
        fail("adb screencap", shot.ok ? "printed " + short_words(shot.output) : shot.error);
      } else if (const auto pulled = adb_pull(o_.adb_port, serial, o_.screen_path, adb_timeout,
                                              o_.screenshot_bytes);
                 !pulled.ok || pulled.output.size() != o_.screenshot_bytes ||
                 !pulled.output.starts_with(png_signature)) {
        fail("adb pull", pulled.ok
                             ? fmt::format("{} bytes, not a whole screenshot", pulled.output.size())
                             : pulled.error);
      } else {
        const auto chat = make_chat(o_, step, serial, pulled.output);
        const auto answer =
            http_call(host_, port_, "POST", "/v1/chat/completions", chat.body,
                      {{"content-type", "application/json"}, {"accept", "text/event-stream"}},
                      std::chrono::milliseconds(o_.chat_timeout_ms));
        if (auto why = check_stream(answer, chat.expected); !why.empty()) {
          fail("chat", std::move(why));
        } else {
          const auto tap = adb_shell(o_.adb_port, serial,
                                     fmt::format("input tap {} {}", step, phone + 1), adb_timeout);
          if (!tap.ok || !tap.output.empty()) {
            fail("adb tap", tap.ok ? "printed " + short_words(tap.output) : tap.error);
          } else {
            r.ok = true;
          }
        }
      }
      r.ms = std::chrono::duration<double, std::milli>(clock::now() - began).count();
      // The agent's own work between steps (reading the answer, planning): a step, failed or
      // not, takes at least this long, so that an agent whose phone is gone does not race
      // through its share of the steps in milliseconds.
      std::this_thread::sleep_until(began + std::chrono::milliseconds(o_.min_step_ms));
      if (!r.ok) {
        r.reason = short_words(r.reason);
      }
      std::lock_guard lock(mutex_);
      results_.push_back(std::move(r));
    }
  }

  const agent_sim_options& o_;
  std::string host_;
  unsigned short port_ = 0;
  clock::time_point start_;
  clock::time_point end_;
  double elapsed_s_ = 0;
  std::atomic<std::size_t> next_step_{0};
  std::mutex mutex_;
  std::vector<step_result> results_;
  std::string tap_log_problem_;
  std::size_t repeated_taps_ = 0;
};

}  // namespace

int run_agent_sim(const agent_sim_options& o) {
  std::string why;
  if (o.phones.empty()) {
    why = "at least one --phone";
  }
  std::set<std::string> unique;
  for (const auto& p : o.phones) {
    if (!core::valid_adb_serial(p) || !unique.insert(p).second) {
      why = "--phone " + short_words(p) + " is not a serial, or is given twice";
    }
  }
  simulation sim(o);
  if (why.empty()) {
    sim.parse_url(why);
  }
  if (!why.empty()) {
    std::cerr << "nines agent-sim: " << why << "\n";
    return 2;
  }
  sim.run();
  if (!o.tap_log.empty()) {
    sim.check_taps();
  }
  return sim.report();
}

}  // namespace nines::tools
