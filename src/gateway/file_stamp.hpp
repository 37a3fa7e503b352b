#pragma once
// What tells the gateway that a file it reads (the config, the keys file, certificates, key
// files) changed: its modification time, size and inode. A file replaced by rename (as
// Kubernetes updates a mounted secret) gets a new inode even within the same second.

#include <optional>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace nines::gateway {

struct file_stamp {
  struct timespec modified {};
  off_t size = -1;
  ino_t inode = 0;
  bool operator==(const file_stamp& o) const {
    return modified.tv_sec == o.modified.tv_sec && modified.tv_nsec == o.modified.tv_nsec &&
           size == o.size && inode == o.inode;
  }
};

// nullopt when the file cannot be stat'ed (missing).
inline std::optional<file_stamp> stamp_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return std::nullopt;
  }
  return file_stamp{st.st_mtim, st.st_size, st.st_ino};
}

inline std::vector<std::optional<file_stamp>> stamps_of(const std::vector<std::string>& paths) {
  std::vector<std::optional<file_stamp>> out;
  for (const auto& p : paths) {
    out.push_back(stamp_of(p));
  }
  return out;
}

}  // namespace nines::gateway
