// The device keeper's listeners against hostile agents: the ADB proxy (what an agent can send as
// its first request, and what then reaches the adb server) and the admin listener. Each case
// asserts what the agent got and what the adb server (tools::fake_adb_server) received.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/devices/adb_transport_wire.hpp"
#include "core/devices/adb_wire.hpp"
#include "hostile_env.hpp"
#include "tools/fake_adb_server.hpp"

namespace nines::hostile {
namespace {

using fake = tools::fake_adb_server;

struct proxied {
  std::unique_ptr<test::process> proc;
  unsigned short proxy_port = 0;
  unsigned short admin_port = 0;
};

proxied start_proxied(const fake& adb) {
  proxied p;
  p.proc = std::make_unique<test::process>(std::vector<std::string>{
      test::binary(), "devices", "--adb-port", std::to_string(adb.port()), "--admin-listen",
      "127.0.0.1:0", "--adb-proxy", "127.0.0.1:0", "--hold-ms", "10000"});
  auto proxy = p.proc->wait_for_output("adb proxy listening on");
  auto admin = p.proc->wait_for_output("nines admin listening on");
  if (!proxy || !admin) {
    throw std::runtime_error("nines devices did not start: " + p.proc->output());
  }
  p.proxy_port = test::port_from(proxy->substr(0, proxy->find(" (holding")));
  p.admin_port = test::port_from(*admin);
  return p;
}

// Every first request the adb server received, whoever sent it.
int services_seen(const fake& adb, const std::string& service) {
  return adb.count("service:" + service.substr(0, 64));
}

std::uint64_t proxy_count(const proxied& p, const std::string& name) {
  const auto r = test::http_call(p.admin_port, "GET", "/devices");
  return boost::json::parse(r.body).at("proxy").at(name).to_number<std::uint64_t>();
}

// An agent's sync session on `serial` through the proxy: the transport switch and sync: both
// confirmed (their two OKAYs stay in the client's buffer).
bool open_sync(raw_client& c, const std::string& serial) {
  return c.send(*core::adb_request("host:transport:" + serial)) && c.read_until("OKAY") &&
         c.send(*core::adb_request("sync:")) && c.read_until("OKAYOKAY");
}

TEST(hostile_devices, a_first_request_that_is_not_the_host_protocol_reaches_no_adb_server) {
  fake adb;
  auto p = start_proxied(adb);
  for (const std::string& bytes :
       {std::string("zzzzhost:version"), std::string("0000"),
        std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), std::string("00-1host:version")}) {
    raw_client c(p.proxy_port);
    ASSERT_TRUE(c.send(bytes));
    EXPECT_TRUE(c.wait_closed()) << bytes;  // closed, nothing answered
    EXPECT_TRUE(c.pending().empty()) << bytes;
  }
  // Nothing of it was forwarded: the server saw only the keeper's own requests.
  EXPECT_EQ(services_seen(adb, "host:version"), 0);
  EXPECT_TRUE(test::eventually([&] { return proxy_count(p, "connections") >= 4; }));
  EXPECT_EQ(proxy_count(p, "held"), 0u);
}

TEST(hostile_devices, a_truncated_first_request_is_not_forwarded_in_part) {
  fake adb;
  auto p = start_proxied(adb);
  raw_client c(p.proxy_port);
  ASSERT_TRUE(c.send("0020host:ver"));  // says 32 bytes, sends 8, then leaves
  c.shutdown_write();
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(c.pending().empty());
  EXPECT_EQ(services_seen(adb, "host:ver"), 0);
}

TEST(hostile_devices, a_serial_no_phone_has_is_not_held_and_gets_adbs_own_answer) {
  fake adb;
  adb.set_device("R58MREAL", fake::mode::ok);
  auto p = start_proxied(adb);
  ASSERT_TRUE(test::eventually([&] { return adb.count("probe:R58MREAL") > 0; }));
  const std::string service = "host:transport:R58M REAL";  // a space: no serial has one
  raw_client c(p.proxy_port);
  ASSERT_TRUE(c.send(*core::adb_request(service)));
  ASSERT_TRUE(c.read_until("not found"));
  EXPECT_EQ(c.pending().substr(0, 4), "FAIL");
  EXPECT_EQ(services_seen(adb, service), 1);  // forwarded once, as it was
  EXPECT_EQ(proxy_count(p, "held"), 0u);
}

TEST(hostile_devices,
     a_command_after_a_transport_switch_that_is_not_the_protocol_ends_the_connection) {
  fake adb;
  adb.set_device("R58MREAL", fake::mode::ok);
  auto p = start_proxied(adb);
  ASSERT_TRUE(test::eventually([&] { return adb.count("probe:R58MREAL") > 0; }));
  for (const std::string& command :
       {std::string("zzzzshell:echo x"), std::string("0000"), std::string("0040shell:ec")}) {
    raw_client c(p.proxy_port);
    ASSERT_TRUE(c.send(*core::adb_request("host:transport:R58MREAL")));
    ASSERT_TRUE(c.read_until("OKAY"));  // the switch is adb's to confirm, and it did
    ASSERT_TRUE(c.send(command));
    c.shutdown_write();
    EXPECT_TRUE(c.wait_closed()) << command;
    EXPECT_EQ(c.pending(), "OKAY") << command;  // and nothing after it: no command ran
  }
  EXPECT_EQ(proxy_count(p, "replayed"), 0u);
}

// A pull whose answer is not the sync protocol (an adb server, or something posing as one,
// answering with other bytes): the agent gets a sync FAIL that says so, and nothing of those bytes.
TEST(hostile_devices, a_pull_answered_with_what_is_not_the_sync_protocol_ends_with_a_refusal) {
  fake adb;
  adb.set_device("R58MREAL", fake::mode::ok);
  const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  adb.set_sync_answer(answer);
  auto p = start_proxied(adb);
  ASSERT_TRUE(test::eventually([&] { return adb.count("probe:R58MREAL") > 0; }));
  raw_client c(p.proxy_port);
  ASSERT_TRUE(open_sync(c, "R58MREAL"));
  ASSERT_TRUE(c.send(core::adb_sync_request_bytes("RECV", "/sdcard/tmp.png")));
  EXPECT_TRUE(c.wait_closed());
  const std::string said = c.pending().substr(8);  // after the two OKAYs
  ASSERT_GE(said.size(), 8u);
  EXPECT_EQ(said.substr(0, 4), "FAIL");
  EXPECT_NE(said.find("not the sync protocol"), std::string::npos) << said;
  EXPECT_EQ(said.find("HTTP"), std::string::npos) << said;
  EXPECT_EQ(adb.count("sync:RECV"), 1);
  EXPECT_EQ(proxy_count(p, "sync_resumed"), 0u);
}

// RCV2 without compression (what adb 31 and later send to phones that offer sendrecv_v2) is
// relayed as RECV: two packets in, adb's pieces out as they were.
TEST(hostile_devices, an_uncompressed_rcv2_pull_is_relayed_piece_by_piece) {
  fake adb;
  adb.set_device("R58MREAL", fake::mode::ok);
  const std::string answer = core::adb_sync_data("screen") + core::adb_sync_done(1700000000);
  adb.set_sync_answer(answer);
  auto p = start_proxied(adb);
  ASSERT_TRUE(test::eventually([&] { return adb.count("probe:R58MREAL") > 0; }));
  raw_client c(p.proxy_port);
  ASSERT_TRUE(open_sync(c, "R58MREAL"));
  ASSERT_TRUE(c.send(core::adb_sync_request_bytes("RCV2", "/sdcard/tmp.png") +
                     std::string("RCV2\0\0\0\0", 8)));
  ASSERT_TRUE(c.read_until(core::adb_sync_done(1700000000)));
  EXPECT_EQ(c.pending().substr(8), answer);
  EXPECT_EQ(adb.count("sync:RCV2"), 1);
}

TEST(hostile_devices, the_admin_listener_answers_only_what_it_serves) {
  fake adb;
  adb.set_device("R58MREAL", fake::mode::ok);
  auto p = start_proxied(adb);
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/devices"},
           {"DELETE", "/devices/R58MREAL"},
           {"GET", "/devices/%00"},
           {"GET", "/devices/" + std::string(4000, 'x')},
           {"GET", "/devices/%zz"},
           {"GET", "/devices/../metrics"}}) {
    const auto r = test::http_call(p.admin_port, method, target);
    // 404 from the admin listener, or 400 from the server's own target checks (%00, .., %zz).
    EXPECT_TRUE(r.status == 404u || r.status == 400u)
        << r.status << " " << method << " " << target.substr(0, 40);
    const auto doc = boost::json::parse(r.body);
    EXPECT_TRUE(doc.at("error").is_object()) << r.body;
  }
  // Nothing of those reached the adb server: only the keeper's own list and probes did.
  EXPECT_EQ(adb.count("service:host:version"), 0);
  EXPECT_EQ(adb.count("disconnect:R58MREAL"), 0);
}

}  // namespace
}  // namespace nines::hostile
