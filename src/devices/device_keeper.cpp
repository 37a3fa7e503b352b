#include "devices/device_keeper.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "core/health/health_score.hpp"

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
  std::string model;
  std::string adb_state;
  std::string last_problem;
  bool bringing_back = false;
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
  e->ledger.record(now, false);
  return devices_.emplace(serial, std::move(e)).first->second.get();
}

void device_keeper::ledger_note(entry& e) {
  const bool up = e.life.state() == device_state::online;
  if (up != e.ledger.up()) {
    e.ledger.record(e.life.state_since(), up);
  }
}

void device_keeper::start() {
  tick_timer_ = std::make_unique<asio::steady_timer>(io_);
  asio::co_spawn(io_, track(), asio::detached);
  asio::co_spawn(io_, tick_loop(), asio::detached);
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
  for (const auto& p : list.problems) {
    spdlog::warn("nines devices: adb's device list: {}", p);
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
    if (!d.model.empty()) {
      e->model = d.model;
    }
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
      auto reply =
          co_await conn->request("host:track-devices-l", steady::now() + milliseconds(2000));
      if (reply.okay) {
        tracker_ = conn.get();
        adb_up_ = true;
        adb_problem_.clear();
        failures = 0;
        spdlog::info("nines devices: following the adb server at {}:{}", settings_.adb.host,
                     settings_.adb.port);
        while (!stopping_) {
          auto block = co_await conn->read_block(time_point::max(), core::adb_max_list_bytes);
          if (!block) {
            why = "the adb server ended the device list";
            break;
          }
          apply_list(core::parse_device_list(*block, settings_.max_devices));
        }
        tracker_ = nullptr;
      } else {
        why = "host:track-devices-l: " + reply.failure;
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
  if (report.outcome != core::probe_outcome::ok) {
    e.last_problem = report.detail;
  }
  ledger_note(e);
}

net::awaitable<void> device_keeper::bring_back(std::string serial) {
  unsigned knocks = 0;
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
      // adb lists it while its probes failed: its transport is stale (adb sets no keepalive) or
      // just came back. Give fresh probes their time, then drop it.
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
    const bool answered = co_await knock(address.host, address.port, settings_.knock_timeout);
    if (answered && steady::now() >= next_connect) {
      const bool ok =
          co_await connect_device(settings_.adb, serial, settings_.connect_timeout, said);
      it = devices_.find(serial);
      if (it == devices_.end()) {
        co_return;
      }
      e = it->second.get();
      if (ok) {
        ++e->reconnects;
        knocks = 0;
        connect_failures = 0;
        // adb lists it as a device soon: the tracker hears it, a probe makes it online.
      } else {
        e->last_problem = "adb connect: " + said;
        next_connect = steady::now() + core::full_jitter_delay(settings_.connect_backoff,
                                                               connect_failures++, random_);
      }
    }
    co_await net::sleep_for(std::max(
        milliseconds(10), core::full_jitter_delay(settings_.knock_backoff, knocks++, random_)));
  }
}

net::awaitable<void> device_keeper::tick_loop() {
  auto last_publish = time_point{};
  while (!stopping_) {
    const auto now = steady::now();
    // A phone removed for another remove_after is forgotten (its probes and bring-back look it
    // up by serial and end when it is gone).
    std::erase_if(devices_, [&](const auto& kv) {
      const auto& life = kv.second->life;
      return life.state() == device_state::removed &&
             now - life.state_since() >= settings_.policy.remove_after;
    });
    for (auto& [serial, e] : devices_) {
      e->life.tick(now);
      while (e->life.probe_due(now)) {
        e->life.probe_started(now);
        asio::co_spawn(io_, probe(serial), asio::detached);
      }
      const auto s = e->life.state();
      if (e->address && !e->bringing_back &&
          (s == device_state::offline || s == device_state::reconnecting)) {
        e->bringing_back = true;
        e->life.reconnect_started(now);
        asio::co_spawn(io_, bring_back(serial), asio::detached);
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
    v.model = e->model;
    v.adb_state = e->adb_state;
    v.state = e->life.state();
    v.state_for_s = std::chrono::duration<double>(now - e->life.state_since()).count();
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
    const auto b = e->ledger.span(std::chrono::hours(24), now);
    const auto c = e->ledger.span(std::chrono::hours(24 * 30), now);
    v.online_1h = a.rate();
    v.online_24h = b.rate();
    v.online_30d = c.rate();
    snap->by_state[static_cast<std::size_t>(v.state)]++;
    snap->probes += v.probes;
    snap->misses += v.misses;
    snap->reconnects += v.reconnects;
    if (v.state != device_state::removed) {
      h1 += a;
      d1 += b;
      d30 += c;
    }
    snap->devices.push_back(std::move(v));
  }
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
