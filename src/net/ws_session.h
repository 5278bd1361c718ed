#pragma once
// Internal to net/: included by http_server.cpp only (it names Beast types).
#include <array>
#include <atomic>
#include <functional>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include "api/fanout.h"
#include "api/metrics.h"
#include "api/ws_gate.h"
#include "api/ws_service.h"
#include "chat/delivery_filter.h"
#include "common/token_bucket.h"
#include "net/corked_stream.h"
#include "net/hub.h"
#include "net/outbound_queue.h"
#include "net/ws_frames.h"
#include "net/ws_options.h"

namespace parley::net {

class WsSession;

// The keep-alive of every WebSocket session of a server on one timer instead of one timer
// and coroutine per connection: every tick (WsSession::keepalive_tick) sweep() hands each
// open session a check on its own strand (idle timeout, write timeout, ping due, buffers
// released while idle). Sessions are linked through themselves (no node per connection);
// bounded by the open sessions.
class WsSweep {
 public:
  void add(WsSession& s);
  void remove(WsSession& s);
  void sweep();
  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  WsSession* head_ = nullptr;
  std::size_t size_ = 0;
};

// The write delay (WsOptions::write_delay, `--ws-write-delay-ms`): an event for a session
// waits up to the delay before the session's strand takes it, so that the events arriving
// meanwhile (the next messages of a busy room, their badges) leave in one write instead of
// one write each — the kernel's cost of a write is most of a delivery's. One timer for every
// session, armed while some wait; a session is listed at most once (WsSession::deferred_),
// so the list is bounded by the open sessions, and a session whose waiting events reach
// WsOptions::write_batch is handed over at once without waiting for the timer.
class WsWriteDelay {
 public:
  WsWriteDelay(boost::asio::io_context& ioc, std::chrono::milliseconds delay);
  ~WsWriteDelay();
  // Any thread: s's events go to its strand when the current window ends.
  void defer(std::shared_ptr<WsSession> s);
  // Hands every waiting session over now; defer() then hands over at once (shutdown).
  void stop();

 private:
  struct State;
  std::shared_ptr<State> st_;
};

// One WebSocket connection, as transport: a chain of reads and a writer that runs while there
// is something to write, both on the connection's strand, and a place in the server's
// keep-alive sweep (WsSweep); idle, it holds no coroutine and no buffer. It frames what it
// sends and parses what it reads itself (net/ws_frames.h) straight on the TCP socket, after
// answering the upgrade itself. Events come in through deliver(),
// pass the delivery filter (chat::DeliveryFilter: never a seq twice, never an older badge)
// and wait in the bounded outbound queue (net/outbound_queue.h); client frames go to the
// inbound dispatcher (api/).
class WsSession final : public WsConnection, public std::enable_shared_from_this<WsSession> {
 public:
  // keep: owns the stream (the HTTP connection); held as long as the session lives.
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  // delay: the server's write delay (nullptr: none, every event goes to the strand at once).
  WsSession(boost::beast::tcp_stream& stream, std::shared_ptr<void> keep, WsDeps& deps, WsSweep& sweep,
            WsWriteDelay* delay, api::Admission adm, std::string id, std::function<void()> on_end);
  ~WsSession() override;
  // Completes the upgrade (the request is released once answered) and starts the reader and the
  // writer; on_end is called once the connection is over (also when the upgrade fails).
  boost::asio::awaitable<void> run(std::unique_ptr<Request> req);
  // How often WsSweep checks every session: the ping interval, or a fifth of the idle timeout
  // when that is shorter.
  static std::chrono::milliseconds keepalive_tick(const WsOptions& o);

  void deliver(const api::OutEventPtr& ev) override;
  void deliver_snapshot(std::vector<api::OutEventPtr> badges) override;
  void kick(std::uint16_t code, std::string reason) override;
  const std::string& connection_id() const override { return who_.connection_id; }
  std::optional<std::int64_t> token_version() const override { return adm_.token_version; }

 private:
  using Clock = std::chrono::steady_clock;
  void read_next();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void read_available();
  bool handle_input(std::string_view data);  // false: paused (the rest kept in in_) or over
  bool on_message(const WsEvent& ev);        // true: paused until a blocking answer is queued
  void resume_reading();
  void on_peer_close(std::uint16_t code);
  void send_control(WsOpcode op, std::string_view payload);
  void teardown_when_sent();
  void teardown();
  void cut_within(std::chrono::steady_clock::duration d);
  bool may_send() const { return !closed_ && !close_sent_ && !peer_closed_; }
  void reader_ended();
  void maybe_finish();
  bool revoked() const;
  void finish();
  const char* gauge() const {
    return adm_.sidebar ? "parley_ws_connections{endpoint=\"sidebar\"}" : "parley_ws_connections{endpoint=\"chatroom\"}";
  }
  boost::asio::awaitable<void> catch_up_then_write();
  boost::asio::awaitable<void> writer_loop();
  void start_writer(boost::asio::awaitable<void> w);
  void keepalive_check();  // WsSweep's tick, on the strand
  template <class F>
  void arm(std::unique_ptr<boost::asio::steady_timer>& t, std::chrono::steady_clock::duration d, F f);
  OutboundQueue& queue();
  std::size_t queued() const { return queue_ ? queue_->events() : 0; }
  friend class WsSweep;
  friend class WsWriteDelay;
  void release_deferred();  // WsWriteDelay's window ended: the waiting events go to the strand
  boost::asio::awaitable<bool> write_now(const std::string& frame);
  boost::asio::awaitable<bool> write_batch(const std::vector<api::OutEventPtr>& batch);
  boost::asio::awaitable<bool> catch_up();  // replay or snapshot; false: close
  boost::asio::awaitable<bool> send_connected();
  boost::asio::awaitable<bool> replay();
  boost::asio::awaitable<bool> page_out(Id room, chat::Seq& cursor, chat::Seq until, bool& ok);
  void push(const api::OutEventPtr& ev, bool closing_flush = false);  // on the strand
  void drain_inbox();                                                 // on the strand
  void post_drain();                                                  // once inbox_posted_ is set
  bool write_inline();                                                // on the strand
  void push_reply(std::string frame);                                 // on the strand
  void queue_changed();
  void set_behind(bool behind);
  void write_started();
  void ended();
  void slow_consumer();
  void wake();
  void hard_close(const std::string& why);
  void request_close(std::uint16_t code, std::string reason, bool flush);
  const char* endpoint() const { return adm_.sidebar ? "sidebar" : "chatroom"; }

  std::shared_ptr<void> keep_;
  std::function<void()> on_end_;
  boost::asio::any_io_executor strand_;  // the connection's strand
  boost::beast::tcp_stream& stream_;  // owned by keep_
  CorkedStream cork_;                 // everything the session sends goes through it
  WsDeps& deps_;
  // What the admission decided that the connection keeps (not the refusal's fields).
  struct Admitted {
    Id user = 0;
    Id room = 0;
    std::optional<chat::Seq> after_seq;
    std::optional<std::int64_t> token_version;
    bool sidebar = false;
  } adm_;
  api::WsIdentity who_;
  WsSweep& sweep_;
  WsWriteDelay* delay_;
  WsSession *sweep_prev_ = nullptr, *sweep_next_ = nullptr;  // WsSweep's list, under its mutex
  bool swept_ = false;                                       // in the list
  // Made when first needed (most connections never need them): close timeout, badge snapshot
  // wait (released once the snapshot is in), write stall, write blocked.
  std::unique_ptr<boost::asio::steady_timer> kill_, snapshot_wait_, stall_, blocked_;
  std::array<char, 64> head_;  // the waiting read's buffer (most client frames fit)
  WsFrameReader frames_;       // what the client sends, parsed (≤ max_frame_bytes per message)
  std::string in_;        // bytes read and not yet parsed while a blocking frame is answered
  bool reader_done_ = false, registered_ = false, finished_ = false;
  Clock::time_point started_;
  enum class Writer { Idle, Running, Done };
  Writer writer_ = Writer::Idle;  // Idle: no writer coroutine until wake()

  // Events handed over by deliver() (any thread) and not yet pushed: one post to the strand
  // per batch instead of one per event (a fan-out to a socket of its new_message and badge,
  // a burst of sends). Bounded as the posts it replaces were: by what the hub fans out before
  // the strand runs (HubOptions::max_pending events), and while the write delay holds it by
  // WsOptions::write_batch; drained whole on each run, and push() applies the queue's bounds
  // to every event of it. Empty, it holds no memory.
  std::atomic_flag inbox_lock_;  // clear; held for a few instructions: spin, then yield
  bool inbox_posted_ = false;    // a drain is posted and has not started
  bool deferred_ = false;        // listed in WsWriteDelay: its window's end hands the inbox over
  std::chrono::steady_clock::time_point last_handover_{};  // the last post of a drain (with a write delay)
  std::vector<api::OutEventPtr> inbox_;

  // Strand-only state.
  std::unique_ptr<OutboundQueue> queue_;  // made at the first event, released while idle (sweep)
  chat::DeliveryFilter filter_;
  bool draining_ = false;        // in drain_inbox(): a wake() waits for its end (write_inline)
  bool wake_due_ = false;
  bool catching_up_ = true;
  bool connected_sent_ = false;  // the first frame, once the position is read
  std::vector<api::OutEventPtr> pending_;  // live events held during replay/snapshot
  std::size_t pending_bytes_ = 0;
  std::optional<std::vector<api::OutEventPtr>> snapshot_;
  std::optional<Clock::time_point> writing_since_;              // the write in flight started then
  bool behind_ = false;                                         // counted in api::LoadGauge
  std::optional<std::pair<std::uint16_t, std::string>> close_;  // requested close
  bool closed_ = false;
  bool close_sent_ = false;    // our close frame is buffered or sent: no frame after it
  bool peer_closed_ = false;   // the client's close came in
  bool fail_close_ = false;    // closing for a protocol violation: no waiting for the client's close
  bool teardown_due_ = false;  // tear down once what is buffered has left
  bool ping_due_ = false;
  Clock::time_point last_rx_ = Clock::now(), last_ping_ = Clock::now();
  TokenBucket inbound_;
  std::string end_reason_ = "closed";
};

}  // namespace parley::net
