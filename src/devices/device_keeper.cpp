#include "devices/device_keeper.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "core/health/health_score.hpp"
#include "net/spawn.hpp"

namespace nines::devices {

namespace asio = net::asio;
using core::device_state;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

struct device_keeper::entry {
  entry(const core::detector_policy& p, bool network, bool configured, time_point now)
      : life(p, network, configured, now) {}
  core::device_lifecycle life;
  core::online_ledger ledger;
  std::optional<core::network_address> address;
  std::string adb_state;
  std::string last_problem;
  // The day's and the month's spans, recomputed every 10 s: they sum hundreds of buckets and move
  // slowly (the hour's is summed at every snapshot).
  core::online_span day;
  core::online_span month;
  time_point long_spans_at{};
  bool bringing_back = false;
  unsigned knocks_in_flight = 0;
  bool knock_answered = false;
  std::uint64_t reconnects = 0;
};

device_keeper::device_keeper(asio::io_context& io, keeper_settings settings, std::uint64_t seed)
    : io_(io), settings_(std::move(settings)), random_(seed) {
  const auto now = steady::now();
  for (const auto& address : settings_.network) {
    add(address, true, now);
  }
  publish(now);
}

device_keeper::~device_keeper() = default;

device_keeper::entry* device_keeper::add(const std::string& serial, bool configured,
                                         time_point now) {
  if (auto it = devices_.find(serial); it != devices_.end()) {
    return it->second.get();
  }
  if (devices_.size() >= settings_.max_devices) {
    // Room is made by forgetting the phone removed longest ago; without one, the new is refused.
    auto oldest = devices_.end();
    for (auto it = devices_.begin(); it != devices_.end(); ++it) {
      if (it->second->life.state() == device_state::removed &&
          (oldest == devices_.end() ||
           it->second->life.state_since() < oldest->second->life.state_since())) {
        oldest = it;
      }
    }
    if (oldest == devices_.end()) {
      ++refused_;
      return nullptr;
    }
    devices_.erase(oldest);
  }
  auto address = core::parse_network_serial(serial);
  auto e = std::make_unique<entry>(settings_.policy, address.has_value(), configured, now);
  e->address = std::move(address);
  return devices_.emplace(serial, std::move(e)).first->second.get();
}

void device_keeper::ledger_note(entry& e) {
  // A phone's time is tracked from the first thing learnt of it (device_lifecycle::judged): the
  // moments before its first probe answered are not time spent down (else every start of the
  // keeper, and every phone plugged in, would dip the fleet's hour and page).
  if (!e.life.judged()) {
    return;
  }
  const bool up = e.life.state() == device_state::online;
  if (!e.ledger.started()) {
    e.ledger.record(e.life.judged_at(), up);
  } else if (up != e.ledger.up()) {
    e.ledger.record(e.life.state_since(), up);
  }
}

void device_keeper::start() {
  tick_timer_ = std::make_unique<asio::steady_timer>(io_);
  net::spawn(io_.get_executor(), track(), "the device keeper's list");
  net::spawn(io_.get_executor(), tick_loop(), "the device keeper's tick");
}

void device_keeper::stop() {
  asio::post(io_, [this] {
    stopping_ = true;
    if (tracker_ != nullptr) {
      tracker_->close();
    }
    if (tick_timer_) {
      tick_timer_->cancel();
    }
  });
}

void device_keeper::apply_list(const core::device_list& list) {
  const auto now = steady::now();
  list_problems_ += list.problems.size();
  // One line per list that differs in what was refused, not one per refused line: a server that
  // sends thousands of bad lines does not flood the log.
  const auto summary = list.problems.empty()
                           ? std::string()
                           : fmt::format("{} lines refused, the first: {}", list.problems.size(),
                                         list.problems.front());
  if (summary != last_list_summary_) {
    if (!summary.empty()) {
      spdlog::warn("nines devices: adb's device list: {}", summary);
    }
    last_list_summary_ = summary;
  }
  std::map<std::string_view, const core::listed_device*> listed;
  for (const auto& d : list.devices) {
    listed.emplace(d.serial, &d);
  }
  for (auto& [serial, e] : devices_) {
    if (!listed.contains(serial)) {
      e->adb_state.clear();
      e->life.on_unlisted(now);
      ledger_note(*e);
    }
  }
  for (const auto& d : list.devices) {
    auto* e = add(d.serial, false, now);
    if (e == nullptr) {
      continue;
    }
    e->adb_state = d.state;
    e->life.on_listed(d.listing, now);
    ledger_note(*e);
  }
}

net::awaitable<void> device_keeper::track() {
  unsigned failures = 0;
  while (!stopping_) {
    std::string why;
    auto conn =
        co_await adb_connection::open(settings_.adb, steady::now() + milliseconds(2000), why);
    if (conn && !stopping_) {
      // The short list ("serial<TAB>state"): the long one's properties would not fit 4 hex
      // digits of length for a large fleet.
      auto reply = co_await conn->request("host:track-devices", steady::now() + milliseconds(2000));
      if (reply.okay) {
        tracker_ = conn.get();
        bool first = true;
        while (!stopping_) {
          auto block = co_await conn->read_block(time_point::max(), core::adb_max_list_bytes);
          if (!block) {
            why = conn->timed_out() ? "the adb server stalled in the middle of the device list"
                                    : "the adb server ended the device list";
            break;
          }
          if (!block->empty() && block->back() != '\n') {
            why = "the adb server's device list is out of step (a block not ending a line)";
            break;
          }
          apply_list(core::parse_device_list(*block, settings_.max_devices));
          if (first) {
            first = false;
            failures = 0;  // a list that parses: the server is back
            adb_up_ = true;
            adb_problem_.clear();
            spdlog::info("nines devices: following the adb server at {}:{}", settings_.adb.host,
                         settings_.adb.port);
          }
        }
        tracker_ = nullptr;
      } else {
        why = "host:track-devices: " + reply.failure;
      }
    }
    if (stopping_) {
      break;
    }
    if (adb_up_ || failures == 0) {
      spdlog::warn("nines devices: adb server {}:{}: {}", settings_.adb.host, settings_.adb.port,
                   why);
    }
    adb_up_ = false;
    adb_problem_ = why;
    const auto wait = core::full_jitter_delay(settings_.adb_backoff, failures++, random_);
    co_await net::sleep_for(std::max(wait, milliseconds(50)));
  }
}

net::awaitable<void> device_keeper::probe(std::string serial) {
  const auto started = steady::now();
  const auto report = co_await probe_device(settings_.adb, serial, settings_.policy.probe_timeout);
  auto it = devices_.find(serial);
  if (it == devices_.end()) {
    co_return;
  }
  auto& e = *it->second;
  e.life.probe_ended(report.outcome, started, steady::now());
  ++probes_total_;
  if (report.outcome != core::probe_outcome::ok) {
    e.last_problem = report.detail;
    ++misses_total_;
  }
  ledger_note(e);
}

net::awaitable<void> device_keeper::knock_for(std::string serial, std::string host, unsigned port) {
  const bool answered = co_await knock(host, port, settings_.knock_timeout);
  if (auto it = devices_.find(serial); it != devices_.end()) {
    auto& e = *it->second;
    e.knocks_in_flight -= e.knocks_in_flight > 0 ? 1 : 0;
    e.knock_answered = e.knock_answered || answered;
  }
}

net::awaitable<void> device_keeper::bring_back(std::string serial) {
  unsigned rounds = 0;
  unsigned connect_failures = 0;
  auto next_connect = time_point{};
  bool dropped_stale = false;
  time_point listed_since = time_point::max();
  for (;;) {
    auto it = devices_.find(serial);
    if (stopping_ || it == devices_.end()) {
      co_return;
    }
    auto* e = it->second.get();
    if (e->life.state() != device_state::reconnecting) {
      e->bringing_back = false;
      co_return;  // a probe answered: online again (or removed meanwhile)
    }
    const auto now = steady::now();
    const auto address = *e->address;
    std::string said;
    if (e->life.listed_as_device()) {
      // adb lists it while its probes failed: its transport is stale (adb sets no keepalive), or
      // it just came back. Fresh probes get offline_after to answer; then it is dropped.
      listed_since = std::min(listed_since, now);
      if (dropped_stale && now - listed_since < settings_.policy.offline_after) {
        co_await net::sleep_for(settings_.policy.retry_every);
        continue;
      }
      co_await disconnect_device(settings_.adb, serial, settings_.connect_timeout, said);
      dropped_stale = true;
      listed_since = time_point::max();
      continue;
    }
    listed_since = time_point::max();
    dropped_stale = true;
    // Knocks overlap: one starts every 100-400 ms (full jitter) without waiting for the last, each
    // with its own deadline, so a port that answers again is heard within one spacing, not after
    // a blackholed knock's whole timeout. A name (not an IP) is left to adb's connect and its
    // backoff.
    net::error_code ip_ec;
    asio::ip::make_address(address.host, ip_ec);
    const bool by_name = static_cast<bool>(ip_ec);
    if (!by_name && e->knocks_in_flight < 4) {
      ++e->knocks_in_flight;
      net::spawn(io_.get_executor(), knock_for(serial, address.host, address.port),
                 "a knock on a phone's port");
    }
    const bool answered = by_name || std::exchange(e->knock_answered, false);
    if (answered && steady::now() >= next_connect) {
      const bool ok =
          co_await connect_device(settings_.adb, serial, settings_.connect_timeout, said);
      it = devices_.find(serial);
      if (it == devices_.end()) {
        co_return;
      }
      e = it->second.get();
      if (ok && said.rfind("connected to", 0) == 0) {
        ++e->reconnects;
        ++reconnects_total_;
      }
      if (!ok) {
        e->last_problem = "adb connect: " + said;
      }
      // Connected, or adb says it is connecting already: its list gets offline_after to show the
      // phone before adb is asked again; then (and after a refusal) the connect backoff applies.
      if (ok) {
        const auto until = steady::now() + settings_.policy.offline_after;
        while (!stopping_ && steady::now() < until) {
          it = devices_.find(serial);
          if (it == devices_.end() || it->second->life.listed_as_device() ||
              it->second->life.state() != device_state::reconnecting) {
            break;
          }
          co_await net::sleep_for(milliseconds(20));
        }
        it = devices_.find(serial);
        if (it != devices_.end() && it->second->life.listed_as_device()) {
          connect_failures = 0;
          continue;
        }
      }
      next_connect = steady::now() + core::full_jitter_delay(settings_.connect_backoff,
                                                             connect_failures++, random_);
    }
    co_await net::sleep_for(std::max(
        milliseconds(10), core::full_jitter_delay(settings_.knock_backoff, rounds++, random_)));
  }
}

net::awaitable<void> device_keeper::tick_loop() {
  auto last_publish = time_point{};
  auto last_forget = time_point{};
  while (!stopping_) {
    const auto now = steady::now();
    // A phone removed for another remove_after is forgotten (its probes and bring-back look it
    // up by serial and end when it is gone). Once a second: remove_after is minutes, and a walk
    // of a large fleet's map every tick is a cost a reconnect storm does not need.
    if (now - last_forget >= std::chrono::seconds(1)) {
      last_forget = now;
      std::erase_if(devices_, [&](const auto& kv) {
        const auto& life = kv.second->life;
        return life.state() == device_state::removed &&
               now - life.state_since() >= settings_.policy.remove_after;
      });
    }
    for (auto& [serial, e] : devices_) {
      e->life.tick(now);
      while (e->life.probe_due(now)) {
        e->life.probe_started(now);
        net::spawn(io_.get_executor(), probe(serial), "a device probe");
      }
      const auto s = e->life.state();
      // A network phone adb does not list as a device, or one judged offline by its probes while
      // adb still lists it (a stale transport), is brought back; a phone adb lists that was never
      // probed yet is left to its first probe.
      const bool stale = e->life.listed_as_device() &&
                         e->life.consecutive_misses() >= settings_.policy.offline_min_misses;
      if (e->address && !e->bringing_back &&
          (s == device_state::offline || s == device_state::reconnecting) &&
          (!e->life.listed_as_device() || stale)) {
        e->bringing_back = true;
        e->knock_answered = false;  // a knock of the last outage that ended after it says nothing
        e->life.reconnect_started(now);
        net::spawn(io_.get_executor(), bring_back(serial), "bringing a phone back");
      }
      ledger_note(*e);
    }
    if (now - last_publish >= milliseconds(100)) {
      publish(now);
      last_publish = now;
    }
    tick_timer_->expires_after(settings_.tick);
    co_await tick_timer_->async_wait(net::use_nothrow);
  }
}

void device_keeper::publish(time_point now) {
  auto snap = std::make_shared<devices_snapshot>();
  snap->adb_up = adb_up_;
  snap->adb_problem = adb_problem_;
  snap->list_problems = list_problems_;
  snap->devices_refused = refused_;
  snap->proxy = proxy_;
  core::online_span h1;
  core::online_span d1;
  core::online_span d30;
  snap->devices.reserve(devices_.size());
  for (const auto& [serial, e] : devices_) {
    device_view v;
    v.serial = serial;
    v.adb_state = e->adb_state;
    v.state = e->life.state();
    v.state_for_s = std::chrono::duration<double>(now - e->life.state_since()).count();
    if (e->life.last_good() != time_point{}) {
      v.since_good_probe_s = std::chrono::duration<double>(now - e->life.last_good()).count();
    }
    v.network = e->life.network();
    v.configured = e->life.configured();
    v.rtt_ms = e->life.rtt_ewma_ms();
    v.consecutive_misses = e->life.consecutive_misses();
    core::score_inputs in;
    in.rtt_ewma_ms = v.rtt_ms;
    in.missed_probes = v.consecutive_misses;
    v.score = v.state == device_state::online || v.state == device_state::suspect
                  ? core::health_score(in)
                  : 0.0;
    v.probes = e->life.probes();
    v.misses = e->life.misses_total();
    v.transitions = e->life.transitions();
    v.reconnects = e->reconnects;
    v.last_problem = e->last_problem;
    const auto a = e->ledger.span(std::chrono::hours(1), now);
    if (now - e->long_spans_at >= std::chrono::seconds(10)) {
      e->day = e->ledger.span(std::chrono::hours(24), now);
      e->month = e->ledger.span(std::chrono::hours(24 * 30), now);
      e->long_spans_at = now;
    }
    const auto& b = e->day;
    const auto& c = e->month;
    v.online_1h = a.rate();
    v.online_24h = b.rate();
    v.online_30d = c.rate();
    snap->by_state[static_cast<std::size_t>(v.state)]++;
    if (v.state != device_state::removed) {
      h1 += a;
      d1 += b;
      d30 += c;
    }
    snap->devices.push_back(std::move(v));
  }
  snap->probes = probes_total_;
  snap->misses = misses_total_;
  snap->reconnects = reconnects_total_;
  snap->fleet_online_1h = h1.rate();
  snap->fleet_online_24h = d1.rate();
  snap->fleet_online_30d = d30.rate();
  std::lock_guard lock(snapshot_mutex_);
  snapshot_ = std::move(snap);
}

bool device_keeper::expected_back(const std::string& serial) const {
  const auto it = devices_.find(serial);
  if (it == devices_.end()) {
    return false;
  }
  switch (it->second->life.state()) {
    case device_state::suspect:
    case device_state::zombie:
    case device_state::offline:
    case device_state::reconnecting:
      return true;
    case device_state::online:
    case device_state::unauthorized:
    case device_state::removed:
      return false;
  }
  return false;
}

bool device_keeper::follows(const std::string& serial) const {
  const auto it = devices_.find(serial);
  return it != devices_.end() && it->second->life.state() != device_state::unauthorized &&
         it->second->life.state() != device_state::removed;
}

std::shared_ptr<const devices_snapshot> device_keeper::snapshot() const {
  std::lock_guard lock(snapshot_mutex_);
  return snapshot_;
}

}  // namespace nines::devices
