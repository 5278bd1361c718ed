#pragma once
// Internal to net/: included by http_server.cpp only (it names Beast types).
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <memory>
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
#include "net/ws_options.h"

namespace parley::net {

// One WebSocket connection, as transport: a reader, one writer and a keep-alive timer, all
// on the connection's strand. Events come in through deliver(), pass the delivery filter
// (chat::DeliveryFilter: never a seq twice, never an older badge) and wait in the bounded
// outbound queue (net/outbound_queue.h); client frames go to the inbound dispatcher (api/).
class WsSession final : public WsConnection, public std::enable_shared_from_this<WsSession> {
 public:
  // keep: owns the stream (the HTTP connection); held as long as the session lives.
  WsSession(boost::beast::tcp_stream& stream, std::shared_ptr<void> keep, WsDeps& deps, api::Admission adm,
            std::string id);
  // Completes the upgrade and serves the connection until it closes.
  boost::asio::awaitable<void> run(boost::beast::http::request<boost::beast::http::string_body> req);

  void deliver(const api::OutEventPtr& ev) override;
  void deliver_snapshot(std::vector<api::OutEventPtr> badges) override;
  void kick(std::uint16_t code, std::string reason) override;
  const std::string& connection_id() const override { return who_.connection_id; }
  std::optional<std::int64_t> token_version() const override { return adm_.token_version; }

 private:
  using Clock = std::chrono::steady_clock;
  boost::asio::awaitable<void> reader_loop();
  boost::asio::awaitable<void> writer_loop();
  boost::asio::awaitable<void> keepalive_loop();
  boost::asio::awaitable<bool> write_now(const std::string& frame);
  boost::asio::awaitable<bool> write_batch(const std::vector<api::OutEventPtr>& batch);
  boost::asio::awaitable<bool> catch_up();  // replay or snapshot; false: close
  boost::asio::awaitable<bool> send_connected();
  boost::asio::awaitable<bool> replay();
  boost::asio::awaitable<bool> page_out(Id room, chat::Seq& cursor, chat::Seq until, bool& ok);
  void push(const api::OutEventPtr& ev, bool closing_flush = false);  // on the strand
  void drain_inbox();                                                 // on the strand
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
  boost::asio::any_io_executor strand_;  // the connection's strand
  boost::beast::websocket::stream<CorkedStream> ws_;
  WsDeps& deps_;
  api::Admission adm_;
  api::WsIdentity who_;
  boost::asio::steady_timer wake_, keepalive_, kill_, snapshot_wait_, stall_, blocked_;

  // Events handed over by deliver() (any thread) and not yet pushed: one post to the strand
  // per batch instead of one per event (a fan-out to a socket of its new_message and badge,
  // a burst of sends). Bounded as the posts it replaces were: by what the hub fans out before
  // the strand runs (HubOptions::max_pending events); drained whole on each run, and push()
  // applies the queue's bounds to every event of it. Empty, it holds no memory.
  std::atomic_flag inbox_lock_;  // clear; held for a few instructions: spin, then yield
  bool inbox_posted_ = false;    // a drain is posted and has not started
  std::vector<api::OutEventPtr> inbox_;

  // Strand-only state.
  OutboundQueue queue_;
  chat::DeliveryFilter filter_;
  bool writer_waiting_ = false;  // the writer waits on wake_ (wake() has something to cancel)
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
  bool ping_due_ = false;
  Clock::time_point last_rx_ = Clock::now(), last_ping_ = Clock::now();
  TokenBucket inbound_;
  std::string end_reason_ = "closed";
};

}  // namespace parley::net
