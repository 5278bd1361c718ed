#include "net/ws_session.h"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "api/events_json.h"
#include "api/ws_inbound.h"

namespace parley::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using asio::awaitable;
using namespace asio::experimental::awaitable_operators;
namespace {
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// Runs a blocking call on the storage pool and resumes on the caller's strand.
template <class F>
auto on_pool(asio::thread_pool& pool, F f) -> awaitable<decltype(f())> {
  co_return co_await asio::co_spawn(
      pool, [f = std::move(f)]() -> awaitable<decltype(f())> { co_return f(); }, asio::use_awaitable);
}
}  // namespace

WsSession::WsSession(beast::tcp_stream& stream, std::shared_ptr<void> keep, WsDeps& deps, api::Admission adm,
                     std::string id)
    : keep_(std::move(keep)),
      strand_(stream.get_executor()),
      ws_(stream),
      deps_(deps),
      adm_(std::move(adm)),
      id_(std::move(id)),
      wake_(stream.get_executor()),
      keepalive_(stream.get_executor()),
      kill_(stream.get_executor()) {
  tokens_ = deps_.opts.inbound_burst;
}

void WsSession::deliver(const api::OutEventPtr& ev) {
  asio::post(strand_, [self = shared_from_this(), ev] { self->push(ev); });
}

void WsSession::kick(std::uint16_t code, std::string reason) {
  asio::post(strand_, [self = shared_from_this(), code, r = std::move(reason)]() mutable {
    self->request_close(code, std::move(r), code == 1001);
  });
}

void WsSession::wake() { wake_.cancel(); }

void WsSession::hard_close(const std::string& why) {
  if (end_reason_ == "closed") end_reason_ = why;
  beast::error_code ec;
  beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(ws_).socket().close(ec);
  closed_ = true;
  wake();
  keepalive_.cancel();
}

void WsSession::request_close(std::uint16_t code, std::string reason, bool flush) {
  if (closed_ || close_) return;
  end_reason_ = reason;
  if (!flush) {
    deps_.metrics.add("parley_ws_events_dropped_total", static_cast<double>(queue_.size() + pending_.size()));
    queue_.clear();
    queued_bytes_ = 0;
    pending_.clear();
  }
  close_ = std::make_pair(code, std::move(reason));
  // A peer that never reads would keep the close frame from leaving: cut it off in time.
  kill_.expires_after(std::chrono::seconds(5));
  kill_.async_wait([self = shared_from_this()](const beast::error_code& ec) {
    if (!ec) self->hard_close("close timeout");
  });
  wake();
}

void WsSession::push(const api::OutEventPtr& ev, bool closing_flush) {
  if (closed_ || (close_ && !closing_flush)) return;
  if (catching_up_) {
    pending_.push_back(ev);
    pending_bytes_ += ev->payload.size();
    if (pending_.size() > deps_.opts.queue_max_events || pending_bytes_ > deps_.opts.queue_max_bytes) {
      deps_.metrics.add("parley_ws_slow_consumer_closes_total", 1);
      request_close(1008, "slow consumer", false);
    }
    return;
  }
  // Exactly once and in order: a chatroom socket never gets a seq twice (the replay seam).
  if (ev->kind == api::OutEvent::Kind::NewMessage && !adm_.sidebar) {
    if (ev->seq <= last_msg_seq_) return;
    last_msg_seq_ = ev->seq;
  }
  // A badge never goes back: drop a state older than the one already sent.
  if (ev->kind == api::OutEvent::Kind::UnreadCount) {
    auto it = last_unread_.find(ev->room);
    if (it != last_unread_.end()) {
      auto [ls, rs] = it->second;
      if (!(ev->last_seq > ls || (ev->last_seq == ls && ev->read_seq > rs))) return;
    }
    last_unread_[ev->room] = {ev->last_seq, ev->read_seq};
  }
  queue_.push_back(ev);
  queued_bytes_ += ev->payload.size();
  deps_.metrics.ws_queue_depth(queue_.size());
  if (queue_.size() > deps_.opts.queue_max_events || queued_bytes_ > deps_.opts.queue_max_bytes) {
    deps_.metrics.add("parley_ws_slow_consumer_closes_total", 1);
    request_close(1008, "slow consumer", false);
    return;
  }
  wake();
}

void WsSession::push_reply(std::string frame) {
  auto ev = std::make_shared<api::OutEvent>();
  ev->payload = std::move(frame);
  push(ev);
}

awaitable<bool> WsSession::write_now(const std::string& frame) {
  auto [ec, n] = co_await ws_.async_write(asio::buffer(frame), tuple_awaitable);
  if (ec) {
    if (end_reason_ == "closed") end_reason_ = "write: " + ec.message();
    co_return false;
  }
  deps_.metrics.ws_frame_sent();
  co_return true;
}

awaitable<bool> WsSession::catch_up() {
  auto& chat = deps_.chat;
  if (adm_.sidebar) {
    // Badges right after any outage: one update per room, ordered with the commits.
    Id user = adm_.user;
    auto states = co_await on_pool(deps_.pool, [&chat, user] { return chat.unread_snapshot(user); });
    for (const auto& s : states) {
      auto ev = api::unread_event(s);
      last_unread_[s.room] = {s.last_seq, s.read_seq};
      if (!co_await write_now(ev->payload)) co_return false;
    }
    co_return true;
  }
  Id user = adm_.user, room = adm_.room;
  chat::Seq last = 0;
  try {
    last = co_await on_pool(deps_.pool, [&chat, user, room] { return chat.require_membership(user, room); });
  } catch (const std::exception&) {
    request_close(1008, "not a member", false);
    co_return true;
  }
  if (!adm_.after_seq) {
    last_msg_seq_ = last;  // live from here on
    co_return true;
  }
  chat::Seq cursor = std::min(*adm_.after_seq, last);
  if (last - cursor > static_cast<chat::Seq>(deps_.opts.replay_max)) {
    last_msg_seq_ = last;
    co_return co_await write_now(api::resync_frame(room, last));
  }
  // Written as the socket drains, page by page; none of it counts toward the queue bounds.
  constexpr int kPage = 200;
  last_msg_seq_ = cursor;
  for (;;) {
    std::vector<chat::Message> page;
    try {
      page = co_await on_pool(deps_.pool,
                              [&chat, user, room, cursor] { return chat.messages_after(user, room, cursor, kPage); });
    } catch (const std::exception&) {
      request_close(1008, "not a member", false);
      co_return true;
    }
    for (const auto& m : page) {
      if (close_ || closed_) co_return true;  // revoked or cut meanwhile: stop replaying
      if (!co_await write_now(api::new_message_frame(m))) co_return false;
      cursor = last_msg_seq_ = m.seq;
    }
    if (static_cast<int>(page.size()) < kPage) break;
  }
  co_return true;
}

awaitable<void> WsSession::writer_loop() {
  auto self = shared_from_this();
  bool ok = co_await write_now(
      api::connected_frame(adm_.user, id_, adm_.sidebar ? std::nullopt : std::optional<Id>(adm_.room)));
  if (ok) {
    try {
      ok = co_await catch_up();
    } catch (const std::exception& e) {  // storage failed or is shutting down
      spdlog::warn("ws catch-up failed conn={} user={}: {}", id_, adm_.user, e.what());
      request_close(1011, "try again", false);
    }
  }
  catching_up_ = false;
  bool close_sent = false;
  auto held = std::move(pending_);
  pending_.clear();
  pending_bytes_ = 0;
  for (const auto& ev : held) push(ev, true);  // a 1001 close flushes what was held too
  while (ok && !closed_) {
    if (ping_due_) {
      ping_due_ = false;
      auto [ec] = co_await ws_.async_ping({}, tuple_awaitable);
      if (ec) break;
      continue;
    }
    if (!queue_.empty()) {
      auto ev = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= ev->payload.size();
      if (!co_await write_now(ev->payload)) break;
      continue;
    }
    if (close_) {
      auto [ec] = co_await ws_.async_close(
          websocket::close_reason(static_cast<websocket::close_code>(close_->first), close_->second), tuple_awaitable);
      close_sent = !ec;
      break;
    }
    wake_.expires_at(Clock::time_point::max());
    co_await wake_.async_wait(tuple_awaitable);
  }
  // Unless a close handshake is under way (the reader ends when the peer answers it, or the
  // kill timer cuts it), nothing more will be written: end the connection.
  if (!closed_ && !close_sent) hard_close(end_reason_);
}

awaitable<void> WsSession::reader_loop() {
  auto self = shared_from_this();
  beast::flat_buffer buf;
  for (;;) {
    buf.clear();
    auto [ec, n] = co_await ws_.async_read(buf, tuple_awaitable);
    if (ec) {
      if (end_reason_ == "closed") {
        if (ec == websocket::error::closed) {
          auto cr = ws_.reason();
          end_reason_ = "client close " + std::to_string(cr.code);
        } else {
          end_reason_ = "read: " + ec.message();
        }
      }
      break;
    }
    last_rx_ = Clock::now();
    if (close_) continue;  // closing: answer nothing more
    // Inbound rate: a token bucket per connection, over every data frame.
    double elapsed = std::chrono::duration<double>(last_rx_ - tokens_at_).count();
    tokens_ = std::min(deps_.opts.inbound_burst, tokens_ + elapsed * deps_.opts.inbound_per_sec);
    tokens_at_ = last_rx_;
    if (tokens_ < 1) {
      push_reply(api::error_frame("rate_limited", "too many frames"));
      continue;
    }
    tokens_ -= 1;
    if (!ws_.got_text()) {
      push_reply(api::error_frame("binary_not_supported", "frames must be JSON text"));
      continue;
    }
    auto data = buf.cdata();
    push_reply(api::answer_client_frame(std::string_view(static_cast<const char*>(data.data()), data.size())));
  }
  closed_ = true;
  wake();
  keepalive_.cancel();
  kill_.cancel();
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
}

awaitable<void> WsSession::keepalive_loop() {
  auto self = shared_from_this();
  auto tick = std::min<Clock::duration>(deps_.opts.ping_interval, deps_.opts.idle_timeout / 5);
  while (!closed_) {
    keepalive_.expires_after(tick);
    co_await keepalive_.async_wait(tuple_awaitable);
    if (closed_) break;
    auto now = Clock::now();
    if (now - last_rx_ > deps_.opts.idle_timeout) {
      hard_close("idle timeout");
      break;
    }
    if (now - last_ping_ >= deps_.opts.ping_interval) {
      last_ping_ = now;
      ping_due_ = true;
      wake();
    }
  }
}

awaitable<void> WsSession::run(beast::http::request<beast::http::string_body> req) {
  auto self = shared_from_this();
  auto started = Clock::now();
  beast::get_lowest_layer(ws_).expires_never();  // the websocket stream keeps its own time
  websocket::stream_base::timeout t{};
  t.handshake_timeout = deps_.opts.handshake_timeout;
  t.idle_timeout = websocket::stream_base::none();
  t.keep_alive_pings = false;
  ws_.set_option(t);
  ws_.read_message_max(deps_.opts.max_frame_bytes);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(beast::http::field::server, "parley"); }));
  ws_.control_callback([this](websocket::frame_type, beast::string_view) { last_rx_ = Clock::now(); });
  auto [ec] = co_await ws_.async_accept(req, tuple_awaitable);
  if (ec) {
    deps_.metrics.add("parley_ws_handshake_failures_total{reason=\"handshake\"}", 1);
    spdlog::info("ws handshake failed conn={} user={}: {}", id_, adm_.user, ec.message());
    co_return;
  }
  std::string gauge = std::string("parley_ws_connections{endpoint=\"") + endpoint() + "\"}";
  deps_.metrics.add(gauge, 1);
  // Refused once the server is closing all sockets: this one came in too late for that.
  if (!deps_.hub.add(adm_.user, self)) request_close(1001, "server shutting down", true);
  // Every exit path, exceptions included, leaves the registry and the gauge.
  struct Leave {
    WsSession* s;
    std::string gauge;
    ~Leave() {
      s->deps_.hub.remove(s->adm_.user, s);
      s->deps_.metrics.add(gauge, -1);
    }
  } leave{this, gauge};
  spdlog::info("ws connect conn={} user={} endpoint={} room={}", id_, adm_.user, endpoint(),
               adm_.sidebar ? std::string("-") : format_id(adm_.room));
  co_await (reader_loop() && writer_loop() && keepalive_loop());
  ws_.control_callback();
  spdlog::info("ws disconnect conn={} user={} endpoint={} room={} duration={:.1f}s reason={}", id_, adm_.user,
               endpoint(), adm_.sidebar ? std::string("-") : format_id(adm_.room),
               std::chrono::duration<double>(Clock::now() - started).count(), end_reason_);
}

}  // namespace parley::net
