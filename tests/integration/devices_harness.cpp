#include "devices_harness.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <fstream>

#include "core/devices/adb_wire.hpp"

namespace nines::test {

namespace json = boost::json;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

keeper start_keeper(unsigned short adb_port, std::vector<std::string> extra,
                    const std::string& toml) {
  std::vector<std::string> argv{
      binary(), "devices", "--adb-port", std::to_string(adb_port), "--admin-listen", "127.0.0.1:0"};
  if (!toml.empty()) {
    const auto path = temp_path(".toml");
    std::ofstream(path) << toml;
    argv.insert(argv.end(), {"--config", path});
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  keeper k;
  k.proc = std::make_unique<process>(argv);
  auto line = k.proc->wait_for_output("nines admin listening on");
  if (!line) {
    throw std::runtime_error("nines devices did not start: " + k.proc->output());
  }
  k.admin_port = port_from(*line);
  return k;
}

json::object devices_of(const keeper& k) {
  const auto r = http_call(k.admin_port, "GET", "/devices");
  EXPECT_EQ(r.status, 200u);
  return json::parse(r.body).as_object();
}

std::string state_of(const keeper& k, const std::string& serial) {
  const auto all = devices_of(k);
  for (const auto& d : all.at("devices").as_array()) {
    if (d.at("serial").as_string() == serial) {
      return std::string(d.at("state").as_string());
    }
  }
  return "(absent)";
}

bool reaches(const keeper& k, const std::string& serial, const std::string& state) {
  return eventually([&] { return state_of(k, serial) == state; });
}

std::string adb_command(unsigned short port, const std::string& serial,
                        const std::string& command) {
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    return "FAIL connect: " + ec.message();
  }
  const timeval bound{20, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
  auto send = [&](const std::string& service) {
    const auto wire = core::adb_request(service);
    asio::write(s, asio::buffer(*wire), ec);
  };
  auto status = [&]() -> std::string {
    char head[4];
    asio::read(s, asio::buffer(head), ec);
    if (ec) {
      return "FAIL read: " + ec.message();
    }
    if (std::string_view(head, 4) == "OKAY") {
      return "OKAY";
    }
    char len[4];
    asio::read(s, asio::buffer(len), ec);
    const auto n = core::parse_adb_length(std::string_view(len, 4)).value_or(0);
    std::string message(n, '\0');
    asio::read(s, asio::buffer(message), ec);
    return "FAIL " + message;
  };
  send("host:transport:" + serial);
  if (auto st = status(); st != "OKAY") {
    return st;
  }
  send("shell:" + command);
  if (auto st = status(); st != "OKAY") {
    return st;
  }
  std::string out;
  char buf[512];
  for (;;) {
    const auto n = s.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) {
      break;
    }
  }
  return out;
}

proxied_keeper start_proxied_keeper(unsigned short adb_port, const std::string& hold_ms) {
  proxied_keeper p;
  p.k = start_keeper(adb_port, {"--adb-proxy", "127.0.0.1:0", "--hold-ms", hold_ms});
  auto line = p.k.proc->wait_for_output("adb proxy listening on");
  if (!line) {
    throw std::runtime_error("no adb proxy: " + p.k.proc->output());
  }
  p.proxy_port = port_from(line->substr(0, line->find(" (holding")));
  return p;
}

std::uint64_t proxy_count(const keeper& k, const std::string& name) {
  return devices_of(k).at("proxy").at(name).to_number<std::uint64_t>();
}

}  // namespace nines::test
