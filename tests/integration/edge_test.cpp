// `nines edge`: the request path in front of uplinks. Its own file names and defaults, the path
// out of each uplink (bind_address, bind_interface), and the connect race that moves a request to
// the next uplink when a connect is slow. A link dropped under pooled connections, across a veth
// pair in network namespaces, is tests/netns/edge_blackhole_test.sh.

#include <arpa/inet.h>
#include <boost/json.hpp>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

// A port whose connects hang, as they do over a path that drops packets: a listener with a
// backlog of zero that never accepts, its queue filled, so that the kernel drops further SYNs.
class connect_blackhole {
 public:
  connect_blackhole() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof a;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&a), size) != 0 ||
        ::listen(listener_, 0) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &size) != 0) {
      throw std::runtime_error("cannot open the blackhole listener");
    }
    port_ = ntohs(a.sin_port);
    for (int i = 0; i < 3; ++i) {  // more than the queue holds
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
      fillers_.push_back(fd);
    }
  }
  ~connect_blackhole() {
    for (int fd : fillers_) {
      ::close(fd);
    }
    ::close(listener_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

 private:
  int listener_ = -1;
  unsigned short port_ = 0;
  std::vector<int> fillers_;
};

std::string uplink(const std::string& name, const std::string& url, int priority,
                   const std::string& extra = {}) {
  return "[[uplinks]]\nname = \"" + name + "\"\nurl = \"" + url + "\"\npriority = " +
         std::to_string(priority) + "\nhealth_path = \"/health\"\n" + extra;
}

// The access log's records so far, one JSON object per line.
std::vector<json::object> access_records(const std::string& path) {
  std::vector<json::object> out;
  std::istringstream lines(read_file(path));
  for (std::string line; std::getline(lines, line);) {
    json::error_code ec;
    auto v = json::parse(line, ec);
    if (!ec && v.is_object()) {
      out.push_back(v.get_object());
    }
  }
  return out;
}

// Established connections in /proc/net/tcp from `local_ip` to `remote_port` on 127.0.0.1.
std::size_t connections_from(const std::string& local_ip, unsigned short remote_port) {
  in_addr a{};
  ::inet_pton(AF_INET, local_ip.c_str(), &a);
  char local[9];
  std::snprintf(local, sizeof local, "%08X", a.s_addr);  // as the kernel prints it
  char remote[16];
  std::snprintf(remote, sizeof remote, "0100007F:%04X", remote_port);
  std::istringstream table(read_file("/proc/net/tcp"));
  std::size_t n = 0;
  for (std::string line; std::getline(table, line);) {
    std::istringstream fields(line);
    std::string slot, from, to, state;
    fields >> slot >> from >> to >> state;
    if (from.starts_with(local) && to == remote && state == "01") {
      ++n;
    }
  }
  return n;
}

TEST(edge, serves_through_its_uplinks_with_its_own_file_names) {
  auto model = start_mock();
  auto edge = start_edge(uplink("wifi", model.url() + "/v1", 0));
  const auto body = chat_body("open the camera", true);
  auto r = http_call(edge.port, "POST", "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200U) << r.body;
  EXPECT_EQ(stream_text(sse_events(r.body)), expected_answer(body, true));
  // The uplink is named in its metrics as an upstream of the gateway would be (counted once the
  // attempt has ended, which may be just after the client has its answer).
  EXPECT_TRUE(eventually([&] {
    return metric_value(edge.admin_port,
                        "nines_upstream_attempts_total{upstream=\"wifi\",outcome=\"ok\"}") == 1U;
  }));
}

TEST(edge, a_refused_uplink_sends_new_requests_to_the_next_one) {
  auto refusing = start_mock({"--refuse"});
  auto cellular = start_mock();
  auto edge = start_edge(uplink("wifi", refusing.url() + "/v1", 0) +
                         uplink("cellular", cellular.url() + "/v1", 1) +
                         "[retry]\nbackoff_base_ms = 1\n");
  for (int i = 0; i < 5; ++i) {
    const auto body = chat_body("step " + std::to_string(i), false);
    auto r = http_call(edge.port, "POST", "/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200U) << r.body;
    ASSERT_EQ(answer_text(r.body), expected_answer(body, true));
  }
  EXPECT_EQ(mock_stat(cellular.port, "completed"), 5U);
}

// The first uplink's connects hang. With the edge's connect race (250 ms), a second attempt goes
// to the next uplink and carries the request; the hanging connect is given up and counted as a
// slow path (connect_slow), which cools the uplink down so that the next request does not wait.
// Without the race the same request waits for the connect timeout: the access log says which.
TEST(edge, a_connect_that_hangs_is_raced_on_the_next_uplink) {
  connect_blackhole hole;
  auto cellular = start_mock();
  const auto uplinks = uplink("wifi", hole.url(), 0) + uplink("cellular", cellular.url() + "/v1", 1);
  const auto log = temp_path(".log");
  auto edge = start_edge(uplinks + "[timeouts]\nconnect_ms = 2000\n", {"--access-log", log});
  const auto body = chat_body("tap the icon", false);
  auto r = http_call(edge.port, "POST", "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200U) << r.body;
  EXPECT_EQ(answer_text(r.body), expected_answer(body, true));
  ASSERT_TRUE(eventually([&] { return !access_records(log).empty(); }));
  const auto raced = access_records(log).front();
  EXPECT_EQ(json::value_to<std::string>(raced.at("served_by")), "cellular");
  EXPECT_EQ(raced.at("connect_races").as_int64(), 1);
  // (The access log is written after the attempts are counted.)
  EXPECT_EQ(metric_value(edge.admin_port,
                         "nines_upstream_attempts_total{upstream=\"wifi\",outcome=\"connect_slow\"}"),
            1U);
  EXPECT_EQ(metric_value(edge.admin_port, "nines_connect_races_total{result=\"won\"}"), 1U);
  // The slow uplink cools down: the next request goes to cellular at once, no race.
  auto again = http_call(edge.port, "POST", "/v1/chat/completions", chat_body("next", false));
  ASSERT_EQ(again.status, 200U);
  ASSERT_TRUE(eventually([&] { return access_records(log).size() >= 2; }));
  const auto second = access_records(log)[1];
  EXPECT_FALSE(second.contains("connect_races"));
  EXPECT_EQ(json::value_to<std::string>(second.at("served_by")), "cellular");

  // The control: the race off, the request waits for wifi's connect timeout before failing over.
  const auto log_off = temp_path(".log");
  auto plain = start_edge(uplinks + "[timeouts]\nconnect_ms = 2000\n[routing]\nconnect_race_ms = 0\n",
                          {"--access-log", log_off});
  auto slow = http_call(plain.port, "POST", "/v1/chat/completions", body);
  ASSERT_EQ(slow.status, 200U);
  ASSERT_TRUE(eventually([&] { return !access_records(log_off).empty(); }));
  const auto waited = access_records(log_off).front();
  EXPECT_FALSE(waited.contains("connect_races"));
  EXPECT_EQ(metric_value(plain.admin_port, "nines_upstream_attempts_total{upstream=\"wifi\","
                                           "outcome=\"connect_timeout\"}"),
            1U);
}

// A pooled connection whose peer acknowledged the request is a working path: an answer slower than
// the race delay is waited for there, not raced elsewhere (the hedge is for that). The first
// request opens the connection; the second, on one worker, takes it from the pool.
TEST(edge, a_slow_answer_over_a_live_pooled_connection_is_not_raced) {
  auto slow = start_mock({"--faults", "ttft_ms=600"});
  auto other = start_mock();
  const auto log = temp_path(".log");
  auto edge = start_edge(uplink("wifi", slow.url() + "/v1", 0) +
                             uplink("cellular", other.url() + "/v1", 1),
                         {"--access-log", log, "--workers", "1"});
  for (int i = 0; i < 2; ++i) {
    const auto body = chat_body("slow " + std::to_string(i), false);
    auto r = http_call(edge.port, "POST", "/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200U) << r.body;
    EXPECT_EQ(answer_text(r.body), expected_answer(body, true));
  }
  ASSERT_TRUE(eventually([&] { return access_records(log).size() >= 2; }));
  for (const auto& record : access_records(log)) {
    EXPECT_EQ(json::value_to<std::string>(record.at("served_by")), "wifi");
    EXPECT_FALSE(record.contains("connect_races"));
  }
  EXPECT_EQ(mock_stat(other.port, "completed"), 0U);
}

// A stream that breaks between edge and uplink goes on over the next uplink, exactly: the edge
// continues it as the gateway continues its upstreams' (an uplink is an upstream to it).
TEST(edge, a_stream_broken_on_one_uplink_continues_exactly_on_the_next) {
  auto breaking = start_mock({"--faults", "cut_after=6"});
  auto cellular = start_mock();
  auto edge = start_edge(uplink("wifi", breaking.url() + "/v1", 0) +
                         uplink("cellular", cellular.url() + "/v1", 1));
  const auto body = chat_body("describe the screen", true);
  auto r = http_call(edge.port, "POST", "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200U) << r.body;
  const auto events = sse_events(r.body);
  EXPECT_EQ(stream_text(events), expected_answer(body, true));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().data, "[DONE]");
  EXPECT_GE(metric_value(edge.admin_port, "nines_stream_resumes_total{cause=\"reset\","
                                          "from=\"wifi\",to=\"cellular\"}") +
                metric_value(edge.admin_port, "nines_stream_resumes_total{cause=\"closed\","
                                              "from=\"wifi\",to=\"cellular\"}"),
            1U);
}

TEST(edge, an_uplink_leaves_from_its_bind_address) {
  auto model = start_mock();
  auto edge = start_edge(uplink("wifi", model.url() + "/v1", 0, "bind_address = \"127.0.0.9\"\n"));
  auto r = http_call(edge.port, "POST", "/v1/chat/completions", chat_body("x", false));
  ASSERT_EQ(r.status, 200U) << r.body;
  // The pooled connection the answer came over is still open: from 127.0.0.9.
  EXPECT_GE(connections_from("127.0.0.9", model.port), 1U);
  EXPECT_EQ(connections_from("127.0.0.1", model.port), 0U);
}

TEST(edge, a_path_out_that_cannot_be_taken_is_named_in_the_error) {
  auto model = start_mock();
  // 192.0.2.1 (TEST-NET-1) is no address of this host; "nines-none0" is no interface.
  auto edge = start_edge(uplink("wifi", model.url() + "/v1", 0, "bind_address = \"192.0.2.1\"\n") +
                         uplink("cellular", model.url() + "/v1", 1,
                                "bind_interface = \"nines-none0\"\n") +
                         "[retry]\nbackoff_base_ms = 1\n");
  auto r = http_call(edge.port, "POST", "/v1/chat/completions", chat_body("x", false));
  EXPECT_EQ(r.status, 502U) << r.body;
  EXPECT_NE(r.body.find("bind_address 192.0.2.1"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("bind_interface nines-none0"), std::string::npos) << r.body;
  EXPECT_EQ(mock_stat(model.port, "completed"), 0U);
}

TEST(edge, an_uplink_bound_to_the_loopback_interface_connects) {
  auto model = start_mock();
  auto edge = start_edge(uplink("wifi", model.url() + "/v1", 0, "bind_interface = \"lo\"\n"));
  const auto body = chat_body("y", false);
  auto r = http_call(edge.port, "POST", "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200U) << r.body;
  EXPECT_EQ(answer_text(r.body), expected_answer(body, true));
}

TEST(edge, check_reads_an_edge_file_and_refuses_a_gateway_one) {
  const auto edge_file = temp_path(".toml");
  std::ofstream(edge_file) << "[edge]\nlisten = \"127.0.0.1:0\"\n"
                           << uplink("wifi", "http://127.0.0.1:9/v1", 0);
  process ok({NINES_BINARY, "edge", "--config", edge_file, "--check"});
  EXPECT_EQ(ok.wait_exit(milliseconds(10000)), 0) << ok.output();
  EXPECT_NE(ok.output().find("1 uplinks"), std::string::npos) << ok.output();

  const auto gateway_file = temp_path(".toml");
  std::ofstream(gateway_file) << "[gateway]\nlisten = \"127.0.0.1:0\"\n"
                              << "[[upstreams]]\nurl = \"http://127.0.0.1:9/v1\"\n";
  process refused({NINES_BINARY, "edge", "--config", gateway_file, "--check"});
  EXPECT_EQ(refused.wait_exit(milliseconds(10000)), 2);
  const auto out = refused.output();
  EXPECT_NE(out.find(":1:1: gateway: belongs to a nines gateway configuration; nines edge reads "
                     "[edge]"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("upstreams: belongs to a nines gateway configuration; nines edge reads "
                     "[[uplinks]]"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("uplinks: at least one uplink is required"), std::string::npos) << out;
}

}  // namespace
}  // namespace nines::test
