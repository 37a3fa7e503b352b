#pragma once
// The bytes read from a connection and not yet used, in a buffer with a hard capacity: what a peer
// can make us hold is bounded, whatever it sends. Storage starts small and grows on demand up to
// the capacity (an idle connection costs little); unread bytes are moved to the front when room is
// needed. No exceptions: a full buffer offers an empty space, and the caller decides what that
// means (a head too large, say).
//
// Threading: one connection's, on its thread.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#include "net/asio.hpp"

namespace nines::net {

class read_buffer {
 public:
  explicit read_buffer(std::size_t capacity) : capacity_(capacity) {}

  std::string_view data() const { return {storage_.data() + begin_, end_ - begin_}; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  bool full() const { return size() >= capacity_; }

  // Room to read into, at most `most` bytes (empty when the buffer is full).
  asio::mutable_buffer space(std::size_t most = 16384) {
    if (end_ == storage_.size()) {
      if (begin_ > 0) {
        std::memmove(storage_.data(), storage_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (end_ == storage_.size() && storage_.size() < capacity_) {
        storage_.resize(std::min(capacity_, std::max<std::size_t>(4096, storage_.size() * 2)));
      }
    }
    return asio::buffer(storage_.data() + end_, std::min(most, storage_.size() - end_));
  }
  void commit(std::size_t n) { end_ += n; }
  void consume(std::size_t n) {
    begin_ += std::min(n, size());
    if (begin_ == end_) {
      begin_ = end_ = 0;
    }
  }
  // Moves up to `size` unread bytes into `out`; returns how many.
  std::size_t take(char* out, std::size_t size) {
    const std::size_t n = std::min(size, this->size());
    std::memcpy(out, storage_.data() + begin_, n);
    consume(n);
    return n;
  }

 private:
  std::size_t capacity_;
  std::string storage_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace nines::net
