// The edge sends a large body to the gateway as a tus upload: cut at 10, 50 or 90% of a 3 MB
// body by the chaos proxy on one uplink, it is resumed through the other uplink from the offset
// the gateway stored, and the answer is exact with the same bytes at the model. An uplink that
// takes no uploads gets the body inline.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>

#include "core/access/secret_digest.hpp"
#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

const std::string secret = "secret-edge-uploads-0123";

std::string keys_file() {
  const auto path = temp_path(".toml");
  std::ofstream(path) << "[[keys]]\nid = \"edge\"\nhash = \""
                      << core::format_secret_digest(core::sha256_of(secret))
                      << "\"\nmodels = [\"*\"]\n";
  return path;
}

std::string gateway_toml(const std::string& keys, const std::string& mock_url) {
  return "[auth]\nkeys_file = \"" + keys + "\"\n[uploads]\ndir = \"" + temp_path(".uploads") +
         "\"\n" + upstreams_toml({mock_url});
}

std::string uplink(const std::string& name, unsigned short port, int priority) {
  return "[[uplinks]]\nname = \"" + name + "\"\nurl = \"http://127.0.0.1:" + std::to_string(port) +
         "\"\npriority = " + std::to_string(priority) + "\napi_key = \"" + secret + "\"\n";
}

std::string screenshot_body(std::size_t bytes, char fill) {
  return chat_body("what is on the screen? data:image/png;base64," + std::string(bytes, fill),
                   true);
}

const std::map<std::string, std::string> digest_asked{{"Content-Type", "application/json"},
                                                      {"x-mock-digest", "sha256"}};

TEST(edge_uploads,
     a_body_cut_at_10_50_or_90_percent_is_sent_again_only_from_what_the_gateway_stored) {
  auto mock = start_mock();
  const auto keys = keys_file();
  auto gw = start_gateway(gateway_toml(keys, mock.url()));
  auto chaos = start_chaos();
  const auto wifi = add_chaos_proxy(chaos, "wifi", gw.port);
  const std::string kept = R"(nines_upload_bytes_received_total{result="kept"})";
  const std::string refused = R"(nines_upload_bytes_received_total{result="refused"})";
  int run = 0;
  for (const double cut_at : {0.1, 0.5, 0.9}) {
    SCOPED_TRACE("cut at " + std::to_string(cut_at));
    const auto body = screenshot_body(3u << 20, static_cast<char>('A' + run++));
    const auto bytes = static_cast<std::size_t>(cut_at * static_cast<double>(body.size()));
    // Every connection through the WiFi uplink is cut after `bytes` toward the gateway.
    const auto added = http_call(chaos.port, "POST", "/proxies/wifi/toxics",
                                 R"({"name":"cut","type":"limit_data","stream":"upstream",)"
                                 R"("attributes":{"bytes":)" +
                                     std::to_string(bytes) + "}}");
    ASSERT_EQ(added.status, 200u) << added.body;
    auto edge = start_edge(uplink("wifi", wifi, 0) + uplink("cell", gw.port, 1));
    const auto kept_before = metric_value(gw.admin_port, kept);
    const auto refused_before = metric_value(gw.admin_port, refused);

    const auto r = http_call(edge.port, "POST", "/v1/chat/completions", body, digest_asked);
    ASSERT_EQ(r.status, 200u) << r.body.substr(0, 500);
    EXPECT_EQ(stream_text(sse_events(r.body)), expected_answer(body, true));
    EXPECT_EQ(r.headers.count("x-mock-body-sha256") ? r.headers.at("x-mock-body-sha256") : "",
              core::format_secret_digest(core::sha256_of(body)));
    // The gateway stored every byte once; what it received beyond that (bytes of the cut append
    // that came after the resume took over) is bounded.
    EXPECT_EQ(metric_value(gw.admin_port, kept) - kept_before, body.size());
    EXPECT_LE(metric_value(gw.admin_port, refused) - refused_before, 64u << 10);
    EXPECT_EQ(metric_value(edge.admin_port, R"(nines_edge_uploads_total{result="failed"})"), 1u);
    EXPECT_EQ(metric_value(edge.admin_port, R"(nines_edge_uploads_total{result="resumed"})"), 1u);
    ASSERT_EQ(http_call(chaos.port, "DELETE", "/proxies/wifi/toxics/cut").status, 204u);
  }
  EXPECT_EQ(metric_value(gw.admin_port, "nines_uploads"), 0u);  // each was used, then ended
}

TEST(edge_uploads, an_uplink_that_takes_no_uploads_gets_the_body_inline_and_is_not_asked_again) {
  auto mock = start_mock();
  auto edge = start_edge("[health]\npath = \"/health\"\n" + uplink("model", mock.port, 0));
  for (const char fill : {'x', 'y'}) {
    const auto body = screenshot_body(400000, fill);
    const auto r = http_call(edge.port, "POST", "/v1/chat/completions", body, digest_asked);
    ASSERT_EQ(r.status, 200u) << r.body.substr(0, 500);
    EXPECT_EQ(stream_text(sse_events(r.body)), expected_answer(body, true));
    EXPECT_EQ(r.headers.at("x-mock-body-sha256"),
              core::format_secret_digest(core::sha256_of(body)));
  }
  EXPECT_EQ(metric_value(edge.admin_port, R"(nines_edge_uploads_total{result="inline"})"), 1u);
}

TEST(edge_uploads, a_body_under_the_threshold_goes_inline_without_asking) {
  auto mock = start_mock();
  const auto keys = keys_file();
  auto gw = start_gateway(gateway_toml(keys, mock.url()));
  auto edge = start_edge(uplink("gw", gw.port, 0));
  const auto body = screenshot_body(100000, 'z');
  const auto r = http_call(edge.port, "POST", "/v1/chat/completions", body, digest_asked);
  ASSERT_EQ(r.status, 200u) << r.body.substr(0, 500);
  EXPECT_EQ(stream_text(sse_events(r.body)), expected_answer(body, true));
  EXPECT_EQ(metric_value(gw.admin_port, R"(nines_upload_bytes_received_total{result="kept"})"), 0u);
  const auto big = screenshot_body(300000, 'z');
  ASSERT_EQ(http_call(edge.port, "POST", "/v1/chat/completions", big, digest_asked).status, 200u);
  EXPECT_EQ(metric_value(gw.admin_port, R"(nines_upload_bytes_received_total{result="kept"})"),
            big.size());
  EXPECT_EQ(metric_value(edge.admin_port, R"(nines_edge_uploads_total{result="ready"})"), 1u);

  // The edge's /status speaks of uplinks, and of what it sent as uploads; the gateway's of what
  // it kept.
  const auto edge_status = json::parse(http_call(edge.admin_port, "GET", "/status").body).as_object();
  EXPECT_EQ(edge_status.at("role"), "edge");
  EXPECT_FALSE(edge_status.contains("upstreams"));
  EXPECT_TRUE(edge_status.at("uplinks").as_object().contains("gw"));
  const auto& sent = edge_status.at("uploads").at("sent_to_uplinks").as_object();
  EXPECT_EQ(sent.at("bodies").at("ready").to_number<double>(), 1);
  EXPECT_EQ(sent.at("bytes_sent").to_number<double>(), static_cast<double>(big.size()));
  const auto gw_status = json::parse(http_call(gw.admin_port, "GET", "/status").body).as_object();
  EXPECT_EQ(gw_status.at("role"), "gateway");
  EXPECT_TRUE(gw_status.contains("upstreams"));
  EXPECT_EQ(gw_status.at("uploads").at("kept").at("bytes_received_kept").to_number<double>(),
            static_cast<double>(big.size()));
  process cli({NINES_BINARY, "status", "http://127.0.0.1:" + std::to_string(edge.admin_port)});
  EXPECT_EQ(cli.wait_exit(), 0);
  EXPECT_NE(cli.output().find("UPLINK"), std::string::npos) << cli.output();
  EXPECT_NE(cli.output().find("gw "), std::string::npos);
}

}  // namespace
}  // namespace nines::test
