// The device detector and lifecycle on simulated time: a phone's link is scripted (answers, a
// blackhole, commands that hang, random loss), the test drives the lifecycle as the keeper does,
// and each goal of issue 15 is checked against the times the states were entered.

#include "core/devices/device_lifecycle.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <vector>

#include "core/random.hpp"

namespace nines::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using steady = std::chrono::steady_clock;
using time_point = steady::time_point;

const time_point t0 = time_point{} + std::chrono::hours(1);

// What the link does to a probe started at a time: how it ends and how long it takes (a miss
// always takes the probe's whole deadline, as the keeper cuts it there).
struct link_answer {
  probe_outcome outcome = probe_outcome::ok;
  milliseconds rtt{30};
};
using link_model = std::function<link_answer(time_point started)>;

// Drives one lifecycle as the keeper would: starts every probe when it is due, ends it when the
// link says, and records each state entered with its time.
struct probe_sim {
  detector_policy policy;
  device_lifecycle life;
  time_point now;
  struct flight {
    time_point started;
    time_point ends;
    probe_outcome outcome;
  };
  std::vector<flight> flights;
  std::vector<std::pair<device_state, time_point>> entered;
  time_point last_good_end = t0;

  explicit probe_sim(detector_policy p = {}, bool network = true)
      : policy(p), life(p, network, false, t0), now(t0) {
    life.on_listed(adb_listing::device, now);
  }

  void note() {
    if (entered.empty() || entered.back().first != life.state()) {
      entered.emplace_back(life.state(), now);
    }
  }

  // Runs until `until`, in event order; bounded by the events in that span.
  void run(time_point until, const link_model& link) {
    for (;;) {
      time_point next = time_point::max();
      for (const auto& f : flights) {
        next = std::min(next, f.ends);
      }
      if (life.in_flight() < policy.max_in_flight) {
        next = std::min(next, std::max(now, life.next_probe_at()));
      }
      if (next > until) {
        now = until;
        return;
      }
      now = next;
      // Endings first, in order.
      for (std::size_t i = 0; i < flights.size();) {
        if (flights[i].ends <= now) {
          const auto f = flights[i];
          flights.erase(flights.begin() + static_cast<std::ptrdiff_t>(i));
          life.probe_ended(f.outcome, f.started, now);
          if (f.outcome == probe_outcome::ok) {
            last_good_end = now;
          }
          note();
        } else {
          ++i;
        }
      }
      while (life.probe_due(now)) {
        life.probe_started(now);
        const auto a = link(now);
        const auto took = a.outcome == probe_outcome::ok ? a.rtt : policy.probe_timeout;
        flights.push_back({now, now + took, a.outcome});
      }
    }
  }

  std::optional<time_point> first(device_state s, time_point after) const {
    for (const auto& [state, at] : entered) {
      if (state == s && at >= after) {
        return at;
      }
    }
    return std::nullopt;
  }
};

link_model healthy() {
  return [](time_point) { return link_answer{}; };
}

// Good until `cut`, then every probe ends as `outcome`, until `back` (if any).
link_model broken_from(time_point cut, probe_outcome outcome, time_point back = time_point::max()) {
  return [=](time_point started) {
    if (started >= cut && started < back) {
      return link_answer{outcome, milliseconds(0)};
    }
    return link_answer{};
  };
}

TEST(device_lifecycle, a_new_phone_is_probed_at_once_and_online_at_its_first_answer) {
  probe_sim sim;
  sim.run(t0 + milliseconds(100), healthy());
  EXPECT_EQ(sim.life.state(), device_state::online);
  EXPECT_EQ(sim.first(device_state::online, t0), t0 + milliseconds(30));
  EXPECT_NEAR(sim.life.rtt_ewma_ms(), 30.0, 0.01);
}

TEST(device_lifecycle, a_healthy_phone_is_probed_once_a_second_one_at_a_time) {
  probe_sim sim;
  sim.run(t0 + seconds(60), healthy());
  EXPECT_EQ(sim.life.state(), device_state::online);
  // The first at once, then one every interval after the previous one ended.
  EXPECT_GE(sim.life.probes(), 58u);
  EXPECT_LE(sim.life.probes(), 61u);
  EXPECT_EQ(sim.life.misses_total(), 0u);
}

TEST(device_lifecycle, a_blackholed_phone_is_suspect_within_2_5_s_and_offline_within_5_s) {
  probe_sim sim;
  const auto cut = t0 + seconds(30) + milliseconds(1);
  sim.run(t0 + seconds(60), broken_from(cut, probe_outcome::silent));
  const auto last_good = sim.last_good_end;
  ASSERT_LT(last_good, cut);
  const auto suspect = sim.first(device_state::suspect, cut);
  const auto offline = sim.first(device_state::offline, cut);
  ASSERT_TRUE(suspect && offline);
  EXPECT_LE(*suspect - last_good, milliseconds(2500));
  EXPECT_LE(*offline - last_good, milliseconds(5000));
  EXPECT_LT(*suspect, *offline);
  EXPECT_FALSE(sim.first(device_state::zombie, cut));
  // Probes go on while adb lists it: at most max_in_flight at once.
  EXPECT_LE(sim.life.in_flight(), sim.policy.max_in_flight);
}

TEST(device_lifecycle, a_zombie_is_told_apart_from_a_silent_link_within_3_s) {
  probe_sim sim;
  const auto cut = t0 + seconds(30) + milliseconds(1);
  sim.run(t0 + seconds(40), broken_from(cut, probe_outcome::hang));
  const auto zombie = sim.first(device_state::zombie, cut);
  ASSERT_TRUE(zombie);
  EXPECT_LE(*zombie - sim.last_good_end, milliseconds(3000));
  EXPECT_FALSE(sim.first(device_state::suspect, cut));
  EXPECT_FALSE(sim.first(device_state::offline, cut));
  EXPECT_EQ(sim.life.state(), device_state::zombie);  // hanging commands do not make it offline
}

TEST(device_lifecycle, a_phone_whose_link_returns_is_online_within_a_second_whatever_the_outage) {
  for (const auto outage : {milliseconds(5000), milliseconds(60000), milliseconds(3600000)}) {
    probe_sim sim;
    const auto cut = t0 + seconds(10);
    const auto back = cut + outage;
    sim.run(back + seconds(5), broken_from(cut, probe_outcome::silent, back));
    ASSERT_TRUE(sim.first(device_state::offline, cut)) << outage.count();
    const auto online = sim.first(device_state::online, back);
    ASSERT_TRUE(online) << outage.count();
    EXPECT_LE(*online - back, milliseconds(1000)) << outage.count();
  }
}

// At 1% independent probe loss, over `hours` device-hours: how often the phone was suspected,
// and how often declared offline.
std::pair<unsigned, unsigned> verdicts_at_one_percent_loss(detector_policy policy, int hours,
                                                           std::uint64_t seed) {
  probe_sim sim(policy);
  splitmix_rng random(seed);
  sim.run(t0 + std::chrono::hours(hours), [&](time_point) {
    return random.uniform01() < 0.01 ? link_answer{probe_outcome::silent, milliseconds(0)}
                                     : link_answer{};
  });
  unsigned suspect = 0;
  unsigned offline = 0;
  for (const auto& [state, at] : sim.entered) {
    suspect += state == device_state::suspect;
    offline += state == device_state::offline && at > t0;
  }
  return {suspect, offline};
}

TEST(device_lifecycle, one_percent_probe_loss_suspects_less_than_once_per_thousand_device_hours) {
  const int hours = 1000;
  const auto [suspect, offline] = verdicts_at_one_percent_loss({}, hours, 15);
  // Goals: <= 1e-3 suspect and <= 1e-5 offline verdicts per device-hour.
  EXPECT_LE(suspect, static_cast<unsigned>(hours * 1e-3));
  EXPECT_EQ(offline, 0u);
  // The same loss with a detector that suspects after two misses of one probe at a time: the
  // bound comes from the overlapping retries (a later probe's answer clears a late miss), not free.
  detector_policy eager;
  eager.suspect_after_misses = 2;
  eager.max_in_flight = 1;
  const auto [eager_suspect, eager_offline] = verdicts_at_one_percent_loss(eager, 200, 15);
  EXPECT_GT(eager_suspect, static_cast<unsigned>(200 * 1e-3));
  EXPECT_EQ(eager_offline, 0u);
}

TEST(device_lifecycle, an_unauthorized_phone_is_not_probed_until_adb_lists_it_as_a_device) {
  detector_policy p;
  device_lifecycle life(p, false, false, t0);
  life.on_listed(adb_listing::unauthorized, t0);
  EXPECT_EQ(life.state(), device_state::unauthorized);
  EXPECT_FALSE(life.probe_due(t0 + seconds(10)));
  EXPECT_EQ(life.next_probe_at(), time_point::max());
  life.on_listed(adb_listing::device, t0 + seconds(11));
  EXPECT_TRUE(life.probe_due(t0 + seconds(11)));
  life.probe_started(t0 + seconds(11));
  life.probe_ended(probe_outcome::ok, t0 + seconds(11), t0 + seconds(11) + milliseconds(20));
  EXPECT_EQ(life.state(), device_state::online);
  // A probe's answer that says unauthorized (the key was revoked) is believed at once.
  life.probe_started(t0 + seconds(13));
  life.probe_ended(probe_outcome::unauthorized, t0 + seconds(13), t0 + seconds(13));
  EXPECT_EQ(life.state(), device_state::unauthorized);
}

TEST(device_lifecycle, adb_saying_offline_or_no_longer_listing_a_phone_is_believed_at_once) {
  probe_sim sim;
  sim.run(t0 + seconds(5), healthy());
  ASSERT_EQ(sim.life.state(), device_state::online);
  sim.life.on_listed(adb_listing::offline, t0 + seconds(5));
  EXPECT_EQ(sim.life.state(), device_state::offline);
  EXPECT_FALSE(sim.life.probe_due(t0 + seconds(9)));
  sim.life.on_listed(adb_listing::device, t0 + seconds(9));
  EXPECT_TRUE(sim.life.probe_due(t0 + seconds(9)));
  sim.life.on_unlisted(t0 + seconds(10));
  EXPECT_EQ(sim.life.state(), device_state::offline);
  // A probe that was under way when adb spoke does not bring it back.
  sim.life.probe_ended(probe_outcome::ok, t0 + seconds(9), t0 + seconds(10) + milliseconds(5));
  EXPECT_EQ(sim.life.state(), device_state::offline);
}

TEST(device_lifecycle, a_gone_phone_is_removed_after_remove_after_unless_it_is_configured) {
  detector_policy p;
  p.remove_after = seconds(60);
  device_lifecycle seen(p, true, false, t0);
  device_lifecycle configured(p, true, true, t0);
  for (auto* life : {&seen, &configured}) {
    life->on_listed(adb_listing::device, t0);
    life->on_unlisted(t0 + seconds(1));
  }
  seen.tick(t0 + seconds(60));
  EXPECT_EQ(seen.state(), device_state::offline);
  seen.tick(t0 + seconds(61));
  configured.tick(t0 + std::chrono::hours(24));
  EXPECT_EQ(seen.state(), device_state::removed);
  EXPECT_EQ(configured.state(), device_state::offline);
  // A removed phone that comes back is probed again.
  seen.on_listed(adb_listing::device, t0 + seconds(70));
  EXPECT_EQ(seen.state(), device_state::offline);
  EXPECT_TRUE(seen.probe_due(t0 + seconds(70)));
}

TEST(device_lifecycle, a_reconnecting_phone_stays_reconnecting_until_a_probe_answers) {
  probe_sim sim;
  sim.run(t0 + seconds(3), healthy());
  sim.life.on_unlisted(t0 + seconds(3));
  sim.life.reconnect_started(t0 + seconds(3));
  sim.note();
  EXPECT_EQ(sim.life.state(), device_state::reconnecting);
  sim.life.on_listed(adb_listing::offline, t0 + seconds(4));  // adb's "connecting"
  EXPECT_EQ(sim.life.state(), device_state::reconnecting);
  sim.life.on_listed(adb_listing::device, t0 + seconds(5));
  EXPECT_EQ(sim.life.state(), device_state::reconnecting);
  sim.now = t0 + seconds(5);
  sim.run(t0 + seconds(6), healthy());
  EXPECT_EQ(sim.life.state(), device_state::online);
  EXPECT_EQ(sim.first(device_state::online, t0 + seconds(5)), t0 + seconds(5) + milliseconds(30));
}

TEST(device_lifecycle, a_phone_is_unknown_until_something_is_learnt_of_it) {
  detector_policy p;
  // Listed as a device: unknown until its first probe ends, whatever the probe says.
  device_lifecycle fresh(p, false, false, t0);
  fresh.on_listed(adb_listing::device, t0);
  EXPECT_FALSE(fresh.judged());
  fresh.probe_started(t0 + milliseconds(20));
  EXPECT_FALSE(fresh.judged());
  fresh.probe_ended(probe_outcome::silent, t0 + milliseconds(20), t0 + milliseconds(520));
  EXPECT_TRUE(fresh.judged());
  EXPECT_EQ(fresh.judged_at(), t0 + milliseconds(520));
  EXPECT_EQ(fresh.state(), device_state::offline);  // one miss: still the first state
  // The first verdict stays the first.
  fresh.probe_started(t0 + milliseconds(600));
  fresh.probe_ended(probe_outcome::ok, t0 + milliseconds(600), t0 + milliseconds(630));
  EXPECT_EQ(fresh.state(), device_state::online);
  EXPECT_EQ(fresh.judged_at(), t0 + milliseconds(520));

  // adb's word is a verdict too: offline, unauthorized.
  device_lifecycle off(p, false, false, t0);
  off.on_listed(adb_listing::offline, t0 + milliseconds(5));
  EXPECT_TRUE(off.judged());
  EXPECT_EQ(off.judged_at(), t0 + milliseconds(5));
  device_lifecycle auth(p, false, false, t0);
  auth.on_listed(adb_listing::unauthorized, t0 + milliseconds(7));
  EXPECT_TRUE(auth.judged());
  EXPECT_EQ(auth.judged_at(), t0 + milliseconds(7));

  // A configured network phone adb never lists is judged when the keeper starts bringing it back.
  device_lifecycle configured(p, true, true, t0);
  EXPECT_FALSE(configured.judged());
  configured.reconnect_started(t0 + milliseconds(40));
  EXPECT_TRUE(configured.judged());
  EXPECT_EQ(configured.judged_at(), t0 + milliseconds(40));
}

}  // namespace
}  // namespace nines::core
