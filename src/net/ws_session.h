#pragma once
// Internal to net/: included by http_server.cpp only (it names Beast types).
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>

#include "api/fanout.h"
#include "api/metrics.h"
#include "api/ws_gate.h"
#include "chat/service.h"
#include "net/hub.h"
#include "net/ws_options.h"

namespace parley::net {

// One WebSocket connection: a reader, one writer and a keep-alive timer, all on the
// connection's strand. Events come in through deliver() and wait in a bounded queue; a
// client that lets it overflow is closed with 1008 "slow consumer".
class WsSession final : public WsConnection, public std::enable_shared_from_this<WsSession> {
 public:
  // keep: owns the stream (the HTTP connection); held as long as the session lives.
  WsSession(boost::beast::tcp_stream& stream, std::shared_ptr<void> keep, WsDeps& deps, api::Admission adm,
            std::string id);
  // Completes the upgrade and serves the connection until it closes.
  boost::asio::awaitable<void> run(boost::beast::http::request<boost::beast::http::string_body> req);

  void deliver(const api::OutEventPtr& ev) override;
  void kick(std::uint16_t code, std::string reason) override;
  bool follows(Id room) const override { return adm_.sidebar || room == adm_.room; }
  bool is_chatroom_of(Id room) const override { return !adm_.sidebar && room == adm_.room; }

 private:
  using Clock = std::chrono::steady_clock;
  boost::asio::awaitable<void> reader_loop();
  boost::asio::awaitable<void> writer_loop();
  boost::asio::awaitable<void> keepalive_loop();
  boost::asio::awaitable<bool> write_now(const std::string& frame);
  boost::asio::awaitable<bool> catch_up();                            // replay or snapshot; false: close
  void push(const api::OutEventPtr& ev, bool closing_flush = false);  // on the strand
  void push_reply(std::string frame);                                 // on the strand
  void wake();
  void hard_close(const std::string& why);
  void request_close(std::uint16_t code, std::string reason, bool flush);
  const char* endpoint() const { return adm_.sidebar ? "sidebar" : "chatroom"; }

  std::shared_ptr<void> keep_;
  boost::asio::any_io_executor strand_;  // the connection's strand
  boost::beast::websocket::stream<boost::beast::tcp_stream&> ws_;
  WsDeps& deps_;
  api::Admission adm_;
  std::string id_;
  boost::asio::steady_timer wake_, keepalive_, kill_;

  // Strand-only state.
  std::deque<api::OutEventPtr> queue_;
  std::size_t queued_bytes_ = 0;
  bool catching_up_ = true;
  std::vector<api::OutEventPtr> pending_;  // live events held during replay/snapshot
  std::size_t pending_bytes_ = 0;
  chat::Seq last_msg_seq_ = 0;                                  // chatroom: newest seq sent
  std::map<Id, std::pair<chat::Seq, chat::Seq>> last_unread_;   // room → (last_seq, read_seq) sent
  std::optional<std::pair<std::uint16_t, std::string>> close_;  // requested close
  bool closed_ = false;
  bool ping_due_ = false;
  Clock::time_point last_rx_ = Clock::now(), last_ping_ = Clock::now();
  double tokens_ = 0;
  Clock::time_point tokens_at_ = Clock::now();
  std::string end_reason_ = "closed";
};

}  // namespace parley::net
