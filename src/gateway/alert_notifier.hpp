#pragma once
// Sends the built-in alerts to webhooks, as JSON in Alertmanager's webhook format (version 4), so
// that whatever takes Alertmanager's notifications takes these:
//
//   {"version": "4", "status": "firing", "receiver": "nines", "groupKey": "...",
//    "alerts": [{"status": "firing", "labels": {"alertname": "...", "severity": "..."},
//                "annotations": {"summary": "..."}, "startsAt": "...", "endsAt": "...",
//                "fingerprint": "..."}],
//    "commonLabels": {...}, "externalURL": "..."}
//
// One message when an alert starts firing, one when it is resolved, and again every
// `repeat_interval` while it fires (nothing in between: de-duplication). Each message is tried up
// to `webhook_attempts` times per webhook, with exponential backoff (0.5 s doubling to 30 s), until
// the webhook answers 2xx. Runs on the control thread.

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/obs/alert_rules.hpp"
#include "core/config/config.hpp"
#include "net/asio.hpp"
#include "obs/metrics.hpp"

namespace nines::gateway {

class alert_notifier {
 public:
  alert_notifier(net::asio::io_context& context, const core::alerting_config& config,
                 obs::registry& metrics, unsigned shard, std::string external_url);

  // Alerts that started or stopped firing.
  void changed(const std::vector<core::alert>& changes);
  // Re-sends alerts still firing whose last message is older than the repeat interval.
  void still_firing(const std::vector<core::alert>& firing,
                    std::chrono::steady_clock::time_point now);
  void set_config(const core::alerting_config& config) { config_ = config; }

 private:
  void send(const core::alert& a);
  net::awaitable<void> deliver(std::string url, std::string body);

  net::asio::io_context& context_;
  core::alerting_config config_;
  unsigned shard_;
  std::string external_url_;
  obs::counter& delivered_;
  obs::counter& failed_;
  obs::counter& retried_;
  std::map<std::string, std::chrono::steady_clock::time_point> last_sent_;  // by alert key
};

// The message for one alert (also used by tests of the format).
std::string alertmanager_message(const core::alert& a, std::string_view external_url,
                                 std::chrono::system_clock::time_point now);

}  // namespace nines::gateway
