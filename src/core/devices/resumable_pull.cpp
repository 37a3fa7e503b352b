#include "core/devices/resumable_pull.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/devices/adb_transport_wire.hpp"

namespace nines::core {

namespace {
constexpr std::size_t max_fail_message = 0xffff;
}

resumable_pull::step resumable_pull::refuse(std::string message, std::string& to_agent) {
  over_ = true;
  problem_ = std::move(message);
  to_agent += adb_sync_fail(problem_);
  return step::refused;
}

bool resumable_pull::take_data(std::string_view data, std::string_view whole_piece,
                               std::string& to_agent) {
  if (skip_left_ == 0) {
    passed_.update(data);
    delivered_ += data.size();
    to_agent.append(whole_piece);  // as adb sent it
    return true;
  }
  const auto known = static_cast<std::size_t>(std::min<std::uint64_t>(skip_left_, data.size()));
  reread_.update(data.substr(0, known));
  skip_left_ -= known;
  if (skip_left_ == 0 && reread_.current() != passed_.current()) {
    return false;
  }
  if (known < data.size()) {
    const auto rest = data.substr(known);
    passed_.update(rest);
    delivered_ += rest.size();
    to_agent += adb_sync_data(rest);
  }
  return true;
}

resumable_pull::step resumable_pull::take(std::string& from_adb, std::string& to_agent) {
  if (over_) {
    return problem_.empty() ? step::done : step::refused;
  }
  std::size_t used = 0;
  auto finish = [&](step s) {
    from_adb.erase(0, used);
    return s;
  };
  for (;;) {
    adb_sync_reply r;
    const std::string_view rest = std::string_view(from_adb).substr(used);
    const auto parsed = parse_adb_sync_reply(rest, max_fail_message, r);
    if (parsed == adb_sync_parse::more) {
      return finish(step::more);
    }
    if (parsed == adb_sync_parse::bad) {
      used = from_adb.size();
      return finish(
          refuse("nines adb proxy: the answer to the pull is not the sync protocol", to_agent));
    }
    const auto whole = rest.substr(0, r.consumed);
    used += r.consumed;
    switch (r.what) {
      case adb_sync_reply::kind::data:
        if (!take_data(r.payload, whole, to_agent)) {
          return finish(refuse(fmt::format("nines adb proxy: the file changed while its pull was "
                                           "resumed (its first {} bytes differ); pull it again",
                                           delivered_),
                               to_agent));
        }
        break;
      case adb_sync_reply::kind::done:
        if (skip_left_ > 0) {
          return finish(refuse(fmt::format("nines adb proxy: the file is shorter than the {} "
                                           "bytes already pulled when its pull was resumed; pull "
                                           "it again",
                                           delivered_),
                               to_agent));
        }
        over_ = true;
        to_agent.append(whole);
        return finish(step::done);
      case adb_sync_reply::kind::fail:
        over_ = true;  // adb's (or the phone's) own refusal: the agent gets it as it is
        to_agent.append(whole);
        return finish(step::done);
    }
  }
}

void resumable_pull::restart() {
  ++restarts_;
  skip_left_ = delivered_;
  reread_ = sha256_stream();
}

}  // namespace nines::core
