// Built-in alerting against a local webhook receiver: an upstream dies, the gateway POSTs a
// firing notification in Alertmanager's format (retried after the receiver's 500, sent once
// however often the rule is evaluated meanwhile), and a resolved one when the upstream is back.

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

TEST(gateway_alerting, webhook_gets_firing_once_despite_a_500_and_then_resolved) {
  http_recorder receiver({500});  // the first delivery fails
  auto steady = start_mock();
  auto doomed = start_mock();
  const auto doomed_port = doomed.port;
  auto gw = start_gateway(
      "[health]\ninterval_ms = 100\njitter_ms = 10\ntimeout_ms = 200\n"
      "unhealthy_threshold = 2\nhealthy_threshold = 1\n"
      "[alerting]\nwebhooks = [\"" + receiver.url("/hooks/nines") + "\"]\n"
      "evaluation_interval_ms = 100\nupstream_down_for_ms = 300\n" +
      upstreams_toml({steady.url(), doomed.url()}));

  doomed.proc.reset();  // SIGKILL: its probes fail from now on
  ASSERT_TRUE(receiver.wait_for(2));  // the failed delivery and its retry (0.5 s later)
  auto got = receiver.requests();
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0].answered, 500U);
  EXPECT_EQ(got[1].answered, 200U);
  for (const auto& r : got) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/hooks/nines");
    EXPECT_EQ(r.content_type, "application/json");
  }
  EXPECT_EQ(got[0].body, got[1].body);  // the retry is the same message
  const auto firing = json::parse(got[1].body).as_object();
  EXPECT_EQ(firing.at("version").as_string(), "4");
  EXPECT_EQ(firing.at("status").as_string(), "firing");
  const auto& alert = firing.at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(alert.at("status").as_string(), "firing");
  EXPECT_EQ(alert.at("labels").at("alertname").as_string(), "NinesUpstreamDown");
  EXPECT_EQ(alert.at("labels").at("upstream").as_string(), "u1");
  EXPECT_EQ(alert.at("labels").at("severity").as_string(), "warning");
  EXPECT_EQ(alert.at("endsAt").as_string(), "0001-01-01T00:00:00Z");
  EXPECT_EQ(firing.at("externalURL").as_string(), gw.admin_url());  // where the dashboard is

  // While it fires it shows in /status and as a gauge.
  const auto status = json::parse(http_call(gw.admin_port, "GET", "/status").body).as_object();
  const auto& alerts = status.at("sla").at("alerts").as_array();
  ASSERT_EQ(alerts.size(), 1U);
  EXPECT_EQ(alerts[0].at("name").as_string(), "NinesUpstreamDown");
  EXPECT_EQ(metric_value(gw.admin_port, R"(nines_alerts_firing{alertname="NinesUpstreamDown",severity="warning",upstream="u1"})"),
            1U);
  // `nines status` reads the same /status as the dashboard.
  process cli({NINES_BINARY, "status", gw.admin_url()});
  EXPECT_EQ(cli.wait_exit(), 0);
  EXPECT_NE(cli.output().find("ALERT NinesUpstreamDown: upstream u1 is unhealthy"), std::string::npos)
      << cli.output();
  EXPECT_NE(cli.output().find("error budget left"), std::string::npos) << cli.output();

  // Back on the same port: one probe later it is healthy, and the alert resolves. The rule was
  // evaluated every 100 ms all along (more than five times since it fired): had de-duplication
  // failed, the third message would be another "firing".
  auto back = start_mock({"--listen", "127.0.0.1:" + std::to_string(doomed_port)});
  ASSERT_TRUE(receiver.wait_for(3));
  got = receiver.requests();
  const auto resolved = json::parse(got[2].body).as_object();
  EXPECT_EQ(resolved.at("status").as_string(), "resolved");
  const auto& ended = resolved.at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(ended.at("labels").at("upstream").as_string(), "u1");
  EXPECT_NE(ended.at("endsAt").as_string(), "0001-01-01T00:00:00Z");
  EXPECT_EQ(ended.at("fingerprint"), alert.at("fingerprint"));  // the same alert
  EXPECT_EQ(got.size(), 3U);

  EXPECT_TRUE(eventually([&] {
    return metric_value(gw.admin_port, R"(nines_alert_notifications_total{result="delivered"})") == 2;
  }));
  EXPECT_EQ(metric_value(gw.admin_port, R"(nines_alert_notifications_total{result="retried"})"), 1U);
  EXPECT_EQ(metric_value(gw.admin_port, R"(nines_alert_notifications_total{result="failed"})"), 0U);
  EXPECT_EQ(metric_value(gw.admin_port, R"(nines_alerts_firing{alertname="NinesUpstreamDown",severity="warning",upstream="u1"})"),
            0U);
}

TEST(gateway_alerting, an_unreachable_webhook_is_given_up_after_its_attempts) {
  // A port nobody listens on (a recorder, gone).
  std::string dead_url;
  {
    http_recorder gone;
    dead_url = gone.url("/hook");
  }
  auto refusing = start_mock({"--refuse"});
  auto steady = start_mock();
  auto gw = start_gateway("[health]\ninterval_ms = 100\njitter_ms = 10\nunhealthy_threshold = 1\n"
                          "[alerting]\nwebhooks = [\"" + dead_url + "\"]\n"
                          "evaluation_interval_ms = 100\nupstream_down_for_ms = 0\n"
                          "webhook_attempts = 2\n" +
                          upstreams_toml({steady.url(), refusing.url()}));
  ASSERT_TRUE(eventually([&] {
    return metric_value(gw.admin_port, R"(nines_alert_notifications_total{result="failed"})") == 1;
  }));
  EXPECT_EQ(metric_value(gw.admin_port, R"(nines_alert_notifications_total{result="retried"})"), 1U);
  EXPECT_TRUE(gw.proc->wait_for_output("alert webhook " + dead_url + " failed after 2 attempts"));
  // The gateway itself carries on.
  EXPECT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("still", false)).status,
            200U);
}

}  // namespace
}  // namespace nines::test
