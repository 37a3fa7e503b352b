#include "obs/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace nines::obs {

sharded_value::sharded_value(unsigned shards)
    : cells_(std::make_unique<cell[]>(std::max(shards, 1U))), shards_(std::max(shards, 1U)) {}

std::uint64_t sharded_value::sum() const {
  std::uint64_t total = 0;
  for (unsigned i = 0; i < shards_; ++i) {
    total += cells_[i].value.load(std::memory_order_relaxed);
  }
  return total;
}

histogram::histogram(std::span<const double> bounds, unsigned shards)
    : bounds_(bounds.begin(), bounds.end()), shards_(shards), sum_nanos_(shards) {
  std::sort(bounds_.begin(), bounds_.end());
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    buckets_.push_back(std::make_unique<sharded_value>(shards));
  }
}

void histogram::observe(unsigned shard, double seconds) {
  if (!(seconds >= 0)) {
    seconds = 0;
  }
  const auto at = std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin();
  buckets_[static_cast<std::size_t>(at)]->add(shard, 1);
  sum_nanos_.add(shard, static_cast<std::uint64_t>(std::llround(std::min(seconds, 1e9) * 1e9)));
}

histogram::snapshot histogram::read() const {
  snapshot s;
  std::uint64_t running = 0;
  for (const auto& b : buckets_) {
    running += b->sum();
    s.cumulative.push_back(running);
  }
  s.count = running;
  s.sum = static_cast<double>(sum_nanos_.sum()) / 1e9;
  return s;
}

std::span<const double> latency_buckets() {
  static constexpr double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
                                      0.5,   1,      2.5,   5,    10,    30,   60};
  return bounds;
}

std::span<const double> gap_buckets() {
  static constexpr double bounds[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
                                      0.2,   0.5,   1,     2,    5,    10,   30};
  return bounds;
}

std::string render_labels(const labels& l) {
  if (l.empty()) {
    return {};
  }
  std::string out = "{";
  for (std::size_t i = 0; i < l.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    out += l[i].first;
    out += "=\"";
    for (char c : l[i].second) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out.push_back(c);
      }
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

registry::family& registry::family_of(std::string_view name, std::string_view help, kind type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), family{}).first;
    it->second.help = std::string(help);
    it->second.type = type;
  }
  return it->second;
}

counter& registry::counter_of(std::string_view name, std::string_view help, const labels& l) {
  std::lock_guard lock(mutex_);
  auto& c = family_of(name, help, kind::counter).children[render_labels(l)];
  if (!c.c) {
    c.c = std::make_unique<counter>(shards_);
  }
  return *c.c;
}

gauge& registry::gauge_of(std::string_view name, std::string_view help, const labels& l) {
  std::lock_guard lock(mutex_);
  auto& c = family_of(name, help, kind::gauge).children[render_labels(l)];
  if (!c.g) {
    c.g = std::make_unique<gauge>();
  }
  return *c.g;
}

histogram& registry::histogram_of(std::string_view name, std::string_view help,
                                  std::span<const double> bounds, const labels& l) {
  std::lock_guard lock(mutex_);
  auto& c = family_of(name, help, kind::histogram).children[render_labels(l)];
  if (!c.h) {
    c.h = std::make_unique<histogram>(bounds, shards_);
  }
  return *c.h;
}

void registry::gauge_function(std::string_view name, std::string_view help, const labels& l,
                              std::function<double()> read) {
  std::lock_guard lock(mutex_);
  family_of(name, help, kind::gauge).children[render_labels(l)].read = std::move(read);
}

void registry::counter_function(std::string_view name, std::string_view help, const labels& l,
                                std::function<double()> read) {
  std::lock_guard lock(mutex_);
  family_of(name, help, kind::counter).children[render_labels(l)].read = std::move(read);
}

double registry::value(std::string_view name, const labels& l) const {
  std::lock_guard lock(mutex_);
  const auto it = families_.find(name);
  if (it == families_.end()) {
    return 0;
  }
  const auto c = it->second.children.find(render_labels(l));
  if (c == it->second.children.end()) {
    return 0;
  }
  if (c->second.c) {
    return static_cast<double>(c->second.c->value());
  }
  if (c->second.g) {
    return c->second.g->value();
  }
  if (c->second.read) {
    return c->second.read();
  }
  return 0;
}

namespace {

std::string number(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return fmt::format("{}", static_cast<std::int64_t>(v));
  }
  return fmt::format("{}", v);
}

// Inserts `le` into rendered labels: `{a="x"}` + le → `{a="x",le="0.5"}`.
std::string with_le(const std::string& rendered, const std::string& le) {
  if (rendered.empty()) {
    return "{le=\"" + le + "\"}";
  }
  return rendered.substr(0, rendered.size() - 1) + ",le=\"" + le + "\"}";
}

}  // namespace

std::string registry::exposition() const {
  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n", name, f.help);
    out += fmt::format("# TYPE {} {}\n", name,
                       f.type == kind::counter ? "counter"
                       : f.type == kind::gauge ? "gauge"
                                               : "histogram");
    for (const auto& [rendered, c] : f.children) {
      if (c.c) {
        out += fmt::format("{}{} {}\n", name, rendered, c.c->value());
      } else if (c.g) {
        out += fmt::format("{}{} {}\n", name, rendered, number(c.g->value()));
      } else if (c.read) {
        out += fmt::format("{}{} {}\n", name, rendered, number(c.read()));
      } else if (c.h) {
        const auto s = c.h->read();
        const auto& bounds = c.h->bounds();
        for (std::size_t i = 0; i < bounds.size(); ++i) {
          out += fmt::format("{}_bucket{} {}\n", name, with_le(rendered, number(bounds[i])),
                             s.cumulative[i]);
        }
        out += fmt::format("{}_bucket{} {}\n", name, with_le(rendered, "+Inf"), s.count);
        out += fmt::format("{}_sum{} {}\n", name, rendered, number(s.sum));
        out += fmt::format("{}_count{} {}\n", name, rendered, s.count);
      }
    }
  }
  return out;
}

}  // namespace nines::obs
