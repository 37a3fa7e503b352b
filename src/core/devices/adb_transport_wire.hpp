#pragma once
// The ADB transport, as an adb server and a phone's adbd speak it over USB or TCP (adb's
// protocol.txt and SYNC.TXT): what the fake device-side adbd of the tests reads and writes.
// No I/O here.
//
//   a message:  24 bytes, six little-endian words (command, arg0, arg1, payload length, payload
//               checksum, command ^ 0xffffffff), then the payload
//   CNXN(version, max payload, "host::..." / "device::...")   the connection
//   AUTH(type, 0, token | signature | public key)             the phone's key check
//   OPEN(local id, 0, "shell:CMD\0")   OKAY(local id, remote id)   WRTE(local, remote, bytes)
//   CLSE(local id, remote id)         a stream, acknowledged WRTE by WRTE
//   sync: inside a "sync:" stream, requests "STAT"/"RECV"/"QUIT" + 4-byte length + path;
//         answers "STAT" + mode + size + mtime, "DATA" + length + bytes, "DONE", "FAIL" + message
//
// Everything read is bounded and checked: a head whose magic does not match its command, a
// command nobody knows, or a payload longer than the connection allows is refused.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nines::core {

namespace adb_cmd {
inline constexpr std::uint32_t cnxn = 0x4e584e43;  // "CNXN" read as a little-endian word
inline constexpr std::uint32_t auth = 0x48545541;
inline constexpr std::uint32_t open = 0x4e45504f;
inline constexpr std::uint32_t okay = 0x59414b4f;
inline constexpr std::uint32_t clse = 0x45534c43;
inline constexpr std::uint32_t wrte = 0x45545257;
inline constexpr std::uint32_t sync = 0x434e5953;
inline constexpr std::uint32_t stls = 0x534c5453;
}  // namespace adb_cmd

// AUTH's types.
inline constexpr std::uint32_t adb_auth_token = 1;
inline constexpr std::uint32_t adb_auth_signature = 2;
inline constexpr std::uint32_t adb_auth_public_key = 3;

// The version with which both sides stop checking payload checksums (adb 29 sends it).
inline constexpr std::uint32_t adb_transport_version = 0x01000001;
inline constexpr std::size_t adb_transport_head_bytes = 24;

struct adb_message_head {
  std::uint32_t command = 0;
  std::uint32_t arg0 = 0;
  std::uint32_t arg1 = 0;
  std::uint32_t length = 0;
  std::uint32_t checksum = 0;
};

// A whole message: its head (checksum = the byte sum of `payload`, which older versions check)
// and its payload.
std::string encode_adb_message(std::uint32_t command, std::uint32_t arg0, std::uint32_t arg1,
                               std::string_view payload = {});

// The head in `bytes` (exactly adb_transport_head_bytes); nullopt when the magic does not match,
// the command is none of adb_cmd's, or the payload is longer than `max_payload`.
std::optional<adb_message_head> decode_adb_head(std::string_view bytes, std::uint32_t max_payload);

// One sync request at the front of `buffer`: its id ("STAT", "RECV", "QUIT", ...) and path.
struct adb_sync_request {
  std::string id;
  std::string path;
  std::size_t consumed = 0;  // bytes of `buffer` it took
};
enum class adb_sync_parse { done, more, bad };
// `done` fills `out`; `more` when the request is not all there yet; `bad` when its path is longer
// than `max_path` (adb's own limit is 1024).
adb_sync_parse parse_adb_sync_request(std::string_view buffer, std::size_t max_path,
                                      adb_sync_request& out);

// Sync answers.
std::string adb_sync_stat(std::uint32_t mode, std::uint32_t size, std::uint32_t mtime);
std::string adb_sync_data(std::string_view chunk);  // at most adb_sync_max_data bytes
std::string adb_sync_done(std::uint32_t mtime);
std::string adb_sync_fail(std::string_view message);
inline constexpr std::size_t adb_sync_max_data = 64 * 1024;

// The client's side of sync (a pull, as `adb pull` speaks it through the adb server): a request
// ("RECV", "STAT", "QUIT") for `path`, and the answers read back.
std::string adb_sync_request_bytes(std::string_view id, std::string_view path);
struct adb_sync_reply {
  enum class kind { data, done, fail } what = kind::done;
  std::string_view payload;  // DATA's bytes or FAIL's message, inside the buffer parsed
  std::size_t consumed = 0;
};
// One answer at the front of `buffer` during a RECV: `done` fills `out`; `more` when it is not all
// there yet; `bad` for an id other than DATA/DONE/FAIL, a DATA longer than adb_sync_max_data or a
// FAIL message longer than `max_message`.
adb_sync_parse parse_adb_sync_reply(std::string_view buffer, std::size_t max_message,
                                    adb_sync_reply& out);

}  // namespace nines::core
