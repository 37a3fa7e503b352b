// libFuzzer target: what a Redis server (or something posing as one) sends (core/redis): read by
// hiredis's reader through nines's bounded reply tree, in pieces whose sizes come from the input.
// Never a crash or a leak; a reply taken stays within the bounds; a broken reader stays broken and
// yields nothing more. And commands framed from the input's words are read back as those words.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/redis/redis_reply.hpp"

namespace {

using nines::core::redis_reply;

std::size_t weight(const redis_reply& r, std::size_t& elements) {
  std::size_t bytes = r.text.size();
  elements += r.elements.size();
  bytes += r.elements.size() * sizeof(redis_reply);
  for (const auto& e : r.elements) {
    bytes += weight(e, elements);
  }
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nines::core;
  if (size == 0) {
    return 0;
  }
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const redis_reader_limits limits{512, 32};
  redis_reply_reader reader(limits);
  const std::size_t piece = 1 + data[0] % 17;
  bool was_broken = false;
  for (std::size_t at = 0; at < text.size(); at += piece) {
    reader.feed(text.substr(at, piece));
    while (auto r = reader.next()) {
      if (was_broken) {
        __builtin_trap();
      }
      std::size_t elements = 0;
      if (weight(*r, elements) > limits.max_bytes || elements > limits.max_elements) {
        __builtin_trap();
      }
      (void)redis_role(*r);
      if (auto a = redis_master_address(*r); a && (a->port == 0 || a->host.empty())) {
        __builtin_trap();
      }
      (void)describe_redis_reply(*r, 64);
    }
    if (reader.broken()) {
      if (reader.problem().empty()) {
        __builtin_trap();
      }
      was_broken = true;
    }
  }

  // The input's words (split at NUL), framed and read back.
  std::vector<std::string_view> words;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size() && words.size() < 16; ++i) {
    if (i == text.size() || text[i] == '\0') {
      words.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  std::string wire;
  if (!append_redis_command(wire, words)) {
    __builtin_trap();
  }
  redis_reply_reader back({1u << 20, 64});
  back.feed(wire);
  const auto r = back.next();
  if (!r || r->type != redis_reply::kind::array || r->elements.size() != words.size()) {
    __builtin_trap();
  }
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (r->elements[i].type != redis_reply::kind::string || r->elements[i].text != words[i]) {
      __builtin_trap();
    }
  }
  return 0;
}
