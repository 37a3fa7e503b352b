// The device keeper against Debian's own adb server (1:29.0.6), with fake phones on the other side:
// tools/fake_adbd.hpp speaks the ADB transport (CNXN, AUTH, OPEN, OKAY, WRTE, CLSE; shell and
// sync) as a phone's adbd does. The real server runs in the foreground (`adb nodaemon server`) on a
// free loopback port, under a private HOME (its key is made there) and with
// ADB_LOCAL_TRANSPORT_MAX_PORT=0 (it scans no emulator ports); phones are attached with the real
// `adb connect`, and agents' commands are the real adb client's. What only the wire shows is
// checked here: the keeper's probes reach the phone through the server, a zombie is told from a
// healthy phone while adb still lists both as "device", an unauthorized phone is never probed, a
// phone that crashed is connected again by the keeper (adb gives up), and an agent's screencap,
// pull and tap through the ADB proxy arrive byte for byte and wait out a reboot.
//
// The silent link (the phone's WiFi gone, nothing answering) is
// tests/netns/devices_blackhole_test.sh.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio.hpp>
#include <fstream>
#include <future>
#include <mutex>

#include "devices_harness.hpp"
#include "harness.hpp"
#include "tools/fake_adbd.hpp"

namespace nines::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using phone_mode = tools::fake_adbd::mode;

const std::string adb_binary = "/usr/bin/adb";

unsigned short free_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

bool accepts(unsigned short port) {
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  return !ec;
}

// Debian's adb server, in the foreground (its id is this process's child), stopped with the test.
struct real_adb {
  std::string home = temp_path(".adb-home");
  unsigned short port = free_port();
  std::unique_ptr<process> server;

  real_adb() {
    if (::access(adb_binary.c_str(), X_OK) != 0) {
      throw std::runtime_error(adb_binary +
                               " is missing: scripts/install-deps.sh test installs it (Debian "
                               "package adb)");
    }
    ::mkdir(home.c_str(), 0700);
    server = std::make_unique<process>(
        std::vector<std::string>{"/usr/bin/env", "HOME=" + home, "ADB_LOCAL_TRANSPORT_MAX_PORT=0",
                                 adb_binary, "-P", std::to_string(port), "nodaemon", "server"});
    // Until it listens, an adb client would start a server of its own: nobody runs one before.
    if (!eventually([&] { return accepts(port); }, milliseconds(20000))) {
      throw std::runtime_error("the adb server does not listen: " + server->output());
    }
  }

  // The real adb client, `adb -P PORT ARGS...`, talking to this server or (through_port) to
  // whatever listens there (the keeper's ADB proxy). Its exit code and output.
  std::pair<int, std::string> run(std::vector<std::string> args,
                                  unsigned short through_port = 0) const {
    std::vector<std::string> argv{"/usr/bin/env", "HOME=" + home, adb_binary, "-P",
                                  std::to_string(through_port != 0 ? through_port : port)};
    argv.insert(argv.end(), args.begin(), args.end());
    process client(argv);
    const auto code = client.wait_exit(milliseconds(60000));
    return {code.value_or(-1), client.output()};
  }
};

std::string serial_of(const tools::fake_adbd& phone) {
  return "127.0.0.1:" + std::to_string(phone.port());
}

void attach(const real_adb& adb, const tools::fake_adbd& phone) {
  const auto [code, out] = adb.run({"connect", serial_of(phone)});
  ASSERT_EQ(code, 0) << out;
  ASSERT_NE(out.find("connected to " + serial_of(phone)), std::string::npos) << out;
}

TEST(devices_real_adb, the_keepers_probes_reach_the_phone_and_a_zombie_is_told_from_a_healthy_one) {
  tools::fake_adbd phone;
  real_adb adb;
  attach(adb, phone);
  const auto serial = serial_of(phone);
  auto k = start_keeper(adb.port);
  ASSERT_TRUE(reaches(k, serial, "online"));
  // Each probe crossed the real server and reached the phone as a shell command.
  EXPECT_TRUE(eventually([&] { return phone.count("shell:echo") >= 2; }));
  const auto [code, out] = adb.run({"-s", serial, "shell", "echo", "from", "an", "agent"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "from an agent\n");

  // Commands are confirmed and never finish: adb still lists the phone as a device.
  phone.set_mode(phone_mode::hang);
  EXPECT_TRUE(reaches(k, serial, "zombie"));
  const auto [list_code, list] = adb.run({"devices"});
  EXPECT_NE(list.find(serial + "\tdevice"), std::string::npos) << list;
  const auto d = boost::json::parse(http_call(k.admin_port, "GET", "/devices/" + serial).body);
  EXPECT_EQ(d.at("adb_state").as_string(), "device");
  EXPECT_EQ(d.at("score").to_number<double>(), 0.0);

  phone.set_mode(phone_mode::ok);
  EXPECT_TRUE(reaches(k, serial, "online"));
}

TEST(devices_real_adb, a_phone_that_has_not_accepted_the_key_is_unauthorized_and_never_probed) {
  tools::fake_adbd phone;
  phone.set_mode(phone_mode::unauthorized);
  real_adb adb;
  const auto serial = serial_of(phone);
  // What adb says when the phone never accepts its key (the prompt on the phone unanswered).
  const auto [connect_code, said] = adb.run({"connect", serial});
  EXPECT_NE(said.find("failed to authenticate to " + serial), std::string::npos) << said;
  auto k = start_keeper(adb.port);
  EXPECT_TRUE(reaches(k, serial, "unauthorized"));
  EXPECT_GE(phone.count("auth"), 1);  // the server offered its key
  EXPECT_EQ(phone.count("open"), 0);  // and no command was ever sent
  const auto [code, out] = adb.run({"-s", serial, "shell", "echo", "x"});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("unauthorized"), std::string::npos) << out;
}

TEST(devices_real_adb, a_phone_that_crashed_is_connected_again_by_the_keeper_once_it_is_back) {
  tools::fake_adbd phone;
  real_adb adb;
  attach(adb, phone);
  const auto serial = serial_of(phone);
  auto k = start_keeper(adb.port);
  ASSERT_TRUE(reaches(k, serial, "online"));
  ASSERT_EQ(phone.count("connect"), 1);

  // The phone dies: its connection closes, adb drops the transport; the keeper knocks on a port
  // that refuses.
  phone.crash();
  EXPECT_TRUE(reaches(k, serial, "reconnecting"));
  const auto [list_code, list] = adb.run({"devices"});
  EXPECT_EQ(list.find(serial + "\tdevice"), std::string::npos) << list;

  // Back: nobody runs adb connect by hand; the keeper does, and probes it.
  phone.reboot();
  EXPECT_TRUE(reaches(k, serial, "online"));
  EXPECT_EQ(phone.count("connect"), 2);
  const auto d = boost::json::parse(http_call(k.admin_port, "GET", "/devices/" + serial).body);
  EXPECT_GE(d.at("reconnects").to_number<std::uint64_t>(), 1u);
  const auto [code, out] = adb.run({"-s", serial, "shell", "echo", "back"});
  EXPECT_EQ(out, "back\n");
}

TEST(devices_real_adb,
     an_agents_screencap_pull_and_tap_through_the_proxy_are_exact_and_wait_out_a_reboot) {
  tools::fake_adbd phone("127.0.0.1", 0, 1024 * 1024 + 17);  // several sync DATA chunks
  real_adb adb;
  attach(adb, phone);
  const auto serial = serial_of(phone);
  auto p = start_proxied_keeper(adb.port, "20000");
  ASSERT_TRUE(reaches(p.k, serial, "online"));

  // One agent step as Open-AutoGLM takes it, with the real adb client pointed at the proxy.
  const auto shot = temp_path(".png");
  auto step = [&](const std::string& x, const std::string& y) {
    const auto cap =
        adb.run({"-s", serial, "shell", "screencap", "-p", "/sdcard/tmp.png"}, p.proxy_port);
    const auto pull = adb.run({"-s", serial, "pull", "/sdcard/tmp.png", shot}, p.proxy_port);
    const auto tap = adb.run({"-s", serial, "shell", "input", "tap", x, y}, p.proxy_port);
    EXPECT_EQ(cap.first + pull.first + tap.first, 0) << cap.second << pull.second << tap.second;
    return cap.first == 0 && pull.first == 0 && tap.first == 0;
  };
  ASSERT_TRUE(step("540", "1170"));
  EXPECT_EQ(read_file(shot), phone.screenshot(1));
  ASSERT_FALSE(phone.taps().empty());
  EXPECT_EQ(phone.taps().back(), "540 1170");

  // The phone reboots. Plain adb fails the step at once; through the proxy the step waits.
  phone.crash();
  ASSERT_TRUE(reaches(p.k, serial, "reconnecting"));
  const auto [plain_code, plain] = adb.run({"-s", serial, "shell", "input", "tap", "1", "1"});
  EXPECT_NE(plain_code, 0) << plain;
  const auto held_before = proxy_count(p.k, "held");
  auto held_step = std::async(std::launch::async, [&] { return step("77", "88"); });
  ASSERT_TRUE(eventually([&] { return proxy_count(p.k, "held") > held_before; }));
  phone.reboot();
  EXPECT_TRUE(held_step.get());
  EXPECT_EQ(read_file(shot), phone.screenshot(2));
  EXPECT_EQ(phone.taps().back(), "77 88");
  EXPECT_EQ(phone.count("tap"), 2);  // the plain command never reached the phone
  EXPECT_EQ(proxy_count(p.k, "held_expired"), 0u);
}

// A phone attached to the real adb server and kept by a keeper whose ADB proxy holds `hold_ms`,
// with a screenshot at /sdcard/tmp.png taken through the proxy.
struct phone_with_a_screenshot {
  tools::fake_adbd phone;
  real_adb adb;
  std::string serial;
  proxied_keeper p;

  phone_with_a_screenshot(std::size_t screenshot_bytes, const std::string& hold_ms)
      : phone("127.0.0.1", 0, screenshot_bytes), serial(serial_of(phone)) {
    const auto [code, out] = adb.run({"connect", serial});
    if (code != 0 || out.find("connected to " + serial) == std::string::npos) {
      throw std::runtime_error("adb connect: " + out);
    }
    p = start_proxied_keeper(adb.port, hold_ms);
    if (!reaches(p.k, serial, "online")) {
      throw std::runtime_error("the phone did not come online");
    }
    const auto [cap_code, cap] =
        adb.run({"-s", serial, "shell", "screencap", "-p", "/sdcard/tmp.png"}, p.proxy_port);
    if (cap_code != 0) {
      throw std::runtime_error("screencap: " + cap);
    }
  }

  // `adb pull` of the screenshot to `to`, through the proxy or (plain) straight to adb.
  std::pair<int, std::string> pull(const std::string& to, bool plain = false) const {
    return adb.run({"-s", serial, "pull", "/sdcard/tmp.png", to}, plain ? 0 : p.proxy_port);
  }
};

// A pull cut half-way (the phone's link died in its middle, the phone reconnected later): plain
// adb fails it; through the proxy it goes on from the bytes the agent has once the phone is back,
// and the file is whole, byte for byte.
TEST(devices_real_adb, a_pull_cut_half_way_goes_on_through_the_proxy_once_the_phone_is_back) {
  phone_with_a_screenshot f(1024 * 1024 + 17, "20000");
  const std::size_t cut = 300 * 1024 + 5;  // inside the fifth DATA piece

  f.phone.cut_next_pull(cut);
  const auto [plain_code, plain] = f.pull(temp_path(".png"), true);
  EXPECT_NE(plain_code, 0) << plain;
  ASSERT_EQ(f.phone.count("pull_cut"), 1);
  f.phone.reboot();
  ASSERT_TRUE(reaches(f.p.k, f.serial, "online"));

  const auto shot = temp_path(".png");
  f.phone.cut_next_pull(cut);
  auto pulled = std::async(std::launch::async, [&] { return f.pull(shot); });
  ASSERT_TRUE(eventually([&] { return f.phone.count("pull_cut") == 2; }));
  ASSERT_TRUE(reaches(f.p.k, f.serial, "reconnecting"));
  f.phone.reboot();
  const auto [code, out] = pulled.get();
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(read_file(shot), f.phone.screenshot(1));
  EXPECT_TRUE(
      eventually([&] { return proxy_count(f.p.k, "sync_resumed") == 1; }));  // snapshots lag
  EXPECT_EQ(proxy_count(f.p.k, "sync_lost"), 0u);
}

// The same cut with the phone not back within the hold: the agent's adb hears why its pull
// failed (a sync FAIL of the proxy's own), and nothing of a partial file is called a success.
TEST(devices_real_adb, a_pull_cut_half_way_whose_phone_stays_away_ends_with_the_proxys_refusal) {
  phone_with_a_screenshot f(512 * 1024, "1500");
  f.phone.cut_next_pull(100 * 1024);
  const auto [code, out] = f.pull(temp_path(".png"));
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("did not come back in time"), std::string::npos) << out;
  EXPECT_TRUE(eventually([&] { return proxy_count(f.p.k, "sync_lost") == 1; }));
  EXPECT_EQ(proxy_count(f.p.k, "sync_resumed"), 0u);
}

// The agent-loop simulator (nines agent-sim) against the real adb server through the proxy and a
// mock model: a step counts only when its screenshot came whole, its answer is the exact one and
// its tap is in the phone's own record once. Each check is shown to fail when its part is wrong:
// a tap recorded twice, a wrong answer, taps missing from the record, a screenshot's size.
TEST(devices_real_adb,
     the_agent_simulator_counts_a_step_only_when_screen_answer_and_tap_are_right) {
  const std::size_t shot_bytes = 200 * 1024 + 3;  // several sync DATA pieces
  const auto taps = temp_path(".taps");
  std::mutex taps_mutex;
  std::ofstream tap_log(taps);  // before the phones: they write it until they stop
  tools::fake_adbd a("127.0.0.1", 0, shot_bytes);
  tools::fake_adbd b("127.0.0.1", 0, shot_bytes);
  for (auto* phone : {&a, &b}) {
    phone->on_tap([&, serial = serial_of(*phone)](const std::string& tap) {
      std::lock_guard lock(taps_mutex);
      tap_log << "tap " << serial << " " << tap << std::endl;
    });
  }
  real_adb adb;
  attach(adb, a);
  attach(adb, b);
  auto p = start_proxied_keeper(adb.port, "20000");
  ASSERT_TRUE(reaches(p.k, serial_of(a), "online"));
  ASSERT_TRUE(reaches(p.k, serial_of(b), "online"));
  auto mock = start_mock();

  auto sim = [&](std::vector<std::string> extra, std::size_t expect_bytes) {
    const auto report = temp_path(".json");
    std::vector<std::string> args{binary(),
                                  "agent-sim",
                                  "--adb-port",
                                  std::to_string(p.proxy_port),
                                  "--phone",
                                  serial_of(a),
                                  "--phone",
                                  serial_of(b),
                                  "--chat",
                                  mock.url(),
                                  "--steps",
                                  "12",
                                  "--screenshot-bytes",
                                  std::to_string(expect_bytes),
                                  "--json",
                                  report};
    args.insert(args.end(), extra.begin(), extra.end());
    process run(args);
    const auto code = run.wait_exit(milliseconds(120000));
    auto doc = boost::json::parse(read_file(report)).as_object();
    return std::make_pair(code.value_or(-1), std::move(doc));
  };

  const auto [ok_code, ok] = sim({"--tap-log", taps}, shot_bytes);
  EXPECT_EQ(ok_code, 0) << boost::json::serialize(ok);
  EXPECT_EQ(ok.at("succeeded").to_number<std::uint64_t>(), 12u);
  EXPECT_TRUE(ok.at("taps_checked").as_bool());
  EXPECT_EQ(ok.at("repeated_taps").to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(a.count("tap") + b.count("tap"), 12);
  EXPECT_EQ(a.count("pull") + b.count("pull"), 12);

  // One phone's agent, and a record in which its first tap landed twice: that step fails, and so
  // does the run, whatever its rate.
  {
    const auto twice = temp_path(".twice");
    std::ofstream record(twice);
    for (int step = 1; step <= 12; ++step) {
      record << "tap " << serial_of(a) << " " << step << " 1\n";
    }
    record << "tap " << serial_of(a) << " 1 1\n";
    record.close();
    const auto report = temp_path(".json");
    process run({binary(), "agent-sim", "--adb-port", std::to_string(p.proxy_port), "--phone",
                 serial_of(a), "--chat", mock.url(), "--steps", "12", "--screenshot-bytes",
                 std::to_string(shot_bytes), "--tap-log", twice, "--objective", "0.5", "--json",
                 report});
    EXPECT_EQ(run.wait_exit(milliseconds(120000)), 1) << run.output();
    const auto doubled = boost::json::parse(read_file(report)).as_object();
    EXPECT_EQ(doubled.at("repeated_taps").to_number<std::uint64_t>(), 1u);
    EXPECT_EQ(doubled.at("succeeded").to_number<std::uint64_t>(), 11u);
    EXPECT_EQ(doubled.at("failures").at("tap: landed twice").to_number<std::uint64_t>(), 1u);
  }

  // An agent expecting another answer (a model with 23 tokens): every step fails at the chat.
  const auto [wrong_code, wrong] = sim({"--answer-tokens", "23"}, shot_bytes);
  EXPECT_EQ(wrong_code, 1);
  EXPECT_EQ(wrong.at("succeeded").to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(wrong.at("failures").at("chat: a wrong answer").to_number<std::uint64_t>(), 12u);

  // Taps the phones never recorded (a record that lacks them): every step fails at the tap.
  const auto empty = temp_path(".none");
  std::ofstream(empty).flush();
  const auto [lost_code, lost] = sim({"--tap-log", empty}, shot_bytes);
  EXPECT_EQ(lost_code, 1);
  EXPECT_EQ(lost.at("failures")
                .at("tap: adb said done, the phone never got it")
                .to_number<std::uint64_t>(),
            12u);

  // A screenshot of another size than the agent expects: the pull is not a whole screen.
  const auto [short_code, short_shot] = sim({}, shot_bytes + 1);
  EXPECT_EQ(short_code, 1);
  EXPECT_EQ(short_shot.at("succeeded").to_number<std::uint64_t>(), 0u);
}

}  // namespace
}  // namespace nines::test
