#pragma once
// The journal of recent answers, for clients that come back: a client whose connection dropped
// re-sends its request with `Last-Event-ID` and receives the events after that id; a client that
// repeats an `Idempotency-Key` gets the answer of the first request (finished or still running)
// instead of a second generation.
//
// A journaled request's generation is decoupled from its client: the gateway writes everything the
// client is to receive (the response head, then each SSE event, or a whole body) into a
// journal_entry, and every client attached to the entry (the first, a reconnect, a duplicate)
// reads from it. A client that leaves does not stop the generation; one that has no client left
// for `ttl` is cancelled. Finished entries stay for `ttl`, then expire.
//
// Memory is bounded by `max_bytes` over all entries: when an append would exceed it, the journal
// drops, in this order, expired entries; finished entries (oldest first); events of running
// streams that every attached client has already read (kept only for reconnects); and, as a last
// resort, unread events of the growing stream (a client that far behind, or a reconnect asking for
// those, gets a clear error instead). A producer whose stream has a client attached appends with a
// waker: when events its own clients have not read yet stand in the way, nothing is dropped and
// the producer waits for them instead — backpressure, as a direct relay has — for a bounded
// patience, so a generation faster than its reader never costs that reader events. A stalled
// client (unread events, no read for `stalled_reader`) holds no producer back: the oldest events of
// the streams it is reading go first, and it gets a clear error when it comes back for them.
//
// Thread-safety: one mutex for the journal and its entries; producers and consumers may run on
// any worker. Nothing here blocks or does I/O: consumers register a waiter callback and are called
// back (outside the lock) when something changes. Time is passed in.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nines::core {

struct journal_settings {
  std::size_t max_bytes = 64u << 20;
  std::chrono::milliseconds ttl{120000};
  // A client with unread events that has not read for this long is stalled: producers stop
  // waiting for it, and its stream's oldest events may go to make room for others.
  std::chrono::milliseconds stalled_reader{1000};
};

// The head of a response, as the gateway sent (or would have sent) it to the client.
struct journal_head {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> fields;
  bool stream = false;
};

// What the generation did, for the access log of every client attached to it.
struct journal_summary {
  std::string outcome;  // ok, failed, stream_incomplete, client_closed (while running: empty)
  unsigned attempts = 0;
  unsigned resumes = 0;
  std::vector<std::string> upstreams;
  std::string served_by;
  std::string resume_log;
  std::string detail;
};

class stream_journal;

class journal_entry {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  const std::string& stream_key() const { return stream_key_; }

  // Producer side. Each call may take a `waker`: then it happens only when what it adds fits under
  // the bound once what no attached client needs is dropped; else nothing happens, false is
  // returned, and `waker` is called once (outside the lock, on the reader's thread) the next time
  // an attached client reads: try again then, or call without a waker past your patience (the last
  // resort then drops the oldest unread events).
  bool commit_head(journal_head head, time_point now, std::function<void()> waker = {});
  // Appends SSE events in canonical form (each ends with a blank line: "\n\n").
  bool append_events(std::string_view events, time_point now, std::function<void()> waker = {});
  // The end of a stream, or of a whole answer whose body is `body`.
  bool finish(std::string_view body_or_last_events, const journal_summary& summary, time_point now,
              std::function<void()> waker = {});
  // True when no client has been attached for the journal's ttl: the generation should stop.
  bool cancelled(time_point now) const;
  // True once it ended as a failure (a 5xx or 429 answer, an incomplete or cancelled stream): an
  // Idempotency-Key repeat then gets a new generation, not this one again.
  bool failed() const;

  // Consumer side.
  struct view {
    std::optional<journal_head> head;
    std::string events;        // the events after the requested sequence number, concatenated
    std::uint64_t next_seq = 0;  // pass back to read the events after these
    bool ended = false;        // nothing more will come
    bool lost = false;         // events after the requested one were dropped (memory bound)
    std::string body;          // a whole answer's body (when ended and !head->stream)
    journal_summary summary;   // set when ended
  };
  // A client attaches before it reads, with the last event it already has (0: none), and detaches
  // when it is done. Its reads are tracked, so that the journal knows which events a live client
  // still needs.
  std::uint64_t attach(std::uint64_t after, time_point now);
  void detach(std::uint64_t client, time_point now);
  unsigned clients() const;

  // Events are numbered from 1; `after` 0 reads from the start. With `waiter`, when the view holds
  // nothing new and the entry has not ended, the waiter is registered and called once (outside
  // the journal's lock) at the next change.
  view read(std::uint64_t client, std::uint64_t after, time_point now,
            std::function<void()> waiter = {});

 private:
  friend class stream_journal;
  journal_entry(stream_journal& journal, std::string stream_key, std::string scope_digest)
      : journal_(journal), stream_key_(std::move(stream_key)), digest_(std::move(scope_digest)) {}
  std::vector<std::function<void()>> take_waiters();
  bool failed_locked() const;
  // With the lock held: true when `cost` more bytes fit (or no waker: the caller insists), else
  // registers the waker. Stalled clients hold nobody back: their streams' oldest events go first.
  bool room_for(std::size_t cost, time_point now, std::function<void()>& waker);
  // With the lock held: the newest event, and how far behind it the slowest client that is not
  // stalled at `now` is (and the slowest stalled one).
  struct lag {
    std::uint64_t active = 0;   // events the slowest active client has not read
    std::uint64_t stalled = 0;  // events the slowest stalled client has not read
  };
  lag lag_at(time_point now) const;
  view read_locked(std::uint64_t client, std::uint64_t after, time_point now,
                   std::function<void()> waiter, std::vector<std::function<void()>>& producers);

  stream_journal& journal_;
  std::string stream_key_;
  std::string digest_;  // the request's identity: scope (credentials) and body
  std::optional<std::string> idempotency_key_;
  std::optional<journal_head> head_;
  std::deque<std::string> events_;
  std::uint64_t first_seq_ = 1;  // sequence number of events_.front()
  std::string body_;
  bool ended_ = false;
  journal_summary summary_;
  std::size_t bytes_ = 0;
  unsigned clients_ = 0;
  struct reader {
    std::uint64_t cursor = 0;  // the last event it read
    time_point last_read{};    // when it last read (or attached)
  };
  std::map<std::uint64_t, reader> cursors_;  // attached clients
  std::uint64_t next_client_ = 0;
  time_point alone_since_{};  // when the last client left
  time_point ended_at_{};
  std::vector<std::function<void()>> waiters_;
};

class stream_journal {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit stream_journal(journal_settings settings) : settings_(settings) {}

  enum class open_kind {
    created,   // a new entry: the caller runs the generation and writes into it
    existing,  // the same request under the same Idempotency-Key: attach to it
    conflict,  // the same Idempotency-Key with another request: refuse (422)
  };
  struct opened {
    open_kind kind = open_kind::created;
    std::shared_ptr<journal_entry> entry;
  };

  // Opens the entry of a journaled request. `key_hint` becomes its stream key unless another
  // entry has it (then a suffix makes it unique). `digest` identifies the request (credentials
  // scope and body); `idempotency_key`, when set, must already include the credentials scope.
  // With `running_only`, an entry under the idempotency key is joined only while its generation
  // runs and holds every event from the first (the answer cache's sharing of identical requests
  // in flight); otherwise a new entry takes the key (the old one stays for its clients'
  // reconnects).
  opened open(std::string_view key_hint, std::string digest,
              std::optional<std::string> idempotency_key, time_point now,
              bool running_only = false);

  // The entry whose stream key is `stream_key` and whose request is `digest`, if it is still here.
  std::shared_ptr<journal_entry> find(std::string_view stream_key, std::string_view digest,
                                      time_point now);

  // Drops expired entries. Call now and then (every worker does, every second).
  void sweep(time_point now);

  struct stats {
    std::size_t bytes = 0;
    std::size_t entries = 0;
    std::uint64_t evicted = 0;        // entries dropped before they expired, for memory
    std::uint64_t events_dropped = 0;  // events a running entry lost for memory
  };
  stats read_stats() const;
  const journal_settings& settings() const { return settings_; }

 private:
  friend class journal_entry;
  // With the lock held: account for `delta` more bytes of `growing`, evicting to stay in bounds.
  void grow(journal_entry& growing, std::size_t delta, time_point now);
  // With the lock held: drops what no attached client needs until `bytes` more fit (or nothing
  // more can go); true when they fit.
  bool free_for(const journal_entry& growing, std::size_t bytes, time_point now);
  // With the lock held: drops the oldest events of streams whose slowest client is stalled (the
  // furthest behind first) until `bytes` more fit; true when they fit.
  bool take_from_stalled(std::size_t bytes, time_point now);
  // Drops `e`'s oldest events while the journal holds more than `target` bytes and they are at
  // most `upto`.
  void trim(journal_entry& e, std::uint64_t upto, std::size_t target);
  void erase(const std::shared_ptr<journal_entry>& e);
  void expire(time_point now);

  journal_settings settings_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<journal_entry>, std::less<>> by_key_;
  std::map<std::string, std::shared_ptr<journal_entry>, std::less<>> by_idempotency_;
  std::size_t bytes_ = 0;
  std::uint64_t evicted_ = 0;
  std::uint64_t events_dropped_ = 0;
  std::uint64_t suffix_ = 0;
  std::vector<std::function<void()>> room_waiters_;  // producers waiting for readers
};

// Event ids are "<stream key>:<sequence number>". Returns nullopt when `id` is not of that form.
struct event_id {
  std::string stream_key;
  std::uint64_t seq = 0;
};
std::optional<event_id> parse_event_id(std::string_view id);
std::string format_event_id(std::string_view stream_key, std::uint64_t seq);

}  // namespace nines::core
