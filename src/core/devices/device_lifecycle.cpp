#include "core/devices/device_lifecycle.hpp"

#include <algorithm>

namespace nines::core {

std::string_view device_state_name(device_state s) {
  switch (s) {
    case device_state::online:
      return "online";
    case device_state::suspect:
      return "suspect";
    case device_state::offline:
      return "offline";
    case device_state::zombie:
      return "zombie";
    case device_state::unauthorized:
      return "unauthorized";
    case device_state::reconnecting:
      return "reconnecting";
    case device_state::removed:
      return "removed";
  }
  return "offline";
}

device_lifecycle::device_lifecycle(const detector_policy& policy, bool network, bool configured,
                                   time_point now)
    : policy_(policy),
      network_(network),
      configured_(configured),
      since_(now),
      last_good_(now),
      unlisted_since_(now) {}

void device_lifecycle::enter(device_state s, time_point now) {
  if (s != state_) {
    judge(now);
    state_ = s;
    since_ = now;
    ++transitions_;
  }
}

void device_lifecycle::judge(time_point now) {
  if (!judged_) {
    judged_ = true;
    judged_at_ = now;
  }
}

void device_lifecycle::on_listed(adb_listing listing, time_point now) {
  const bool was_device = listed_as_device();
  listed_ = true;
  listing_ = listing;
  switch (listing) {
    case adb_listing::device:
      if (!was_device) {
        // Back (or new): probe at once; what missed before it left says nothing now.
        misses_ = 0;
        trailing_hangs_ = 0;
        last_end_ = time_point{};
        if (state_ == device_state::removed) {
          enter(device_state::offline, now);
        }
        if (state_ == device_state::unauthorized) {
          enter(device_state::offline, now);  // accepted: usable once a probe says so
        }
        // Silence counts from here for a phone that was away.
        if (state_ != device_state::online) {
          last_good_ = now;
        }
      }
      break;
    case adb_listing::unauthorized:
      enter(device_state::unauthorized, now);
      break;
    case adb_listing::offline:
    case adb_listing::other:
      judge(now);  // adb's word: offline (already the first state)
      if (state_ != device_state::reconnecting) {
        enter(device_state::offline, now);
      }
      break;
  }
}

void device_lifecycle::on_unlisted(time_point now) {
  if (!listed_) {
    return;
  }
  listed_ = false;
  unlisted_since_ = now;
  judge(now);
  if (state_ != device_state::reconnecting && state_ != device_state::removed) {
    enter(device_state::offline, now);
  }
}

device_lifecycle::time_point device_lifecycle::next_probe_at() const {
  if (!listed_as_device()) {
    return time_point::max();
  }
  if (misses_ == 0) {
    return in_flight_ > 0 ? time_point::max() : last_end_ + policy_.probe_interval;
  }
  // Once judged offline or a zombie, a phone that adb still lists is probed every probe_timeout
  // (twice a second): it is seen back within half a second, at a third of the retries' cost.
  const bool judged = state_ == device_state::offline || state_ == device_state::zombie;
  return last_start_ +
         (judged ? std::max(policy_.retry_every, policy_.probe_timeout) : policy_.retry_every);
}

bool device_lifecycle::probe_due(time_point now) const {
  return listed_as_device() && in_flight_ < std::max(1u, policy_.max_in_flight) &&
         now >= next_probe_at();
}

void device_lifecycle::probe_started(time_point now) {
  ++in_flight_;
  ++probes_;
  last_start_ = now;
}

void device_lifecycle::probe_ended(probe_outcome outcome, time_point started, time_point now) {
  if (in_flight_ > 0) {
    --in_flight_;
  }
  judge(now);
  last_end_ = std::max(last_end_, now);
  if (!listed_as_device() && outcome != probe_outcome::unauthorized) {
    return;  // adb's list has spoken since this probe started
  }
  switch (outcome) {
    case probe_outcome::ok: {
      misses_ = 0;
      trailing_hangs_ = 0;
      last_good_ = now;
      const double rtt = std::chrono::duration<double, std::milli>(now - started).count();
      rtt_ewma_ms_ = ever_good_ ? 0.8 * rtt_ewma_ms_ + 0.2 * rtt : rtt;
      ever_good_ = true;
      enter(device_state::online, now);
      return;
    }
    case probe_outcome::unauthorized:
      enter(device_state::unauthorized, now);
      return;
    case probe_outcome::gone:
      ++misses_;
      ++misses_total_;
      trailing_hangs_ = 0;
      enter(device_state::offline, now);
      return;
    case probe_outcome::silent:
    case probe_outcome::failed:
    case probe_outcome::hang:
      ++misses_;
      ++misses_total_;
      trailing_hangs_ = outcome == probe_outcome::hang ? trailing_hangs_ + 1 : 0;
      judge_misses(now);
      return;
  }
}

void device_lifecycle::judge_misses(time_point now) {
  if (state_ == device_state::unauthorized || state_ == device_state::reconnecting ||
      state_ == device_state::removed || misses_ < policy_.suspect_after_misses) {
    return;
  }
  if (trailing_hangs_ >= policy_.zombie_after_hangs) {
    enter(device_state::zombie, now);
  } else if (now - last_good_ >= policy_.offline_after && misses_ >= policy_.offline_min_misses) {
    enter(device_state::offline, now);
  } else if (state_ == device_state::online || state_ == device_state::zombie) {
    enter(device_state::suspect, now);
  }
}

void device_lifecycle::reconnect_started(time_point now) {
  if (state_ != device_state::removed) {
    enter(device_state::reconnecting, now);
  }
}

void device_lifecycle::tick(time_point now) {
  if (!listed_ && !configured_ && state_ != device_state::removed &&
      now - unlisted_since_ >= policy_.remove_after) {
    enter(device_state::removed, now);
  }
}

}  // namespace nines::core
