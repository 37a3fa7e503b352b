#include "gateway/alert_notifier.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "net/spawn.hpp"
#include "net/one_shot_request.hpp"

namespace nines::gateway {
namespace {

using namespace net;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     ms.count() % 1000);
}

obs::counter& notifications(obs::registry& metrics, const char* result) {
  return metrics.counter_of("nines_alert_notifications_total",
                            "Alert notifications to webhooks: delivered, failed (after every "
                            "attempt), retried (attempts after a failed one).",
                            {{"result", result}});
}

std::string fingerprint(const std::string& key) {
  return fmt::format("{:016x}", std::hash<std::string>{}(key));
}

}  // namespace

std::string alertmanager_message(const core::alert& a, std::string_view external_url,
                                 std::chrono::system_clock::time_point now) {
  json::object labels;
  for (const auto& [k, v] : a.labels) {
    labels[k] = v;
  }
  const auto started = now - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                 steady::now() - a.since);
  const std::string status = a.firing ? "firing" : "resolved";
  json::object one{{"status", status},
                   {"labels", labels},
                   {"annotations", json::object{{"summary", a.summary}}},
                   {"startsAt", rfc3339(started)},
                   {"endsAt", a.firing ? std::string("0001-01-01T00:00:00Z") : rfc3339(now)},
                   {"generatorURL", std::string(external_url) + "/dashboard"},
                   {"fingerprint", fingerprint(a.key())}};
  json::object message{{"version", "4"},
                       {"status", status},
                       {"receiver", "nines"},
                       {"groupKey", a.key()},
                       {"truncatedAlerts", 0},
                       {"alerts", json::array{std::move(one)}},
                       {"groupLabels", json::object{{"alertname", a.name}}},
                       {"commonLabels", labels},
                       {"commonAnnotations", json::object{{"summary", a.summary}}},
                       {"externalURL", std::string(external_url)}};
  return json::serialize(message);
}

alert_notifier::alert_notifier(asio::io_context& context, const core::alerting_config& config,
                               obs::registry& metrics, unsigned shard, std::string external_url)
    : context_(context), config_(config), shard_(shard), external_url_(std::move(external_url)),
      delivered_(notifications(metrics, "delivered")),
      failed_(notifications(metrics, "failed")),
      retried_(notifications(metrics, "retried")) {}

void alert_notifier::changed(const std::vector<core::alert>& changes) {
  for (const auto& a : changes) {
    if (a.firing) {
      spdlog::warn("alert {} firing: {}", a.key(), a.summary);
    } else {
      spdlog::info("alert {} resolved: {}", a.key(), a.summary);
    }
    send(a);
  }
}

void alert_notifier::still_firing(const std::vector<core::alert>& firing, steady::time_point now) {
  for (const auto& a : firing) {
    const auto it = last_sent_.find(a.key());
    if (it != last_sent_.end() && now - it->second >= config_.repeat_interval) {
      send(a);
    }
  }
}

void alert_notifier::send(const core::alert& a) {
  if (a.firing) {
    last_sent_[a.key()] = steady::now();
  } else {
    last_sent_.erase(a.key());
  }
  const auto body = alertmanager_message(a, external_url_, std::chrono::system_clock::now());
  for (const auto& url : config_.webhooks) {
    spawn(context_.get_executor(), deliver(url, body), "alert webhook");
  }
}

awaitable<void> alert_notifier::deliver(std::string url, std::string body) {
  auto backoff = std::chrono::milliseconds(500);
  std::string why;
  for (unsigned attempt = 1; attempt <= config_.webhook_attempts; ++attempt) {
    http::request<http::string_body> req{http::verb::post, "/", 11};
    req.set(http::field::content_type, "application/json");
    req.set(http::field::user_agent, "nines/" NINES_VERSION);
    req.body() = body;
    const auto answer = co_await send_one_shot(url, std::move(req), config_.webhook_timeout, 1 << 20);
    if (answer.status / 100 == 2) {
      delivered_.add(shard_);
      co_return;
    }
    why = answer.status != 0 ? fmt::format("status {}", answer.status) : answer.why;
    if (attempt < config_.webhook_attempts) {
      retried_.add(shard_);
      co_await sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
    }
  }
  failed_.add(shard_);
  spdlog::error("alert webhook {} failed after {} attempts: {}", url, config_.webhook_attempts, why);
}

}  // namespace nines::gateway
