// `nines devices` against a fake adb server (tools/fake_adb_server.hpp): the real binary follows
// the fake's device list, probes each phone, tells healthy, silent, hanging, unauthorized and
// offline phones apart, brings a network phone back with host:connect once its port answers
// again (and 500 of them at once without stalling), survives the adb server's death, refuses a
// hostile list line by line, and shows it all on /devices, /devices/{serial}, /metrics and
// `nines devices status`. The detector's timing goals are checked on simulated time
// (tests/unit/core/devices); here the states are awaited.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <fstream>
#include <future>

#include "core/devices/adb_wire.hpp"
#include "devices_harness.hpp"
#include "harness.hpp"
#include "tools/fake_adb_server.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using fake = tools::fake_adb_server;
using mode = fake::mode;

TEST(devices, healthy_hanging_unauthorized_and_offline_phones_are_told_apart) {
  fake adb;
  adb.set_device("R58M000OK", mode::ok);
  adb.set_device("R58M00HANG", mode::hang);
  adb.set_device("R58M00AUTH", mode::unauthorized);
  adb.set_device("R58M000OFF", mode::offline);
  auto k = start_keeper(adb.port());
  EXPECT_TRUE(reaches(k, "R58M000OK", "online"));
  EXPECT_TRUE(reaches(k, "R58M00HANG", "zombie"));
  EXPECT_TRUE(reaches(k, "R58M00AUTH", "unauthorized"));
  EXPECT_TRUE(reaches(k, "R58M000OFF", "offline"));
  // Unauthorized and offline phones are not probed: adb said what they are.
  EXPECT_EQ(adb.count("probe:R58M00AUTH"), 0);
  EXPECT_EQ(adb.count("probe:R58M000OFF"), 0);

  const auto one = http_call(k.admin_port, "GET", "/devices/R58M000OK");
  ASSERT_EQ(one.status, 200u);
  const auto d = json::parse(one.body).as_object();
  EXPECT_EQ(d.at("adb_state").as_string(), "device");
  EXPECT_GT(d.at("score").to_number<double>(), 0.9);
  EXPECT_GT(d.at("probes").to_number<std::uint64_t>(), 0u);
  const auto zombie = json::parse(http_call(k.admin_port, "GET", "/devices/R58M00HANG").body);
  EXPECT_EQ(zombie.at("score").to_number<double>(), 0.0);
  EXPECT_NE(std::string(zombie.at("last_problem").as_string()).find("did not finish"),
            std::string::npos);

  const auto missing = http_call(k.admin_port, "GET", "/devices/nope");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(json::parse(missing.body).at("error").at("code").as_string(), "device_not_found");
  EXPECT_EQ(http_call(k.admin_port, "GET", "/nothing").status, 404u);

  const auto metrics = http_call(k.admin_port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("nines_adb_server_up 1"), std::string::npos);
  EXPECT_NE(metrics.find("nines_devices{state=\"online\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("nines_devices{state=\"zombie\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("nines_device_state{serial=\"R58M00HANG\",state=\"zombie\"} 1"),
            std::string::npos);

  // Every family is documented, with its type, in docs/metrics.md.
  std::ifstream doc_file(std::string(NINES_SOURCE_DIR) + "/docs/metrics.md");
  const std::string docs((std::istreambuf_iterator<char>(doc_file)),
                         std::istreambuf_iterator<char>());
  std::size_t families = 0;
  for (std::size_t at = metrics.find("# TYPE "); at != std::string::npos;
       at = metrics.find("# TYPE ", at + 1)) {
    const auto end = metrics.find('\n', at);
    const auto words = metrics.substr(at + 7, end - at - 7);
    const auto name = words.substr(0, words.find(' '));
    const auto type = words.substr(words.find(' ') + 1);
    EXPECT_NE(docs.find("| `" + name + "` | " + type + " |"), std::string::npos)
        << name << " (" << type << ") is not in docs/metrics.md";
    ++families;
  }
  EXPECT_EQ(families, 20u);  // the keeper's 18 and the alert notifier's 2

  // The table a person reads, then a clean stop on SIGTERM.
  process status(
      {binary(), "devices", "status", "http://127.0.0.1:" + std::to_string(k.admin_port)});
  ASSERT_EQ(status.wait_exit(), 0);
  const auto table = status.output();
  EXPECT_NE(table.find("adb server: up"), std::string::npos) << table;
  EXPECT_NE(table.find("R58M00HANG"), std::string::npos) << table;
  EXPECT_NE(table.find("zombie"), std::string::npos) << table;
  k.proc->signal(SIGTERM);
  EXPECT_EQ(k.proc->wait_exit(), 0);
}

TEST(devices, a_phone_whose_link_goes_silent_is_suspect_then_offline_then_online_again) {
  fake adb;
  adb.set_device("emulator-5554", mode::ok);
  auto k = start_keeper(adb.port());
  ASSERT_TRUE(reaches(k, "emulator-5554", "online"));
  adb.set_device("emulator-5554", mode::silent);
  EXPECT_TRUE(reaches(k, "emulator-5554", "suspect"));
  EXPECT_TRUE(reaches(k, "emulator-5554", "offline"));
  adb.set_device("emulator-5554", mode::ok);
  EXPECT_TRUE(reaches(k, "emulator-5554", "online"));
  const auto d = json::parse(http_call(k.admin_port, "GET", "/devices/emulator-5554").body);
  EXPECT_GE(d.at("transitions").to_number<std::uint64_t>(), 3u);
  EXPECT_LT(d.at("online_rate").at("1h").to_number<double>(), 1.0);
  // A USB phone (not host:port) is never reconnected: adb owns its link.
  EXPECT_EQ(adb.count("disconnect:emulator-5554"), 0);
}

TEST(devices, a_network_phone_is_brought_back_once_its_port_answers_again) {
  fake adb;
  // The phone's adbd port: answers knocks while it listens. An address of its own on loopback
  // and a port outside the ephemeral range: no other test's socket takes it while it is closed.
  asio::io_context io;
  const tcp::endpoint phone_at(asio::ip::make_address("127.76.0.1"), 5555);
  auto phone = std::make_unique<tcp::acceptor>(io);
  auto listen = [&] {
    phone = std::make_unique<tcp::acceptor>(io);
    phone->open(tcp::v4());
    phone->set_option(asio::socket_base::reuse_address(true));
    phone->bind(phone_at);
    phone->listen();
  };
  listen();
  const std::string address = "127.76.0.1:5555";
  adb.set_connectable(address, true);
  auto k = start_keeper(adb.port(), {"--network", address});
  // Configured, not yet connected: the keeper knocks, then asks adb to connect.
  EXPECT_TRUE(reaches(k, address, "online"));
  EXPECT_GE(adb.count("connect:" + address), 1);

  // The link goes silent while adb still lists the phone (adb sets no keepalive): the keeper
  // finds it offline, drops adb's stale transport, and knocks on a port that no longer answers.
  phone.reset();
  adb.set_connectable(address, false);
  adb.set_device(address, mode::silent);
  EXPECT_TRUE(reaches(k, address, "reconnecting"));
  EXPECT_TRUE(eventually([&] { return adb.count("disconnect:" + address) >= 1; }));
  const int connects_while_away = adb.count("connect:" + address);

  // Back: its port answers, adb connects, a probe answers.
  listen();
  adb.set_connectable(address, true);
  EXPECT_TRUE(reaches(k, address, "online"));
  EXPECT_GT(adb.count("connect:" + address), connects_while_away);
  const auto d = json::parse(http_call(k.admin_port, "GET", "/devices/" + address).body);
  EXPECT_GE(d.at("reconnects").to_number<std::uint64_t>(), 2u);
  EXPECT_TRUE(d.at("configured").as_bool());
  // The serial may come percent-encoded.
  EXPECT_EQ(http_call(k.admin_port, "GET", "/devices/127.76.0.1%3A5555").status, 200u);
}

TEST(devices, a_network_phone_adb_already_lists_is_probed_not_reconnected) {
  fake adb;
  adb.set_device("127.0.0.1:5555", mode::ok);
  auto k = start_keeper(adb.port());
  ASSERT_TRUE(reaches(k, "127.0.0.1:5555", "online"));
  // Probed several times over, and never dropped or connected again.
  ASSERT_TRUE(eventually([&] { return adb.count("probe:127.0.0.1:5555") >= 3; }));
  EXPECT_EQ(adb.count("disconnect:127.0.0.1:5555"), 0);
  EXPECT_EQ(adb.count("connect:127.0.0.1:5555"), 0);
  EXPECT_EQ(state_of(k, "127.0.0.1:5555"), "online");
}

TEST(devices, the_adb_server_dying_is_said_and_its_return_followed) {
  fake adb;
  adb.set_device("R58M000OK", mode::ok);
  auto k = start_keeper(adb.port());
  ASSERT_TRUE(reaches(k, "R58M000OK", "online"));
  adb.pause();
  EXPECT_TRUE(eventually([&] { return !devices_of(k).at("adb").at("up").as_bool(); }));
  EXPECT_TRUE(reaches(k, "R58M000OK", "offline"));  // nothing reaches it without the server
  EXPECT_NE(http_call(k.admin_port, "GET", "/metrics").body.find("nines_adb_server_up 0"),
            std::string::npos);
  adb.resume();
  EXPECT_TRUE(eventually([&] { return devices_of(k).at("adb").at("up").as_bool(); }));
  EXPECT_TRUE(reaches(k, "R58M000OK", "online"));
  EXPECT_GE(adb.count("track"), 2);
}

TEST(devices, a_hostile_device_list_is_refused_line_by_line_and_bounded) {
  fake adb;
  std::string list = "good1 device\n";
  list += "bad\x01serial device\n";
  list += "lonely\n";
  list += "good1 offline\n";  // listed twice
  for (int i = 0; i < 10; ++i) {
    list += "extra" + std::to_string(i) + " device\n";
  }
  adb.set_raw_list(list);
  const std::string toml = "[devices]\nmax_devices = 4\n";
  auto k = start_keeper(adb.port(), {}, toml);
  // The bad serial, the line without a state, the serial listed twice, and the 7 past max_devices.
  ASSERT_TRUE(eventually([&] {
    const auto adb_info = devices_of(k).at("adb");
    return adb_info.at("list_lines_refused").to_number<std::uint64_t>() >= 10;
  }));
  EXPECT_EQ(devices_of(k).at("adb").at("list_lines_refused").to_number<std::uint64_t>(), 10u);
  const auto all = devices_of(k);
  EXPECT_EQ(all.at("fleet").at("devices").to_number<std::uint64_t>(), 4u);  // max_devices
  EXPECT_NE(state_of(k, "good1"), "(absent)");
  EXPECT_EQ(state_of(k, "lonely"), "(absent)");
}

TEST(devices, the_adb_proxy_holds_commands_for_a_phone_that_blinks_and_serves_them_once_back) {
  fake adb;
  adb.set_device("R58MBLINK", mode::ok);
  auto p = start_proxied_keeper(adb.port(), "10000");
  ASSERT_TRUE(reaches(p.k, "R58MBLINK", "online"));
  EXPECT_EQ(adb_command(p.proxy_port, "R58MBLINK", "echo step 1"), "step 1\n");

  // The phone blinks: adb refuses it at once; through the proxy, commands wait for it.
  adb.set_device("R58MBLINK", mode::offline);
  EXPECT_EQ(adb_command(adb.port(), "R58MBLINK", "echo step 2"), "FAIL device offline");
  std::vector<std::future<std::string>> agents;
  for (int i = 0; i < 20; ++i) {
    agents.push_back(std::async(std::launch::async, [&, i] {
      return adb_command(p.proxy_port, "R58MBLINK", "echo held " + std::to_string(i));
    }));
  }
  ASSERT_TRUE(eventually([&] { return proxy_count(p.k, "held") >= 20; }));
  adb.set_device("R58MBLINK", mode::ok);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(agents[static_cast<std::size_t>(i)].get(), "held " + std::to_string(i) + "\n");
  }
  EXPECT_TRUE(eventually([&] { return proxy_count(p.k, "held_served") >= 20; }));
  EXPECT_EQ(proxy_count(p.k, "held_expired"), 0u);

  // Requests that name no phone go straight through, and their answers come back unchanged.
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), p.proxy_port));
  asio::write(s, asio::buffer(*core::adb_request("host:version")));
  std::string reply(12, '\0');
  asio::read(s, asio::buffer(reply));
  EXPECT_EQ(reply, "OKAY00040029");
  // A phone the keeper does not know is not waited for: adb's own answer comes back, unheld.
  EXPECT_EQ(adb_command(p.proxy_port, "nobody", "echo x"), "FAIL device 'nobody' not found");
  EXPECT_TRUE(eventually([&] { return proxy_count(p.k, "connections") >= 23; }));
  EXPECT_EQ(proxy_count(p.k, "held"), 20u);
  EXPECT_EQ(proxy_count(p.k, "held_expired"), 0u);
}

TEST(devices, a_held_command_gets_adbs_refusal_once_the_hold_runs_out) {
  fake adb;
  adb.set_device("R58MGONE", mode::ok);
  auto p = start_proxied_keeper(adb.port(), "300");
  ASSERT_TRUE(reaches(p.k, "R58MGONE", "online"));
  adb.set_device("R58MGONE", mode::offline);
  ASSERT_TRUE(reaches(p.k, "R58MGONE", "offline"));
  EXPECT_EQ(adb_command(p.proxy_port, "R58MGONE", "echo x"), "FAIL device offline");
  EXPECT_TRUE(eventually([&] { return proxy_count(p.k, "held_expired") == 1; }));
  const auto metrics = http_call(p.k.admin_port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("nines_adb_proxy_held_total{result=\"expired\"} 1"), std::string::npos);
}

TEST(devices, a_held_command_whose_agent_left_is_dropped_not_sent_later_for_nobody) {
  fake adb;
  adb.set_device("R58MLEFT", mode::ok);
  auto p = start_proxied_keeper(adb.port(), "20000");
  ASSERT_TRUE(reaches(p.k, "R58MLEFT", "online"));
  adb.set_device("R58MLEFT", mode::offline);
  ASSERT_TRUE(reaches(p.k, "R58MLEFT", "offline"));
  {
    asio::io_context io;
    tcp::socket agent(io);
    agent.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), p.proxy_port));
    asio::write(agent, asio::buffer(*core::adb_request("host-serial:R58MLEFT:get-state")));
    ASSERT_TRUE(eventually([&] { return proxy_count(p.k, "held") == 1; }));
  }  // the agent gives up and closes its connection
  EXPECT_TRUE(eventually([&] { return proxy_count(p.k, "held_abandoned") == 1; }));
  adb.set_device("R58MLEFT", mode::ok);
  ASSERT_TRUE(reaches(p.k, "R58MLEFT", "online"));
  EXPECT_EQ(adb.count("service:host-serial:R58MLEFT:get-state"), 0);  // never reached adb
  EXPECT_EQ(proxy_count(p.k, "held_served"), 0u);
  EXPECT_EQ(proxy_count(p.k, "held_expired"), 0u);
}

TEST(devices, the_keeper_runs_inside_nines_edge_with_a_devices_table) {
  fake adb;
  adb.set_device("R58MEDGE", mode::ok);
  auto mock = start_mock();
  const std::string toml = "[devices]\nadb_server = \"127.0.0.1:" + std::to_string(adb.port()) +
                           "\"\n[[uplinks]]\nurl = \"" + mock.url() + "/v1\"\n";
  auto edge = start_edge(toml);
  const keeper k{nullptr, edge.admin_port};
  EXPECT_TRUE(reaches(k, "R58MEDGE", "online"));
  // Its metrics with the edge's, on the edge's admin listener; the edge's own endpoints unchanged.
  const auto metrics = http_call(edge.admin_port, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("nines_devices{state=\"online\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("nines_build_info"), std::string::npos);
  EXPECT_EQ(http_call(edge.admin_port, "GET", "/status").status, 200u);
  EXPECT_EQ(http_call(edge.admin_port, "GET", "/devices/R58MEDGE").status, 200u);
  // A gateway has no phones beside it: the table is refused, with where it belongs.
  const auto path = temp_path(".toml");
  std::ofstream(path) << "[devices]\n[[upstreams]]\nurl = \"" << mock.url() << "/v1\"\n";
  process gw({binary(), "gateway", "--config", path, "--check"});
  EXPECT_EQ(gw.wait_exit(), 2);
  EXPECT_NE(gw.output().find("belongs to a nines edge configuration"), std::string::npos)
      << gw.output();
}

TEST(devices, a_phone_away_too_long_and_a_fleet_under_its_objective_are_alerted_then_resolved) {
  http_recorder receiver;
  fake adb;
  // The steady phone answers 300 ms late: until its first probe ends it is unknown, and the
  // fleet's hour is not under its objective for it (evaluated every 100 ms meanwhile).
  adb.set_device("R58MSTEADY", mode::slow);
  adb.set_device("R58MAWAY", mode::ok);
  const std::string toml =
      "[devices]\nalert_offline_after_ms = 1000\nonline_objective_percent = 99.9\n"
      "[alerting]\nwebhooks = [\"" +
      receiver.url("/hooks/phones") +
      "\"]\n"
      "evaluation_interval_ms = 100\n";
  auto k = start_keeper(adb.port(), {}, toml);
  ASSERT_TRUE(reaches(k, "R58MAWAY", "online"));
  ASSERT_TRUE(reaches(k, "R58MSTEADY", "online"));
  EXPECT_EQ(receiver.requests().size(), 0u);  // a healthy fleet says nothing

  adb.set_device("R58MAWAY", mode::offline);
  ASSERT_TRUE(reaches(k, "R58MAWAY", "offline"));
  // The fleet's hour dips under 99.9% at once; the phone's alert waits its second.
  ASSERT_TRUE(receiver.wait_for(2));
  std::map<std::string, json::object> fired;
  for (const auto& r : receiver.requests()) {
    EXPECT_EQ(r.target, "/hooks/phones");
    const auto m = json::parse(r.body).as_object();
    EXPECT_EQ(m.at("status").as_string(), "firing");
    const auto& a = m.at("alerts").as_array().at(0).as_object();
    fired[std::string(a.at("labels").at("alertname").as_string())] = a;
  }
  ASSERT_TRUE(fired.contains("NinesDeviceOffline"));
  ASSERT_TRUE(fired.contains("NinesFleetOnlineLow"));
  EXPECT_EQ(fired["NinesDeviceOffline"].at("labels").at("serial").as_string(), "R58MAWAY");
  EXPECT_EQ(fired["NinesFleetOnlineLow"].at("labels").at("severity").as_string(), "page");
  EXPECT_EQ(
      metric_value(
          k.admin_port,
          R"(nines_alerts_firing{alertname="NinesDeviceOffline",serial="R58MAWAY",severity="warning"})"),
      1u);
  EXPECT_EQ(
      metric_value(
          k.admin_port,
          R"(nines_alerts_firing{alertname="NinesDeviceOffline",serial="R58MSTEADY",severity="warning"})"),
      0u);

  // Back: the phone's alert is resolved (the fleet's hour stays under its objective a while).
  adb.set_device("R58MAWAY", mode::ok);
  ASSERT_TRUE(reaches(k, "R58MAWAY", "online"));
  ASSERT_TRUE(receiver.wait_for(3));
  const auto last = json::parse(receiver.requests().at(2).body).as_object();
  EXPECT_EQ(last.at("status").as_string(), "resolved");
  EXPECT_EQ(last.at("alerts").as_array().at(0).at("labels").at("serial").as_string(), "R58MAWAY");
}

TEST(devices, a_bad_configuration_is_refused_with_every_problem_and_its_place) {
  const auto path = temp_path(".toml");
  std::ofstream(path) << "[devices]\n"
                         "adb_server = \"localhost\"\n"
                         "probe_interval_ms = 400\n"
                         "probe_timeout_ms = 500\n"
                         "surprise = 1\n"
                         "online_objective_percent = 101\n"
                         "[[devices.network]]\n"
                         "address = \"emulator-5554\"\n"
                         "[admin]\n"
                         "listen = \"0.0.0.0:9903\"\n";
  process p({binary(), "devices", "--config", path, "--check"});
  EXPECT_EQ(p.wait_exit(), 2);
  const auto out = p.output();
  EXPECT_NE(out.find(":2:"), std::string::npos) << out;  // adb_server, with its line
  EXPECT_NE(out.find("devices.adb_server"), std::string::npos) << out;
  EXPECT_NE(out.find("devices.surprise"), std::string::npos) << out;
  EXPECT_NE(out.find("devices.online_objective_percent"), std::string::npos) << out;
  EXPECT_NE(out.find("devices.network[0].address"), std::string::npos) << out;
  EXPECT_NE(out.find("devices.probe_timeout_ms"), std::string::npos) << out;
  EXPECT_NE(out.find("admin.key_hash"), std::string::npos) << out;
  // The ADB protocol has no authentication: the proxy listens on loopback or not at all.
  process open_proxy({binary(), "devices", "--adb-proxy", "0.0.0.0:5038", "--check"});
  EXPECT_EQ(open_proxy.wait_exit(), 2);
  EXPECT_NE(open_proxy.output().find("--adb-proxy"), std::string::npos);
  process ok({binary(), "devices", "--adb-port", "5037", "--check"});
  EXPECT_EQ(ok.wait_exit(), 0);
}

// A reconnect storm: 500 network phones lose their link at once and come back at once. The keeper
// drops the stale transports, knocks and reconnects all of them on its one thread without
// stalling: a healthy USB phone beside them keeps being probed on time (no miss, no state
// change) throughout, the admin listener answers, and every one of the 500 is online again.
// Under a sanitizer (an order of magnitude slower, on a CI machine shared with another test) the
// storm is 100 phones: that run is there for memory errors on the storm's paths, and 500 phones'
// load is the release build's to carry (the healthy phone's 500 ms probe deadline does not
// stretch with the sanitizer).
#if defined(__SANITIZE_ADDRESS__)
constexpr int storm_phones = 100;
#else
constexpr int storm_phones = 500;
#endif

TEST(devices, five_hundred_phones_reconnecting_at_once_do_not_stall_the_keeper) {
  constexpr int phones = storm_phones;
  fake adb;
  adb.set_device("R58MHEALTHY", mode::ok);
  asio::io_context io;
  // Each phone's adbd port, answering knocks: 127.77.X.Y:5555, an address of its own on loopback
  // and a port outside the ephemeral range, so that no other test's socket can take it while it
  // is closed.
  std::vector<std::unique_ptr<tcp::acceptor>> ports(phones);
  std::vector<tcp::endpoint> at;
  std::vector<std::string> addresses;
  std::vector<std::string> args;
  auto listen = [&](int i) {
    ports[i] = std::make_unique<tcp::acceptor>(io);
    ports[i]->open(tcp::v4());
    ports[i]->set_option(asio::socket_base::reuse_address(true));
    ports[i]->bind(at[i]);
    ports[i]->listen();
  };
  for (int i = 0; i < phones; ++i) {
    const std::string ip = "127.77." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250);
    at.emplace_back(asio::ip::make_address(ip), 5555);
    listen(i);
    addresses.push_back(ip + ":5555");
    adb.set_connectable(addresses.back(), true);
    args.insert(args.end(), {"--network", addresses.back()});
  }
  auto k = start_keeper(adb.port(), args);
  auto count_in = [&](const std::string& state) {
    const auto d = devices_of(k);
    int n = 0;
    for (const auto& dev : d.at("devices").as_array()) {
      n += dev.at("state").as_string() == state && dev.at("serial").as_string() != "R58MHEALTHY";
    }
    return n;
  };
  // Looked at every 250 ms: each look costs the keeper a 501-phone /devices.
  const auto every = milliseconds(250);
  ASSERT_TRUE(eventually([&] { return count_in("online") == phones; }, milliseconds(60000), every));
  ASSERT_TRUE(reaches(k, "R58MHEALTHY", "online"));
  const auto healthy = [&] {
    return json::parse(http_call(k.admin_port, "GET", "/devices/R58MHEALTHY").body).as_object();
  };
  const auto before = healthy();

  // Every link goes silent at once (adb still lists them: it sets no keepalive); their ports stop
  // answering knocks.
  for (int i = 0; i < phones; ++i) {
    ports[i]->close();
    adb.set_connectable(addresses[i], false);
    adb.set_device(addresses[i], mode::silent);
  }
  EXPECT_TRUE(
      eventually([&] { return count_in("reconnecting") == phones; }, milliseconds(60000), every));
  // Back at once: their ports answer, adb connects them.
  for (int i = 0; i < phones; ++i) {
    listen(i);
    adb.set_connectable(addresses[i], true);
  }
  EXPECT_TRUE(eventually([&] { return count_in("online") == phones; }, milliseconds(90000), every));

  // The healthy phone was probed all along and never judged: not one state change (a stalled
  // keeper would leave it unprobed, or its probes unanswered 4 times in a row: suspect). A single
  // miss is one probe past its 500 ms deadline, which a shared 2-core machine under a sanitizer
  // can cause by itself: shown, not asserted.
  const auto after = healthy();
  EXPECT_EQ(after.at("state").as_string(), "online");
  EXPECT_EQ(after.at("transitions"), before.at("transitions"))
      << "misses: " << before.at("misses") << " -> " << after.at("misses")
      << ", the last problem: " << after.at("last_problem");
  EXPECT_GT(after.at("probes").to_number<std::uint64_t>(),
            before.at("probes").to_number<std::uint64_t>());
  const auto fleet = devices_of(k).at("fleet").as_object();
  EXPECT_GE(fleet.at("reconnects").to_number<std::uint64_t>(), 2u * phones);
}

}  // namespace
}  // namespace nines::test
