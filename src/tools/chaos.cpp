#include "tools/chaos.hpp"

#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>
#include <deque>
#include <fmt/format.h>
#include <iostream>
#include <list>
#include <map>
#include <spdlog/spdlog.h>
#include <thread>
#include <unordered_map>

#include "core/tools/chaos_toxic.hpp"
#include "core/config/config.hpp"
#include "core/config/key_values.hpp"
#include "core/http/openai_error.hpp"
#include "net/server_group.hpp"
#include "net/spawn.hpp"
#include "net/wakeup.hpp"
#include "tools/http_client.hpp"

namespace nines::tools {
namespace {

using namespace net;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

// A reader stops reading while this much of its direction waits to be written (backpressure).
constexpr std::size_t max_queued_bytes = 1u << 20;

class link;

struct toxic_entry {
  core::toxic toxic;
  std::uint64_t generation = 0;  // changes with every update, so that toxicity is drawn again
};

// One `listen → upstream` proxy, its toxics and its open connections.
class chaos_proxy : public std::enable_shared_from_this<chaos_proxy> {
 public:
  chaos_proxy(asio::any_io_executor executor, std::string name, tcp::endpoint listen,
              tcp::endpoint upstream)
      : executor_(std::move(executor)), name_(std::move(name)), listen_(listen),
        upstream_(upstream), acceptor_(executor_) {}

  const std::string& name() const { return name_; }
  const tcp::endpoint& upstream() const { return upstream_; }
  const std::vector<toxic_entry>& toxics() const { return toxics_; }
  bool enabled() const { return enabled_; }

  // Binds (the configured port the first time, the same port afterwards) and starts accepting.
  error_code enable();
  // Stops accepting and closes every connection.
  void disable();

  std::string add_toxic(const json::value& body, json::object& out);
  std::string update_toxic(const std::string& toxic_name, const json::value& body,
                           json::object& out);
  bool remove_toxic(const std::string& toxic_name);
  void remove_all_toxics();
  const toxic_entry* find_toxic(const std::string& toxic_name) const;

  json::object to_json() const;

  void count_bytes(core::toxic_stream stream, std::size_t n) {
    (stream == core::toxic_stream::upstream ? bytes_up_ : bytes_down_) += n;
  }
  std::uint64_t next_seed() { return seed_base_ + (++connections_total_); }
  void set_seed(std::uint64_t seed) { seed_base_ = seed; }

 private:
  awaitable<void> accept_loop(std::shared_ptr<chaos_proxy> self);
  void toxics_changed();

  asio::any_io_executor executor_;
  std::string name_;
  tcp::endpoint listen_;
  tcp::endpoint upstream_;
  tcp::acceptor acceptor_;
  bool enabled_ = false;
  std::vector<toxic_entry> toxics_;
  std::uint64_t generations_ = 0;
  std::list<std::weak_ptr<link>> links_;
  std::uint64_t connections_total_ = 0;
  std::uint64_t seed_base_ = 1;
  std::uint64_t bytes_up_ = 0;
  std::uint64_t bytes_down_ = 0;
};

// One proxied connection: client ⇄ upstream, each direction a reader (source → queue) and a
// writer (queue → destination, through the toxics), plus a watcher for the toxics that end a
// connection on a timer (reset_peer, timeout with a timeout).
class link : public std::enable_shared_from_this<link> {
 public:
  link(std::shared_ptr<chaos_proxy> proxy, tcp::socket client)
      : proxy_(std::move(proxy)), client_(std::move(client)), server_(client_.get_executor()),
        up_(core::toxic_stream::upstream, client_, server_),
        down_(core::toxic_stream::downstream, server_, client_), watch_(client_.get_executor()),
        random_(proxy_->next_seed()) {}

  awaitable<void> run(std::shared_ptr<link> self);

  // Ends the connection on both sides; with `reset`, each peer sees a TCP reset.
  void close(bool reset);
  void toxics_changed() { watch_.notify(); }
  bool closed() const { return closed_; }

 private:
  struct direction {
    direction(core::toxic_stream s, tcp::socket& f, tcp::socket& t)
        : stream(s), from(f), to(t), reader_wake(f.get_executor()), writer_wake(f.get_executor()) {}
    core::toxic_stream stream;
    tcp::socket& from;
    tcp::socket& to;
    std::deque<std::pair<steady::time_point, std::string>> queue;
    std::size_t queued_bytes = 0;
    bool source_ended = false;  // the source sent FIN
    bool done = false;          // the destination has been shut down for sending
    wakeup reader_wake;
    wakeup writer_wake;
    core::direction_progress progress;
  };

  awaitable<void> read(std::shared_ptr<link> self, direction& d);
  awaitable<void> write(std::shared_ptr<link> self, direction& d, direction& other);
  awaitable<void> watch(std::shared_ptr<link> self);
  // The toxics of `stream` that apply to this connection, in the order they were added.
  std::vector<const core::toxic*> active(core::toxic_stream stream);
  bool applies(const toxic_entry& entry);

  std::shared_ptr<chaos_proxy> proxy_;
  tcp::socket client_;
  tcp::socket server_;
  direction up_;
  direction down_;
  wakeup watch_;
  core::splitmix_rng random_;
  std::unordered_map<std::string, std::pair<std::uint64_t, bool>> applies_;
  std::unordered_map<std::string, std::pair<std::uint64_t, steady::time_point>> activated_;
  bool closed_ = false;
};

bool link::applies(const toxic_entry& entry) {
  auto& [generation, yes] = applies_[entry.toxic.name];
  if (generation != entry.generation) {
    generation = entry.generation;
    yes = core::toxic_applies(entry.toxic, random_);
  }
  return yes;
}

std::vector<const core::toxic*> link::active(core::toxic_stream stream) {
  std::vector<const core::toxic*> out;
  for (const auto& entry : proxy_->toxics()) {
    if (entry.toxic.stream == stream && applies(entry)) {
      out.push_back(&entry.toxic);
    }
  }
  return out;
}

void link::close(bool reset) {
  if (closed_) {
    return;
  }
  closed_ = true;
  for (auto* s : {&client_, &server_}) {
    error_code ignored;
    if (reset) {
      s->set_option(asio::socket_base::linger(true, 0), ignored);
    }
    s->close(ignored);
  }
  for (auto* d : {&up_, &down_}) {
    d->reader_wake.notify();
    d->writer_wake.notify();
  }
  watch_.notify();
}

awaitable<void> link::run(std::shared_ptr<link> self) {
  auto [ec] = co_await server_.async_connect(proxy_->upstream(), use_nothrow);
  if (ec) {
    close(true);  // the client sees its connection reset, as with a dead server behind a proxy
    co_return;
  }
  error_code ignored;
  server_.set_option(tcp::no_delay(true), ignored);
  client_.set_option(tcp::no_delay(true), ignored);
  const auto executor = client_.get_executor();
  spawn(executor, read(self, up_), "chaos reader");
  spawn(executor, read(self, down_), "chaos reader");
  spawn(executor, write(self, up_, down_), "chaos writer");
  spawn(executor, write(self, down_, up_), "chaos writer");
  co_await watch(self);
}

awaitable<void> link::read(std::shared_ptr<link> self, direction& d) {
  char buf[16384];
  while (!closed_) {
    if (d.queued_bytes >= max_queued_bytes) {
      co_await d.reader_wake.wait();
      continue;
    }
    auto [ec, n] = co_await d.from.async_read_some(asio::buffer(buf), use_nothrow);
    if (closed_) {
      co_return;
    }
    if (n > 0) {
      d.queue.emplace_back(steady::now(), std::string(buf, n));
      d.queued_bytes += n;
      d.writer_wake.notify();
    }
    if (ec == asio::error::eof) {
      d.source_ended = true;
      d.writer_wake.notify();
      co_return;
    }
    if (ec) {
      close(true);  // a reset (or any failure) on one side is passed on as a reset
      co_return;
    }
  }
}

awaitable<void> link::write(std::shared_ptr<link> self, direction& d, direction& other) {
  while (!closed_) {
    if (d.queue.empty() && !d.source_ended) {
      co_await d.writer_wake.wait();
      continue;
    }
    if (d.queue.empty()) {
      // The source closed its side: pass the close on, after any slow_close delay.
      for (const auto* t : active(d.stream)) {
        if (t->type == core::toxic_type::slow_close && t->delay > 0) {
          co_await d.writer_wake.wait(steady::now() + std::chrono::milliseconds(t->delay));
        }
      }
      if (closed_) {
        co_return;
      }
      error_code ignored;
      d.to.shutdown(tcp::socket::shutdown_send, ignored);
      d.done = true;
      if (other.done) {
        close(false);
      }
      co_return;
    }
    auto [arrival, data] = std::move(d.queue.front());
    d.queue.pop_front();
    d.queued_bytes -= data.size();
    d.reader_wake.notify();
    const auto list = active(d.stream);
    const auto plan = core::plan_chunk(list, data.size(), d.progress, random_);
    if (plan.drop) {
      continue;  // blackholed
    }
    if (plan.latency.count() > 0) {
      const auto due = arrival + plan.latency;
      while (!closed_ && steady::now() < due) {
        co_await d.writer_wake.wait(due);
      }
    }
    for (const auto& piece : plan.pieces) {
      if (piece.pause.count() > 0) {
        const auto due = steady::now() + piece.pause;
        while (!closed_ && steady::now() < due) {
          co_await d.writer_wake.wait(due);
        }
      }
      if (closed_) {
        co_return;
      }
      auto [ec, n] = co_await asio::async_write(
          d.to, asio::buffer(data.data() + piece.offset, piece.length), use_nothrow);
      proxy_->count_bytes(d.stream, n);
      if (ec) {
        close(true);
        co_return;
      }
    }
    if (plan.close_after) {
      close(false);
      co_return;
    }
  }
}

awaitable<void> link::watch(std::shared_ptr<link> self) {
  while (!closed_) {
    const auto now = steady::now();
    auto deadline = steady::time_point::max();
    bool reset = false;
    for (const auto& entry : proxy_->toxics()) {
      const auto& t = entry.toxic;
      const bool timed = t.type == core::toxic_type::reset_peer ||
                         (t.type == core::toxic_type::timeout && t.timeout > 0);
      if (!timed || !applies(entry)) {
        continue;
      }
      auto& [generation, since] = activated_[t.name];
      if (generation != entry.generation) {
        generation = entry.generation;
        since = now;
      }
      const auto at = since + std::chrono::milliseconds(t.timeout);
      if (at < deadline) {
        deadline = at;
        reset = t.type == core::toxic_type::reset_peer;
      }
    }
    if (deadline <= now) {
      close(reset);
      co_return;
    }
    co_await watch_.wait(deadline);
  }
}

error_code chaos_proxy::enable() {
  if (enabled_) {
    return {};
  }
  error_code ec;
  acceptor_.open(listen_.protocol(), ec);
  if (!ec) {
    acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor_.bind(listen_, ec);
  }
  if (!ec) {
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    error_code ignored;
    acceptor_.close(ignored);
    return ec;
  }
  listen_ = acceptor_.local_endpoint();  // port 0 becomes the port we got, kept from now on
  enabled_ = true;
  spawn(executor_, accept_loop(shared_from_this()), "chaos accept loop");
  return {};
}

void chaos_proxy::disable() {
  enabled_ = false;
  error_code ignored;
  acceptor_.close(ignored);
  for (auto& weak : links_) {
    if (auto l = weak.lock()) {
      l->close(false);
    }
  }
  links_.clear();
}

awaitable<void> chaos_proxy::accept_loop(std::shared_ptr<chaos_proxy> self) {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
      co_return;
    }
    if (ec) {
      spdlog::warn("chaos proxy {}: accept failed: {}", name_, ec.message());
      co_await sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    auto l = std::make_shared<link>(self, std::move(socket));
    // Forget the links that have ended, so that the list stays as long as the open ones.
    links_.remove_if([](const std::weak_ptr<link>& w) {
      auto p = w.lock();
      return !p || p->closed();
    });
    links_.push_back(l);
    spawn(executor_, l->run(l), "chaos link");
  }
}

void chaos_proxy::toxics_changed() {
  for (auto& weak : links_) {
    if (auto l = weak.lock()) {
      l->toxics_changed();
    }
  }
}

const toxic_entry* chaos_proxy::find_toxic(const std::string& toxic_name) const {
  for (const auto& e : toxics_) {
    if (e.toxic.name == toxic_name) {
      return &e;
    }
  }
  return nullptr;
}

std::string chaos_proxy::add_toxic(const json::value& body, json::object& out) {
  core::toxic t;
  if (auto why = core::toxic_from_json(body, t); !why.empty()) {
    return why;
  }
  if (find_toxic(t.name) != nullptr) {
    return fmt::format("toxic \"{}\" already exists on proxy \"{}\"", t.name, name_);
  }
  toxics_.push_back({t, ++generations_});
  out = core::toxic_to_json(t);
  toxics_changed();
  return {};
}

std::string chaos_proxy::update_toxic(const std::string& toxic_name, const json::value& body,
                                      json::object& out) {
  auto it = std::find_if(toxics_.begin(), toxics_.end(),
                         [&](const toxic_entry& e) { return e.toxic.name == toxic_name; });
  if (it == toxics_.end()) {
    return "no such toxic";
  }
  core::toxic t;
  if (auto why = core::toxic_from_json(body, t, &it->toxic); !why.empty()) {
    return why;
  }
  if (t.name != toxic_name) {
    return "the name of a toxic cannot change";
  }
  it->toxic = t;
  it->generation = ++generations_;
  out = core::toxic_to_json(t);
  toxics_changed();
  return {};
}

bool chaos_proxy::remove_toxic(const std::string& toxic_name) {
  const auto before = toxics_.size();
  std::erase_if(toxics_, [&](const toxic_entry& e) { return e.toxic.name == toxic_name; });
  toxics_changed();
  return toxics_.size() != before;
}

void chaos_proxy::remove_all_toxics() {
  toxics_.clear();
  toxics_changed();
}

json::object chaos_proxy::to_json() const {
  json::array toxics;
  for (const auto& e : toxics_) {
    toxics.push_back(core::toxic_to_json(e.toxic));
  }
  std::uint64_t open = 0;
  for (const auto& weak : links_) {
    auto l = weak.lock();
    open += l && !l->closed() ? 1 : 0;
  }
  return json::object{
      {"name", name_},
      {"listen", fmt::format("{}:{}", listen_.address().to_string(), listen_.port())},
      {"upstream", fmt::format("{}:{}", upstream_.address().to_string(), upstream_.port())},
      {"enabled", enabled_},
      {"toxics", std::move(toxics)},
      {"connections", json::object{{"total", connections_total_}, {"open", open}}},
      {"bytes", json::object{{"upstream", bytes_up_}, {"downstream", bytes_down_}}}};
}

std::optional<tcp::endpoint> endpoint_from(std::string_view text) {
  const auto addr = core::parse_listen_address(text);
  if (!addr) {
    return std::nullopt;
  }
  error_code ec;
  const auto ip = asio::ip::make_address(addr->host, ec);
  if (ec) {
    return std::nullopt;
  }
  return tcp::endpoint(ip, addr->port);
}

// Every proxy of the process; used from its one thread only.
class chaos_state {
 public:
  chaos_state(asio::any_io_executor executor, std::uint64_t seed)
      : executor_(std::move(executor)), seed_(seed) {}

  // Creates (and, unless told otherwise, enables) a proxy from its JSON description.
  std::pair<http::status, json::value> create(const json::value& body);
  std::pair<http::status, json::value> handle(http::verb method, std::string_view path,
                                              const std::string& body);
  std::shared_ptr<chaos_proxy> find(const std::string& name) const {
    auto it = proxies_.find(name);
    return it == proxies_.end() ? nullptr : it->second;
  }

 private:
  asio::any_io_executor executor_;
  std::uint64_t seed_;
  std::map<std::string, std::shared_ptr<chaos_proxy>> proxies_;
};

json::value error_json(std::string_view message) {
  return json::parse(core::openai_error_body("invalid_request_error", message));
}

std::pair<http::status, json::value> chaos_state::create(const json::value& body) {
  const auto* o = body.if_object();
  if (o == nullptr) {
    return {http::status::bad_request, error_json("a proxy must be a JSON object")};
  }
  for (const auto& [k, v] : *o) {
    if (k != "name" && k != "listen" && k != "upstream" && k != "enabled") {
      return {http::status::bad_request,
              error_json(fmt::format("unknown field \"{}\"", std::string_view(k)))};
    }
  }
  const auto text = [&](const char* key) -> std::string {
    const auto* v = o->if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  const std::string name = text("name");
  if (name.empty()) {
    return {http::status::bad_request, error_json("name is required")};
  }
  const auto listen = endpoint_from(text("listen"));
  const auto upstream = endpoint_from(text("upstream"));
  if (!listen || !upstream) {
    return {http::status::bad_request,
            error_json("listen and upstream must be \"ip:port\" (listen port 0: any free port)")};
  }
  bool enabled = true;
  if (const auto* e = o->if_contains("enabled")) {
    if (!e->is_bool()) {
      return {http::status::bad_request, error_json("enabled must be true or false")};
    }
    enabled = e->get_bool();
  }
  if (proxies_.contains(name)) {
    return {http::status::conflict, error_json(fmt::format("proxy \"{}\" exists", name))};
  }
  auto proxy = std::make_shared<chaos_proxy>(executor_, name, *listen, *upstream);
  proxy->set_seed(seed_ + 1000003 * (proxies_.size() + 1));
  if (enabled) {
    if (auto ec = proxy->enable()) {
      return {http::status::internal_server_error,
              error_json(fmt::format("cannot listen on {}: {}", text("listen"), ec.message()))};
    }
  }
  proxies_[name] = proxy;
  const auto description = proxy->to_json();
  spdlog::info("nines chaos proxy {} listening on {} -> {}", name,
               std::string_view(description.at("listen").get_string()),
               std::string_view(description.at("upstream").get_string()));
  return {http::status::created, description};
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const auto slash = path.find('/');
    parts.emplace_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
  }
  return parts;
}

std::pair<http::status, json::value> chaos_state::handle(http::verb method, std::string_view path,
                                                         const std::string& body_text) {
  const auto parts = split_path(path.substr(0, path.find('?')));
  json::value body;
  if (method == http::verb::post && !body_text.empty()) {
    json::error_code ec;
    body = json::parse(body_text, ec);
    if (ec) {
      return {http::status::bad_request, error_json("invalid JSON: " + ec.message())};
    }
  }
  const auto not_found = [](std::string what) {
    return std::pair{http::status::not_found,
                     json::parse(core::openai_error_body("not_found", what))};
  };
  if (parts.size() == 1 && parts[0] == "reset" && method == http::verb::post) {
    for (auto& [name, p] : proxies_) {
      p->remove_all_toxics();
      p->enable();
    }
    return {http::status::no_content, nullptr};
  }
  if (parts.empty() || parts[0] != "proxies") {
    return not_found("no route " + std::string(path));
  }
  if (parts.size() == 1) {
    if (method == http::verb::get) {
      json::object all;
      for (auto& [name, p] : proxies_) {
        all[name] = p->to_json();
      }
      return {http::status::ok, all};
    }
    if (method == http::verb::post) {
      return create(body);
    }
    return {http::status::method_not_allowed, error_json("use GET or POST")};
  }
  auto proxy = find(parts[1]);
  if (!proxy) {
    return not_found("no proxy \"" + parts[1] + "\"");
  }
  if (parts.size() == 2) {
    if (method == http::verb::get) {
      return {http::status::ok, proxy->to_json()};
    }
    if (method == http::verb::delete_) {
      proxy->disable();
      proxies_.erase(parts[1]);
      return {http::status::no_content, nullptr};
    }
    if (method == http::verb::post) {
      const auto* o = body.if_object();
      const auto* enabled = o ? o->if_contains("enabled") : nullptr;
      if (enabled == nullptr || !enabled->is_bool() || o->size() != 1) {
        return {http::status::bad_request, error_json("expected {\"enabled\": true|false}")};
      }
      if (enabled->get_bool()) {
        if (auto ec = proxy->enable()) {
          return {http::status::internal_server_error,
                  error_json("cannot listen again: " + ec.message())};
        }
      } else {
        proxy->disable();
      }
      return {http::status::ok, proxy->to_json()};
    }
    return {http::status::method_not_allowed, error_json("use GET, POST or DELETE")};
  }
  if (parts[2] != "toxics" || parts.size() > 4) {
    return not_found("no route " + std::string(path));
  }
  if (parts.size() == 3) {
    if (method == http::verb::get) {
      return {http::status::ok, proxy->to_json().at("toxics")};
    }
    if (method == http::verb::post) {
      json::object added;
      if (auto why = proxy->add_toxic(body, added); !why.empty()) {
        const bool exists = why.find("already exists") != std::string::npos;
        return {exists ? http::status::conflict : http::status::bad_request, error_json(why)};
      }
      return {http::status::ok, added};
    }
    return {http::status::method_not_allowed, error_json("use GET or POST")};
  }
  const auto& toxic_name = parts[3];
  const auto* entry = proxy->find_toxic(toxic_name);
  if (entry == nullptr) {
    return not_found("no toxic \"" + toxic_name + "\" on proxy \"" + parts[1] + "\"");
  }
  if (method == http::verb::get) {
    return {http::status::ok, core::toxic_to_json(entry->toxic)};
  }
  if (method == http::verb::delete_) {
    proxy->remove_toxic(toxic_name);
    return {http::status::no_content, nullptr};
  }
  if (method == http::verb::post) {
    json::object updated;
    if (auto why = proxy->update_toxic(toxic_name, body, updated); !why.empty()) {
      return {http::status::bad_request, error_json(why)};
    }
    return {http::status::ok, updated};
  }
  return {http::status::method_not_allowed, error_json("use GET, POST or DELETE")};
}

awaitable<void> serve_api(request& req, downstream& client, chaos_state& state) {
  auto [status, value] = state.handle(req.method(), req.target(), req.body());
  http::response<http::string_body> res{status, req.version()};
  if (status != http::status::no_content) {
    res.set(http::field::content_type, "application/json");
    res.body() = json::serialize(value) + "\n";
  }
  co_await client.send(std::move(res));
}

// "name=gpu-a,listen=127.0.0.1:0,upstream=127.0.0.1:9001,enabled=false" as the API's JSON.
std::string proxy_json_from_text(std::string_view text, json::object& out) {
  std::vector<core::key_value> items;
  if (auto why = core::split_key_values(text, items); !why.empty()) {
    return why;
  }
  for (const auto& [key, value] : items) {
    if (key == "enabled") {
      if (value != "true" && value != "false") {
        return "enabled must be true or false";
      }
      out[key] = value == "true";
    } else {
      out[key] = value;
    }
  }
  return {};
}

}  // namespace

int run_chaos(const chaos_options& options) {
  const auto api = core::parse_listen_address(options.api);
  if (!api) {
    std::cerr << "nines chaos: --api must be host:port\n";
    return 2;
  }
  server_group group(api->host, api->port, 1, server_limits{});
  const auto api_port = group.bind();
  chaos_state state(group.context(0).get_executor(), options.seed);
  // Proxies and toxics given on the command line go through the API's own paths.
  for (const auto& spec : options.proxies) {
    json::object body;
    auto why = proxy_json_from_text(spec, body);
    if (why.empty()) {
      auto [status, answer] = state.create(body);
      if (status != http::status::created) {
        why = std::string(answer.at("error").at("message").get_string());
      }
    }
    if (!why.empty()) {
      std::cerr << "nines chaos: --proxy " << spec << ": " << why << "\n";
      return 2;
    }
  }
  for (const auto& spec : options.toxics) {
    json::object body;
    std::vector<std::pair<std::string, std::string>> extras;
    const std::string_view keys[] = {"proxy"};
    auto why = core::toxic_json_from_text(spec, body, keys, &extras);
    if (why.empty() && extras.size() != 1) {
      why = "needs proxy=NAME";
    }
    if (why.empty()) {
      auto proxy = state.find(extras[0].second);
      json::object added;
      why = proxy ? proxy->add_toxic(body, added) : "no proxy \"" + extras[0].second + "\"";
    }
    if (!why.empty()) {
      std::cerr << "nines chaos: --toxic " << spec << ": " << why << "\n";
      return 2;
    }
  }
  group.start(0, [&state](request& req, downstream& client) {
    return serve_api(req, client, state);
  });
  asio::signal_set signals(group.context(0), SIGTERM, SIGINT);
  signals.async_wait([&](const error_code& ec, int) {
    if (!ec) {
      group.stop();
    }
  });
  spdlog::info("nines chaos api listening on http://{}:{}", api->host, api_port);
  group.run();
  return 0;
}

int run_chaos_ctl(const chaos_ctl_options& o) {
  const auto& cmd = o.command;
  const auto need = [&](std::size_t n) {
    if (o.args.size() != n) {
      std::cerr << "nines chaos-ctl " << cmd << ": expects " << n << " argument"
                << (n == 1 ? "" : "s") << "\n";
      return false;
    }
    return true;
  };
  std::string method = "GET";
  std::string path;
  std::string body;
  if (cmd == "list") {
    path = "/proxies";
  } else if (cmd == "reset") {
    method = "POST";
    path = "/reset";
  } else if (cmd == "add-proxy") {
    if (!need(1)) {
      return 2;
    }
    json::object o2;
    if (auto why = proxy_json_from_text(o.args[0], o2); !why.empty()) {
      std::cerr << "nines chaos-ctl: " << why << "\n";
      return 2;
    }
    method = "POST";
    path = "/proxies";
    body = json::serialize(o2);
  } else if (cmd == "remove-proxy" || cmd == "enable" || cmd == "disable") {
    if (!need(1)) {
      return 2;
    }
    path = "/proxies/" + o.args[0];
    method = cmd == "remove-proxy" ? "DELETE" : "POST";
    if (cmd != "remove-proxy") {
      body = cmd == "enable" ? R"({"enabled":true})" : R"({"enabled":false})";
    }
  } else if (cmd == "add-toxic" || cmd == "update-toxic") {
    if (!need(1)) {
      return 2;
    }
    json::object toxic;
    std::vector<std::pair<std::string, std::string>> extras;
    const std::string_view keys[] = {"proxy"};
    auto why = core::toxic_json_from_text(o.args[0], toxic, keys, &extras);
    if (why.empty() && extras.size() != 1) {
      why = "needs proxy=NAME";
    }
    if (why.empty() && cmd == "update-toxic" && !toxic.contains("name")) {
      why = "needs name=TOXIC";
    }
    if (!why.empty()) {
      std::cerr << "nines chaos-ctl: " << why << "\n";
      return 2;
    }
    method = "POST";
    path = "/proxies/" + extras[0].second + "/toxics";
    if (cmd == "update-toxic") {
      path += "/" + std::string(toxic.at("name").get_string());
      toxic.erase("name");
    }
    body = json::serialize(toxic);
  } else if (cmd == "remove-toxic") {
    if (!need(2)) {
      return 2;
    }
    method = "DELETE";
    path = "/proxies/" + o.args[0] + "/toxics/" + o.args[1];
  } else {
    std::cerr << "nines chaos-ctl: unknown command \"" << cmd
              << "\" (list, add-proxy, remove-proxy, enable, disable, add-toxic, update-toxic, "
                 "remove-toxic, reset)\n";
    return 2;
  }
  const auto r = http_call_url(o.api, method, path, body);
  if (r.status == 0) {
    std::cerr << "nines chaos-ctl: " << r.error << "\n";
    return 1;
  }
  std::cout << r.body;
  if (!r.body.empty() && r.body.back() != '\n') {
    std::cout << "\n";
  }
  return r.status / 100 == 2 ? 0 : 1;
}

}  // namespace nines::tools
