#include "core/redis/redis_reply.hpp"

#include <hiredis/hiredis.h>

#include <charconv>
#include <new>

namespace nines::core {

// What the reply being built may still take. hiredis calls the object callbacks from inside
// redisReaderGetReply, on the calling thread: the budget of the reader driving it is found here.
struct redis_reply_reader::budget {
  std::size_t bytes = 0;
  std::size_t elements = 0;
  std::string overrun;  // set by the callback that refused
};

namespace {

thread_local redis_reply_reader::budget* current_budget = nullptr;

// The slot of a new value: the root is allocated (freed by free_reply, or taken by next()); an
// element is its array's slot, sized when the array was created and never moved since.
redis_reply* slot_for(const redisReadTask* task) {
  if (task->parent == nullptr) {
    return new (std::nothrow) redis_reply();
  }
  auto* parent = static_cast<redis_reply*>(task->parent->obj);
  if (parent == nullptr || task->idx < 0 ||
      static_cast<std::size_t>(task->idx) >= parent->elements.size()) {
    return nullptr;  // cannot happen with hiredis; refused rather than trusted
  }
  return &parent->elements[static_cast<std::size_t>(task->idx)];
}

bool take(std::size_t& left, std::size_t n, const char* what) {
  if (n > left) {
    if (current_budget != nullptr && current_budget->overrun.empty()) {
      current_budget->overrun = what;
    }
    return false;
  }
  left -= n;
  return true;
}

void* create_string(const redisReadTask* task, char* text, std::size_t len) {
  if (current_budget == nullptr ||
      !take(current_budget->bytes, len, "a reply larger than the bound")) {
    return nullptr;
  }
  auto* r = slot_for(task);
  if (r == nullptr) {
    return nullptr;
  }
  r->type = task->type == REDIS_REPLY_ERROR    ? redis_reply::kind::error
            : task->type == REDIS_REPLY_STATUS ? redis_reply::kind::status
                                               : redis_reply::kind::string;
  r->text.assign(text, len);
  return r;
}

void* create_array(const redisReadTask* task, int elements) {
  if (current_budget == nullptr || elements < 0 ||
      !take(current_budget->elements, static_cast<std::size_t>(elements),
            "a reply with more array elements than the bound") ||
      !take(current_budget->bytes, static_cast<std::size_t>(elements) * sizeof(redis_reply),
            "a reply larger than the bound")) {
    return nullptr;
  }
  auto* r = slot_for(task);
  if (r == nullptr) {
    return nullptr;
  }
  r->type = redis_reply::kind::array;
  r->elements.resize(static_cast<std::size_t>(elements));
  return r;
}

void* create_integer(const redisReadTask* task, long long value) {
  auto* r = slot_for(task);
  if (r != nullptr) {
    r->type = redis_reply::kind::integer;
    r->integer = value;
  }
  return r;
}

void* create_nil(const redisReadTask* task) {
  auto* r = slot_for(task);
  if (r != nullptr) {
    r->type = redis_reply::kind::nil;
  }
  return r;
}

// hiredis frees only a root (an unfinished one, when the reader breaks): elements are its own.
void free_reply(void* reply) {
  delete static_cast<redis_reply*>(reply);
}

redisReplyObjectFunctions reply_functions{create_string, create_array, create_integer, create_nil,
                                          free_reply};

}  // namespace

struct redis_reply_reader::hiredis_reader {
  redisReader* r = redisReaderCreateWithFunctions(&reply_functions);
  ~hiredis_reader() {
    if (r != nullptr) {
      redisReaderFree(r);
    }
  }
};

redis_reply_reader::redis_reply_reader(redis_reader_limits limits)
    : limits_(limits),
      reader_(std::make_unique<hiredis_reader>()),
      budget_(std::make_unique<budget>(budget{limits.max_bytes, limits.max_elements, {}})) {
  if (reader_->r == nullptr) {
    problem_ = "out of memory for a Redis reply reader";
  }
}

redis_reply_reader::~redis_reply_reader() = default;

void redis_reply_reader::break_with(std::string why) {
  if (problem_.empty()) {
    problem_ = std::move(why);
  }
}

bool redis_reply_reader::feed(std::string_view bytes) {
  if (broken()) {
    return false;
  }
  if (bytes.empty()) {
    return true;
  }
  if (redisReaderFeed(reader_->r, bytes.data(), bytes.size()) != REDIS_OK) {
    break_with(std::string("Redis reply: ") + reader_->r->errstr);
    return false;
  }
  // Bytes buffered for replies not yet whole (a bulk string announced long, still coming).
  if (reader_->r->len - reader_->r->pos > limits_.max_bytes) {
    break_with("Redis reply: a reply larger than the bound (" + std::to_string(limits_.max_bytes) +
               " bytes)");
    return false;
  }
  return true;
}

std::optional<redis_reply> redis_reply_reader::next() {
  if (broken()) {
    return std::nullopt;
  }
  // The budget lasts until a reply is whole: hiredis builds one across calls as bytes come.
  auto& b = *budget_;
  current_budget = &b;
  void* out = nullptr;
  const int rc = redisReaderGetReply(reader_->r, &out);
  current_budget = nullptr;
  if (rc != REDIS_OK) {
    break_with("Redis reply: " +
               (b.overrun.empty()
                    ? std::string(reader_->r->errstr)
                    : b.overrun + " (" + std::to_string(limits_.max_bytes) + " bytes, " +
                          std::to_string(limits_.max_elements) + " elements)"));
    if (out != nullptr) {
      free_reply(out);
    }
    return std::nullopt;
  }
  if (out == nullptr) {
    return std::nullopt;
  }
  b = budget{limits_.max_bytes, limits_.max_elements, {}};
  std::unique_ptr<redis_reply> owned(static_cast<redis_reply*>(out));
  return std::move(*owned);
}

bool append_redis_command(std::string& wire, std::span<const std::string_view> words) {
  if (words.empty() || words.size() > 1u << 20) {
    return false;
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(words.size());
  lengths.reserve(words.size());
  for (const auto w : words) {
    argv.push_back(w.data());
    lengths.push_back(w.size());
  }
  char* framed = nullptr;
  const int n =
      redisFormatCommandArgv(&framed, static_cast<int>(words.size()), argv.data(), lengths.data());
  if (n < 0 || framed == nullptr) {
    return false;
  }
  wire.append(framed, static_cast<std::size_t>(n));
  redisFreeCommand(framed);
  return true;
}

bool append_redis_command(std::string& wire, std::initializer_list<std::string_view> words) {
  return append_redis_command(wire, std::span<const std::string_view>(words.begin(), words.size()));
}

namespace {

void describe_into(const redis_reply& r, std::string& out, std::size_t most) {
  if (out.size() >= most) {
    return;
  }
  auto printable = [&](std::string_view text) {
    for (const char c : text) {
      if (out.size() >= most) {
        return;
      }
      const auto u = static_cast<unsigned char>(c);
      out += u >= 0x20 && u < 0x7f ? c : '?';
    }
  };
  switch (r.type) {
    case redis_reply::kind::string:
      out += '"';
      printable(r.text);
      out += '"';
      break;
    case redis_reply::kind::status:
      printable(r.text);
      break;
    case redis_reply::kind::error:
      out += "error: ";
      printable(r.text);
      break;
    case redis_reply::kind::integer:
      out += std::to_string(r.integer);
      break;
    case redis_reply::kind::nil:
      out += "(nil)";
      break;
    case redis_reply::kind::array:
      out += '[';
      for (std::size_t i = 0; i < r.elements.size() && out.size() < most; ++i) {
        if (i > 0) {
          out += ", ";
        }
        describe_into(r.elements[i], out, most);
      }
      out += ']';
      break;
  }
}

}  // namespace

std::string describe_redis_reply(const redis_reply& r, std::size_t most) {
  std::string out;
  describe_into(r, out, most);
  if (out.size() > most) {
    out.resize(most);
  }
  return out;
}

std::string redis_role(const redis_reply& r) {
  if (r.type != redis_reply::kind::array || r.elements.empty() ||
      r.elements[0].type != redis_reply::kind::string) {
    return {};
  }
  const auto& word = r.elements[0].text;
  return word == "master" || word == "slave" || word == "sentinel" ? word : std::string();
}

std::optional<redis_host_port> redis_master_address(const redis_reply& r) {
  if (r.type != redis_reply::kind::array || r.elements.size() != 2 ||
      r.elements[0].type != redis_reply::kind::string ||
      r.elements[1].type != redis_reply::kind::string) {
    return std::nullopt;
  }
  const auto& host = r.elements[0].text;
  const auto& port_text = r.elements[1].text;
  if (host.empty() || host.size() > 255) {
    return std::nullopt;
  }
  for (const char c : host) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '.' || c == ':' || c == '-';
    if (!ok) {
      return std::nullopt;
    }
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535 || port_text.front() == '0') {
    return std::nullopt;
  }
  return redis_host_port{host, static_cast<std::uint16_t>(port)};
}

}  // namespace nines::core
