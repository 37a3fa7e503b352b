#include "core/tools/scenario.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "core/tools/chaos_toxic.hpp"
#include "core/config/key_values.hpp"
#include "core/config/toml_reader.hpp"

namespace nines::core {
namespace {

struct scenario_reader : toml_reader {
  using toml_reader::toml_reader;

  void read_load(const toml::table& t, const std::string& p, scenario_load& l) {
    unknown_keys(t, p, {"route", "stream", "rate", "duration_s", "connections", "image_bytes"});
    string(t, p, "route", l.route);
    if (l.route != "chat" && l.route != "completions") {
      problem(p + "route", t.get("route"), "must be \"chat\" or \"completions\"");
    }
    boolean(t, p, "stream", l.stream);
    number(t, p, "rate", l.rate, 0.1, 100000);
    number(t, p, "duration_s", l.duration_s, 0.5, 3600);
    integer(t, p, "connections", l.connections, 1, 100000);
    integer(t, p, "image_bytes", l.image_bytes, 0, 64LL << 20);
  }

  // `upstream = 1` or `upstream = [0, 2]` (or `link`): indices below `limit`.
  bool targets(const toml::table& t, const std::string& p, std::string_view key,
               std::size_t limit, std::vector<std::size_t>& out) {
    const toml::node* node = t.get(key);
    if (node == nullptr) {
      return false;
    }
    const auto one = [&](const toml::node& n) {
      const auto v = n.value_exact<std::int64_t>();
      if (!v || *v < 0 || static_cast<std::size_t>(*v) >= limit) {
        problem(p + std::string(key), &n,
                fmt::format("must be an index from 0 to {}", limit == 0 ? 0 : limit - 1));
        return;
      }
      out.push_back(static_cast<std::size_t>(*v));
    };
    if (const auto* arr = node->as_array()) {
      for (const auto& n : *arr) {
        one(n);
      }
    } else {
      one(*node);
    }
    return true;
  }

  void read_event(const toml::table& t, const std::string& p, const scenario& s,
                  scenario_event& e) {
    unknown_keys(t, p, {"at_s", "action", "upstream", "link", "value"});
    if (t.get("at_s") == nullptr) {
      problem(p + "at_s", &t, "is required");
    }
    number(t, p, "at_s", e.at_s, 0, s.load.duration_s);
    std::string action;
    string(t, p, "action", action);
    static constexpr std::pair<std::string_view, scenario_action> actions[] = {
        {"kill", scenario_action::kill},
        {"restart", scenario_action::restart},
        {"faults", scenario_action::faults},
        {"toxic", scenario_action::toxic},
        {"remove_toxic", scenario_action::remove_toxic},
        {"link_down", scenario_action::link_down},
        {"link_up", scenario_action::link_up}};
    const auto it = std::find_if(std::begin(actions), std::end(actions),
                                 [&](const auto& a) { return a.first == action; });
    if (it == std::end(actions)) {
      problem(p + "action", t.get("action") ? t.get("action") : &t,
              "must be one of kill, restart, faults, toxic, remove_toxic, link_down, link_up");
      return;
    }
    e.action = it->second;
    const bool on_link = e.action == scenario_action::toxic ||
                         e.action == scenario_action::remove_toxic ||
                         e.action == scenario_action::link_down ||
                         e.action == scenario_action::link_up;
    const std::string_view key = on_link ? "link" : "upstream";
    if (!targets(t, p, key, s.upstreams, e.targets)) {
      problem(p + std::string(key), &t, fmt::format("is required for {}", action));
    }
    if (on_link && !s.chaos) {
      problem(p + "action", t.get("action"), "needs chaos links: set topology.chaos = true");
    }
    string(t, p, "value", e.value);
    const toml::node* value = t.get("value") ? t.get("value") : &t;
    if (e.action == scenario_action::faults) {
      std::vector<key_value> items;
      if (auto why = split_key_values(e.value, items); !why.empty()) {
        problem(p + "value", value, why);
      }
    } else if (e.action == scenario_action::toxic) {
      toxic parsed;
      if (auto why = toxic_from_text(e.value, parsed); !why.empty()) {
        problem(p + "value", value, "not a toxic: " + why);
      }
    } else if (e.action == scenario_action::remove_toxic && e.value.empty()) {
      problem(p + "value", value, "names the toxic to remove");
    }
  }
};

}  // namespace

std::string_view to_string(scenario_action action) {
  switch (action) {
    case scenario_action::kill: return "kill";
    case scenario_action::restart: return "restart";
    case scenario_action::faults: return "faults";
    case scenario_action::toxic: return "toxic";
    case scenario_action::remove_toxic: return "remove_toxic";
    case scenario_action::link_down: return "link_down";
    case scenario_action::link_up: return "link_up";
  }
  return "unknown";
}

scenario_result parse_scenario(std::string_view toml_text, std::string_view source,
                               std::string_view name) {
  scenario_result result;
  auto& problems = result.problems;
  auto parsed = parse_toml(toml_text, source, problems);
  if (!parsed) {
    return result;
  }
  const toml::table& root = *parsed;
  scenario s;
  s.name = std::string(name);
  scenario_reader r(problems);
  r.unknown_keys(root, "", {"title", "summary", "proxies", "topology", "timeouts", "nines",
                            "load", "quick", "timeline", "objectives"});
  r.string(root, "", "title", s.title);
  r.string(root, "", "summary", s.summary);
  if (s.title.empty()) {
    r.problem("title", &root, "is required");
  }
  if (const toml::node* node = root.get("proxies")) {
    s.proxies.clear();
    const auto* arr = node->as_array();
    for (std::size_t i = 0; arr && i < arr->size(); ++i) {
      const auto v = (*arr)[i].value_exact<std::string>();
      if (!v || (*v != "nines" && *v != "nginx" && *v != "haproxy")) {
        r.problem(fmt::format("proxies[{}]", i), &(*arr)[i],
                  "must be \"nines\", \"nginx\" or \"haproxy\"");
      } else {
        s.proxies.push_back(*v);
      }
    }
    if (arr == nullptr) {
      r.problem("proxies", node, "must be an array of proxy names");
    }
  }
  if (const auto* t = r.section(root, "topology")) {
    const std::string p = "topology.";
    r.unknown_keys(*t, p, {"upstreams", "tokens", "thought_tokens", "faults", "chaos", "upstream"});
    r.integer(*t, p, "upstreams", s.upstreams, 1, 16);
    r.integer(*t, p, "tokens", s.tokens, 1, 4096);
    r.integer(*t, p, "thought_tokens", s.thought_tokens, 0, 4096);
    r.string(*t, p, "faults", s.faults);
    r.boolean(*t, p, "chaos", s.chaos);
    if (const toml::node* node = t->get("upstream")) {
      const auto* arr = node->as_array();
      if (arr == nullptr) {
        r.problem(p + "upstream", node, "must be an array of tables ([[topology.upstream]])");
      }
      for (std::size_t i = 0; arr && i < arr->size(); ++i) {
        const auto up = fmt::format("{}upstream[{}].", p, i);
        const auto* ut = (*arr)[i].as_table();
        if (ut == nullptr) {
          r.problem(up, &(*arr)[i], "must be a table");
          continue;
        }
        scenario_upstream u;
        r.unknown_keys(*ut, up, {"index", "refuse", "faults"});
        r.integer(*ut, up, "index", u.index, 0, static_cast<std::int64_t>(s.upstreams) - 1);
        r.boolean(*ut, up, "refuse", u.refuse);
        r.string(*ut, up, "faults", u.faults);
        s.overrides.push_back(u);
      }
    }
  }
  if (const auto* t = r.section(root, "timeouts")) {
    const std::string p = "timeouts.";
    r.unknown_keys(*t, p, {"connect_ms", "first_byte_ms", "stream_idle_ms"});
    r.integer(*t, p, "connect_ms", s.timeouts.connect_ms, 1, 600000);
    r.integer(*t, p, "first_byte_ms", s.timeouts.first_byte_ms, 1, 600000);
    r.integer(*t, p, "stream_idle_ms", s.timeouts.stream_idle_ms, 1, 600000);
  }
  if (const auto* t = r.section(root, "nines")) {
    r.unknown_keys(*t, "nines.", {"config"});
    r.string(*t, "nines.", "config", s.nines_config);
  }
  if (const auto* t = r.section(root, "load")) {
    r.read_load(*t, "load.", s.load);
  }
  s.quick = s.load;
  s.quick.duration_s = std::min(s.load.duration_s, 8.0);
  if (const auto* t = r.section(root, "quick")) {
    r.read_load(*t, "quick.", s.quick);
  }
  if (const toml::node* node = root.get("timeline")) {
    const auto* arr = node->as_array();
    if (arr == nullptr) {
      r.problem("timeline", node, "must be an array of tables ([[timeline]])");
    }
    for (std::size_t i = 0; arr && i < arr->size(); ++i) {
      const auto p = fmt::format("timeline[{}].", i);
      const auto* et = (*arr)[i].as_table();
      if (et == nullptr) {
        r.problem(p, &(*arr)[i], "must be a table");
        continue;
      }
      scenario_event e;
      r.read_event(*et, p, s, e);
      s.timeline.push_back(std::move(e));
    }
    std::stable_sort(s.timeline.begin(), s.timeline.end(),
                     [](const auto& a, const auto& b) { return a.at_s < b.at_s; });
  }
  if (const auto* t = r.section(root, "objectives")) {
    const std::string p = "objectives.";
    r.unknown_keys(*t, p, {"success_rate", "ttft_p99_ms", "total_p99_ms"});
    r.number(*t, p, "success_rate", s.objectives.success_rate, 0, 1);
    for (auto [key, field] : {std::pair{"ttft_p99_ms", &s.objectives.ttft_p99_ms},
                              std::pair{"total_p99_ms", &s.objectives.total_p99_ms}}) {
      if (t->get(key) != nullptr) {
        double v = 0;
        const auto before = problems.size();
        r.number(*t, p, key, v, 0, 3.6e6);
        if (problems.size() == before) {
          *field = v;
        }
      }
    }
  }
  if (problems.empty()) {
    result.value = std::move(s);
  }
  return result;
}

std::vector<scenario_event> quick_timeline(const scenario& s) {
  auto events = s.timeline;
  const double scale = s.load.duration_s > 0 ? s.quick.duration_s / s.load.duration_s : 1.0;
  for (auto& e : events) {
    e.at_s *= scale;
  }
  return events;
}

std::vector<objective_check> check_objectives(const scenario_objectives& o,
                                              const run_measurements& m) {
  std::vector<objective_check> out;
  objective_check success;
  success.name = "success rate";
  success.target = o.success_rate;
  success.measured = m.success_rate;
  success.met = m.requests > 0 && m.success_rate >= o.success_rate;
  success.text = fmt::format("{:.4f}% {} {:.4f}%", 100 * m.success_rate,
                             success.met ? ">=" : "<", 100 * o.success_rate);
  out.push_back(success);
  const auto latency = [&](const char* name, std::optional<double> target, double measured) {
    if (!target) {
      return;
    }
    objective_check c;
    c.name = name;
    c.target = *target;
    c.measured = measured;
    c.met = m.requests > 0 && measured <= *target;
    c.text = fmt::format("{:.1f} ms {} {:.0f} ms", measured, c.met ? "<=" : ">", *target);
    out.push_back(c);
  };
  latency("ttft p99", o.ttft_p99_ms, m.ttft_p99_ms);
  latency("total p99", o.total_p99_ms, m.total_p99_ms);
  return out;
}

}  // namespace nines::core
