#include "core/devices/adb_transport_wire.hpp"

namespace nines::core {

namespace {

void put_word(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xffU));
  }
}

std::uint32_t word_at(std::string_view bytes, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(i)]);
  }
  return v;
}

bool known_command(std::uint32_t c) {
  switch (c) {
    case adb_cmd::cnxn:
    case adb_cmd::auth:
    case adb_cmd::open:
    case adb_cmd::okay:
    case adb_cmd::clse:
    case adb_cmd::wrte:
    case adb_cmd::sync:
    case adb_cmd::stls:
      return true;
    default:
      return false;
  }
}

std::string tagged(std::string_view id, std::uint32_t word, std::string_view tail = {}) {
  std::string out(id);
  put_word(out, word);
  out.append(tail);
  return out;
}

}  // namespace

std::string encode_adb_message(std::uint32_t command, std::uint32_t arg0, std::uint32_t arg1,
                               std::string_view payload) {
  std::uint32_t sum = 0;
  for (const char c : payload) {
    sum += static_cast<unsigned char>(c);
  }
  std::string out;
  out.reserve(adb_transport_head_bytes + payload.size());
  put_word(out, command);
  put_word(out, arg0);
  put_word(out, arg1);
  put_word(out, static_cast<std::uint32_t>(payload.size()));
  put_word(out, sum);
  put_word(out, command ^ 0xffffffffU);
  out.append(payload);
  return out;
}

std::optional<adb_message_head> decode_adb_head(std::string_view bytes, std::uint32_t max_payload) {
  if (bytes.size() != adb_transport_head_bytes) {
    return std::nullopt;
  }
  adb_message_head h;
  h.command = word_at(bytes, 0);
  h.arg0 = word_at(bytes, 4);
  h.arg1 = word_at(bytes, 8);
  h.length = word_at(bytes, 12);
  h.checksum = word_at(bytes, 16);
  const std::uint32_t magic = word_at(bytes, 20);
  if (magic != (h.command ^ 0xffffffffU) || !known_command(h.command) || h.length > max_payload) {
    return std::nullopt;
  }
  return h;
}

adb_sync_parse parse_adb_sync_request(std::string_view buffer, std::size_t max_path,
                                      adb_sync_request& out) {
  if (buffer.size() < 8) {
    return adb_sync_parse::more;
  }
  const std::uint32_t length = word_at(buffer, 4);
  if (length > max_path) {
    return adb_sync_parse::bad;
  }
  if (buffer.size() - 8 < length) {
    return adb_sync_parse::more;
  }
  out.id = std::string(buffer.substr(0, 4));
  out.path = std::string(buffer.substr(8, length));
  out.consumed = 8 + length;
  return adb_sync_parse::done;
}

std::string adb_sync_stat(std::uint32_t mode, std::uint32_t size, std::uint32_t mtime) {
  std::string out = tagged("STAT", mode);
  put_word(out, size);
  put_word(out, mtime);
  return out;
}

std::string adb_sync_data(std::string_view chunk) {
  return tagged("DATA", static_cast<std::uint32_t>(chunk.size()), chunk);
}

std::string adb_sync_done(std::uint32_t mtime) {
  return tagged("DONE", mtime);
}

std::string adb_sync_fail(std::string_view message) {
  return tagged("FAIL", static_cast<std::uint32_t>(message.size()), message);
}

std::string adb_sync_request_bytes(std::string_view id, std::string_view path) {
  return tagged(id, static_cast<std::uint32_t>(path.size()), path);
}

adb_sync_parse parse_adb_sync_reply(std::string_view buffer, std::size_t max_message,
                                    adb_sync_reply& out) {
  if (buffer.size() < 8) {
    return adb_sync_parse::more;
  }
  const auto id = buffer.substr(0, 4);
  const std::uint32_t word = word_at(buffer, 4);
  if (id == "DONE") {
    out = {adb_sync_reply::kind::done, {}, 8};
    return adb_sync_parse::done;
  }
  adb_sync_reply::kind what{};
  if (id == "DATA" && word <= adb_sync_max_data) {
    what = adb_sync_reply::kind::data;
  } else if (id == "FAIL" && word <= max_message) {
    what = adb_sync_reply::kind::fail;
  } else {
    return adb_sync_parse::bad;
  }
  if (buffer.size() - 8 < word) {
    return adb_sync_parse::more;
  }
  out = {what, buffer.substr(8, word), 8 + std::size_t{word}};
  return adb_sync_parse::done;
}

}  // namespace nines::core
