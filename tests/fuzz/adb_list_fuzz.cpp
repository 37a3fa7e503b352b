// libFuzzer target: what an adb server (or something posing as one) sends the device keeper:
// device lists (core/devices/adb_wire.hpp), lengths, statuses and network serials. Never a
// crash; what is accepted holds what the keeper relies on: at most max_devices devices, each a
// valid serial listed once with a state, every other non-blank line reported. And the answers a
// pull reads (sync DATA/DONE/FAIL): each one taken lies inside the bytes given, within its limits;
// and relayed by the ADB proxy across breaks (core/devices/resumable_pull.hpp), whole pieces only.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "core/devices/adb_transport_wire.hpp"
#include "core/devices/adb_wire.hpp"
#include "core/devices/repeatable_command.hpp"
#include "core/devices/resumable_pull.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nines::core;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t max_devices = 1 + size % 16;
  const auto list = parse_device_list(text, max_devices);
  if (list.devices.size() > max_devices) {
    __builtin_trap();
  }
  std::set<std::string> serials;
  for (const auto& d : list.devices) {
    if (!valid_adb_serial(d.serial) || d.state.empty() || d.state.size() > 256 ||
        d.model.size() > 128 || !serials.insert(d.serial).second) {
      __builtin_trap();
    }
    if (d.listing != classify_adb_state(d.state)) {
      __builtin_trap();
    }
  }
  std::size_t lines = 0;
  for (std::size_t i = 0; i < text.size();) {
    const auto nl = text.find('\n', i);
    auto line = text.substr(i, nl == std::string_view::npos ? std::string_view::npos : nl - i);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    lines += line.find_first_not_of(" \t") != std::string_view::npos;
    i = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  if (list.devices.size() + list.problems.size() != lines) {
    __builtin_trap();  // every non-blank line is either kept or reported
  }
  if (size >= 4) {
    const auto four = text.substr(0, 4);
    if (const auto n = parse_adb_length(four); n && *n > 0xffff) {
      __builtin_trap();
    }
    parse_adb_status(four);
  }
  if (const auto a = parse_network_serial(text);
      a && (a->port == 0 || a->port > 65535 || a->host.empty())) {
    __builtin_trap();
  }
  if (const auto r = adb_request(text)) {
    if (r->size() != text.size() + 4 || parse_adb_length(r->substr(0, 4)) != text.size()) {
      __builtin_trap();
    }
  }
  // A command adb never confirmed goes again only when it is a read: nothing that can join
  // another command outside single quotes.
  if (repeatable_command(text) && text != "sync:" &&
      text.find_first_of(";&|<>`$\n") != std::string_view::npos &&
      text.find('\'') == std::string_view::npos) {
    __builtin_trap();
  }
  std::string_view rest = text;
  for (int i = 0; i < 64; ++i) {  // at most 64 answers, each at least 8 bytes long
    adb_sync_reply r;
    const auto parsed = parse_adb_sync_reply(rest, 256, r);
    if (parsed != adb_sync_parse::done) {
      break;
    }
    if (r.consumed < 8 || r.consumed > rest.size() || r.payload.size() != r.consumed - 8 ||
        (r.what == adb_sync_reply::kind::data && r.payload.size() > adb_sync_max_data) ||
        (r.what == adb_sync_reply::kind::fail && r.payload.size() > 256)) {
      __builtin_trap();
    }
    rest.remove_prefix(r.consumed);
  }
  // The same bytes as a pull's answer relayed by the ADB proxy, its stream broken every third
  // read: the agent gets whole pieces only, the file's bytes once each, and a last answer (DONE
  // or FAIL) exactly when the pull is over.
  resumable_pull pull;
  std::string from_adb;
  std::string agent;
  auto step = resumable_pull::step::more;
  const std::size_t piece = 1 + (size > 0 ? data[0] % 97 : 0);
  for (std::size_t at = 0, reads = 0; at < text.size() && step == resumable_pull::step::more;
       at += piece, ++reads) {
    from_adb.append(text.substr(at, piece));
    step = pull.take(from_adb, agent);
    if (step == resumable_pull::step::more && reads % 3 == 2) {
      from_adb.clear();
      pull.restart();
    }
  }
  std::string_view got = agent;
  std::uint64_t file_bytes = 0;
  bool ended = false;
  while (!got.empty()) {
    adb_sync_reply r;
    if (ended || parse_adb_sync_reply(got, 0xffff, r) != adb_sync_parse::done) {
      __builtin_trap();  // bytes after the end, or not a whole piece
    }
    if (r.what == adb_sync_reply::kind::data) {
      file_bytes += r.payload.size();
    } else {
      ended = true;
    }
    got.remove_prefix(r.consumed);
  }
  if (file_bytes != pull.delivered() || ended != (step != resumable_pull::step::more)) {
    __builtin_trap();
  }
  return 0;
}
