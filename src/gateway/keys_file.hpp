#pragma once
// Reading the client keys file named by `[auth] keys_file` (core/access/client_keys.hpp), at
// startup, for --check and on every reload.

#include <string>

#include "core/access/client_keys.hpp"

namespace nines::gateway {

// The file's keys, or its problems (each with its place in the file, as `file:line:col: key: ...`
// when formatted with the path as source). A file that cannot be read is one problem.
core::client_keys_result read_keys_file(const std::string& path);

}  // namespace nines::gateway
