#include "net/ws_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <thread>

#include "api/events_json.h"
#include "common/error.h"

namespace parley::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;
namespace {

// A storage fault or shutdown (503 `unavailable`), as opposed to a refusal such as "not a member".
bool storage_failed(const std::exception& e) {
  auto* err = dynamic_cast<const Error*>(&e);
  return !err || err->kind() == ErrorKind::Unavailable;
}

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// Runs a blocking call on the storage pool and resumes on the caller's strand. Not a
// coroutine itself: GCC 12 mishandles a by-value coroutine parameter moved into a lambda
// capture (the parameter is destroyed twice), which bites once F owns memory.
template <class F>
auto on_pool(asio::thread_pool& pool, F f) -> awaitable<decltype(f())> {
  return asio::co_spawn(
      pool, [f = std::move(f)]() mutable -> awaitable<decltype(f())> { co_return f(); }, asio::use_awaitable);
}
}  // namespace

boost::asio::awaitable<boost::system::error_code> CorkedStream::flush() {
  corked_ = false;
  if (busy_) co_return asio::error::in_progress;  // one flush at a time (the session's writer)
  for (;;) {
    if (error_) {
      buffer_.clear();
      co_return error_;
    }
    if (buffer_.empty()) co_return error_;
    busy_ = true;
    ++socket_writes_;
    out_.swap(buffer_);
    buffer_.clear();
    auto [ec, n] = co_await asio::async_write(s_, asio::buffer(out_), tuple_awaitable);
    busy_ = false;
    out_.clear();
    if (ec) error_ = ec;
  }
}

bool CorkedStream::write_now() {
  if (busy_ || error_) return false;
  auto& sock = s_.socket();
  boost::system::error_code ec;
  if (!sock.non_blocking()) sock.non_blocking(true, ec);  // (asynchronous operations do not mind)
  while (!ec && !buffer_.empty()) {
    std::size_t n = sock.write_some(asio::buffer(buffer_), ec);
    ++socket_writes_;
    buffer_.erase(0, n);
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again) return false;
  if (ec) {
    error_ = ec;
    return false;
  }
  corked_ = false;
  return true;
}

void WsSweep::add(WsSession& s) {
  std::lock_guard g(mu_);
  if (s.swept_) return;
  s.swept_ = true;
  s.sweep_prev_ = nullptr;
  s.sweep_next_ = head_;
  if (head_) head_->sweep_prev_ = &s;
  head_ = &s;
  ++size_;
}

void WsSweep::remove(WsSession& s) {
  std::lock_guard g(mu_);
  if (!s.swept_) return;
  s.swept_ = false;
  if (s.sweep_prev_) s.sweep_prev_->sweep_next_ = s.sweep_next_;
  else head_ = s.sweep_next_;
  if (s.sweep_next_) s.sweep_next_->sweep_prev_ = s.sweep_prev_;
  s.sweep_prev_ = s.sweep_next_ = nullptr;
  --size_;
}

std::size_t WsSweep::size() const {
  std::lock_guard g(mu_);
  return size_;
}

void WsSweep::sweep() {
  std::vector<std::shared_ptr<WsSession>> live;
  {
    std::lock_guard g(mu_);
    live.reserve(size_);
    // A session whose last owner is gone (its destructor waits for the lock) is skipped.
    for (WsSession* s = head_; s; s = s->sweep_next_)
      if (auto p = s->weak_from_this().lock()) live.push_back(std::move(p));
  }
  for (auto& p : live) {
    auto ex = p->strand_;
    asio::post(ex, [p = std::move(p)] { p->keepalive_check(); });
  }
}

struct WsWriteDelay::State {
  State(asio::io_context& ioc, std::chrono::milliseconds d) : timer(ioc), delay(d) {}
  std::mutex mu;
  asio::steady_timer timer;  // every call on it under mu
  std::chrono::milliseconds delay;
  std::vector<std::shared_ptr<WsSession>> due;  // ≤ the open sessions: each listed once
  bool armed = false, stopped = false;

  void fire() {
    std::vector<std::shared_ptr<WsSession>> now;
    {
      std::lock_guard g(mu);
      armed = false;
      now.swap(due);
    }
    for (auto& s : now) s->release_deferred();
  }
};

WsWriteDelay::WsWriteDelay(asio::io_context& ioc, std::chrono::milliseconds delay)
    : st_(std::make_shared<State>(ioc, delay)) {}

// (Sessions still listed go with the state: stop() has handed them over on every shutdown.)
WsWriteDelay::~WsWriteDelay() = default;

void WsWriteDelay::defer(std::shared_ptr<WsSession> s) {
  {
    std::lock_guard g(st_->mu);
    if (!st_->stopped) {
      st_->due.push_back(std::move(s));
      if (!st_->armed) {
        st_->armed = true;
        st_->timer.expires_after(st_->delay);
        st_->timer.async_wait([w = std::weak_ptr<State>(st_)](const boost::system::error_code& ec) {
          if (ec) return;
          if (auto st = w.lock()) st->fire();
        });
      }
      return;
    }
  }
  s->release_deferred();
}

void WsWriteDelay::stop() {
  {
    std::lock_guard g(st_->mu);
    st_->stopped = true;
    st_->timer.cancel();
  }
  st_->fire();
}

std::chrono::milliseconds WsSession::keepalive_tick(const WsOptions& o) {
  auto t = std::min(o.ping_interval, std::chrono::duration_cast<std::chrono::milliseconds>(o.idle_timeout / 5));
  return std::max(t, std::chrono::milliseconds(1));
}

WsSession::WsSession(beast::tcp_stream& stream, std::shared_ptr<void> keep, WsDeps& deps, WsSweep& sweep,
                     WsWriteDelay* delay, api::Admission adm, std::string id, std::function<void()> on_end)
    : keep_(std::move(keep)),
      on_end_(std::move(on_end)),
      strand_(stream.get_executor()),
      stream_(stream),
      cork_(stream),
      deps_(deps),
      adm_{adm.user, adm.room, adm.after_seq, adm.token_version, adm.sidebar},
      who_{adm_.user, adm_.sidebar ? 0 : adm_.room, std::move(id)},
      sweep_(sweep),
      delay_(delay),
      frames_(deps.opts.max_frame_bytes),
      inbound_(deps.opts.inbound_per_sec, deps.opts.inbound_burst) {}

// (Out of the sweep already once finished: finish() removes it on every path after the upgrade.)
WsSession::~WsSession() {
  if (swept_) sweep_.remove(*this);
}

OutboundQueue& WsSession::queue() {
  if (!queue_)
    queue_ = std::make_unique<OutboundQueue>(
        OutboundQueue::Limits{deps_.opts.queue_max_events, deps_.opts.queue_max_bytes, deps_.opts.queue_hard_factor});
  return *queue_;
}

// Arms a timer made on first use (kill_, stall_, …): f(ec) when it fires or is cancelled.
template <class F>
void WsSession::arm(std::unique_ptr<asio::steady_timer>& t, std::chrono::steady_clock::duration d, F f) {
  if (!t) t = std::make_unique<asio::steady_timer>(strand_);
  t->expires_after(d);
  t->async_wait(std::move(f));
}

namespace {
struct SpinGuard {
  std::atomic_flag& f;
  explicit SpinGuard(std::atomic_flag& flag) : f(flag) {
    while (f.test_and_set(std::memory_order_acquire)) std::this_thread::yield();
  }
  ~SpinGuard() { f.clear(std::memory_order_release); }
};

void cancel(const std::unique_ptr<asio::steady_timer>& t) {
  if (t) t->cancel();
}
}  // namespace

void WsSession::deliver(const api::OutEventPtr& ev) {
  bool defer = false, full = false;
  {
    SpinGuard g(inbox_lock_);
    inbox_.push_back(ev);
    if (inbox_posted_) return;  // the posted drain takes it along
    Clock::time_point now{};
    if (delay_) {
      // At most one hand-over per write delay: within it the events wait for the window's
      // end, unless a write's worth is waiting already. A socket that gets less than one
      // event per delay never waits.
      now = Clock::now();
      if (deferred_) {
        if (inbox_.size() < deps_.opts.write_batch) return;
        full = true;
      } else if (now - last_handover_ < deps_.opts.write_delay) {
        defer = deferred_ = true;
      }
    }
    if (!defer) {
      inbox_posted_ = true;
      last_handover_ = now;
    }
  }
  if (defer) return delay_->defer(shared_from_this());
  if (full) deps_.metrics.add("parley_ws_write_delay_full_total", 1);
  post_drain();
}

void WsSession::post_drain() {
  asio::post(strand_, [self = shared_from_this()] { self->drain_inbox(); });
}

void WsSession::release_deferred() {
  {
    SpinGuard g(inbox_lock_);
    deferred_ = false;
    if (inbox_posted_ || inbox_.empty()) return;  // handed over early, or drained by a kick
    inbox_posted_ = true;
    last_handover_ = Clock::now();
  }
  post_drain();
}

void WsSession::drain_inbox() {
  std::vector<api::OutEventPtr> got;
  {
    SpinGuard g(inbox_lock_);
    got.swap(inbox_);
    inbox_posted_ = false;
  }
  draining_ = true;
  for (const auto& ev : got) push(ev);
  draining_ = false;
  if (wake_due_) {
    wake_due_ = false;
    if (!write_inline()) wake();
  }
}

// The frames that are ready go out from here, in one non-blocking write, when the writer is
// idle (no writer coroutine: nothing in flight and nothing else to do) and the socket takes
// them at once: no wake-up of the writer, no asynchronous write to complete. True when all of
// it is done; false leaves the rest (queued events, or bytes the socket did not take, kept
// corked) to the writer, which the caller wakes.
bool WsSession::write_inline() {
  auto& cork = cork_;
  if (writer_ != Writer::Idle || catching_up_ || closed_ || close_ || ping_due_ || queued() == 0 || cork.corked() ||
      cork.busy() || !may_send())
    return false;
  thread_local std::vector<api::OutEventPtr> batch;  // one per IO thread, emptied before returning
  batch.clear();
  queue_->take(batch, deps_.opts.write_batch);
  queue_changed();
  cork.cork();
  for (const auto& ev : batch) cork.append_text_frame(ev->payload);
  deps_.metrics.ws_write(batch.size());  // written here, or the rest by the writer
  batch.clear();
  if (!cork.write_now()) return false;
  set_behind(queued() * 4 >= deps_.opts.queue_max_events);
  return queued() == 0;
}

void WsSession::deliver_snapshot(std::vector<api::OutEventPtr> badges) {
  asio::post(strand_, [self = shared_from_this(), b = std::move(badges)]() mutable {
    self->snapshot_ = std::move(b);
    cancel(self->snapshot_wait_);
  });
}

void WsSession::kick(std::uint16_t code, std::string reason) {
  asio::post(strand_, [self = shared_from_this(), code, r = std::move(reason)]() mutable {
    self->drain_inbox();  // events handed over before the kick go first (also those the write delay holds)
    self->request_close(code, std::move(r), code == 1001);
  });
}

// The writer runs only while there is something to write: an idle connection holds no
// coroutine for it. wake() starts it again (on the strand) unless it runs already or the
// connection is over.
bool WsSession::revoked() const {
  api::Admission a;
  a.user = adm_.user;
  a.token_version = adm_.token_version;
  return deps_.service.revoked(a);
}

void WsSession::wake() {
  if (draining_) {  // drain_inbox() first tries write_inline(), then wakes
    wake_due_ = true;
    return;
  }
  if (writer_ != Writer::Idle || closed_) return;
  writer_ = Writer::Running;
  start_writer(writer_loop());
}

void WsSession::start_writer(awaitable<void> w) {
  asio::co_spawn(strand_, std::move(w), [self = shared_from_this()](std::exception_ptr e) {
    if (!e) return self->maybe_finish();
    self->writer_ = Writer::Done;  // the running writer threw (none other can have started)
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("ws writer ended by an unexpected error conn={}: {}", self->who_.connection_id, ex.what());
    } catch (...) {
      spdlog::error("ws writer ended by an unexpected error conn={}", self->who_.connection_id);
    }
    if (!self->closed_) self->hard_close("writer failed");
    self->maybe_finish();
  });
}

void WsSession::queue_changed() { deps_.metrics.ws_queue_depth(queued()); }

// This connection's part in the server-wide "behind" count (api::LoadGauge): set when a write
// has just completed (the client drains) and a quarter of the queue's bound still waits;
// cleared when a write completes below it, when a write stays pending for write_blocked (the
// client is the slow one then) and on every close path.
void WsSession::set_behind(bool behind) {
  if (closed_ || close_) behind = false;
  if (behind == behind_) return;
  behind_ = behind;
  deps_.service.load().behind(behind ? 1 : -1);
}

void WsSession::slow_consumer() {
  deps_.metrics.add("parley_ws_slow_consumer_closes_total", 1);
  request_close(1008, "slow consumer", false);
}

void WsSession::hard_close(const std::string& why) {
  if (end_reason_ == "closed") end_reason_ = why;
  beast::error_code ec;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  stream_.socket().close(ec);
  ended();
}

// The connection is over: nothing more is written, every loop and timer winds down.
void WsSession::ended() {
  closed_ = true;
  queue_changed();
  set_behind(false);
  wake();
  cancel(snapshot_wait_);
  cancel(stall_);
  cancel(blocked_);
  sweep_.remove(*this);
}

void WsSession::request_close(std::uint16_t code, std::string reason, bool flush) {
  if (closed_ || close_) return;
  end_reason_ = reason;
  if (!flush) {
    deps_.metrics.add("parley_ws_events_dropped_total", static_cast<double>(queued() + pending_.size()));
    queue_.reset();
    pending_.clear();
  }
  close_ = std::make_pair(code, std::move(reason));
  queue_changed();
  set_behind(false);
  // A peer that never reads would keep the close frame from leaving: cut it off in time.
  cut_within(deps_.opts.close_timeout);
  cancel(snapshot_wait_);
  wake();
}

void WsSession::push(const api::OutEventPtr& ev, bool closing_flush) {
  if (closed_ || peer_closed_ || (close_ && !closing_flush)) return;
  if (catching_up_) {
    // Typing and the like wait only within the soft bounds: they never make a slow consumer.
    if (ev->cls == api::EventClass::Ephemeral &&
        (pending_.size() >= deps_.opts.queue_max_events || pending_bytes_ >= deps_.opts.queue_max_bytes))
      return;
    pending_.push_back(ev);
    pending_bytes_ += ev->payload.size();
    auto hard = deps_.opts.queue_hard_factor;
    if (pending_.size() > deps_.opts.queue_max_events * hard || pending_bytes_ > deps_.opts.queue_max_bytes * hard)
      slow_consumer();
    return;
  }
  if (ev->position > 0) filter_.messages_sent_up_to(ev->room, ev->position);
  if (ev->seq > 0 && !filter_.admit_message(ev->room, ev->seq)) return;
  if (ev->cls == api::EventClass::Badge && !filter_.admit_badge(ev->room, ev->last_seq, ev->read_seq)) return;
  auto r = queue().push(ev);
  queue_changed();
  if (r == OutboundQueue::Push::HardOverflow) return slow_consumer();
  if (r == OutboundQueue::Push::Overflow && writing_since_) {
    // Over its bounds: a slow consumer if its own write stays blocked (checked now and again
    // when the write has been pending for write_stall), else the server is behind.
    auto blocked_for = Clock::now() - *writing_since_;
    if (blocked_for >= deps_.opts.write_stall) return slow_consumer();
    arm(stall_, deps_.opts.write_stall - blocked_for, [self = shared_from_this()](const beast::error_code& ec) {
      if (ec || self->closed_ || self->close_) return;
      if (self->queue_ && self->queue_->over_bounds() && self->writing_since_ &&
          Clock::now() - *self->writing_since_ >= self->deps_.opts.write_stall)
        self->slow_consumer();
    });
  }
  wake();
}

void WsSession::push_reply(std::string frame) {
  auto ev = std::make_shared<api::OutEvent>();
  ev->payload = std::move(frame);
  push(ev);
}

// A write to the socket begins: the slow-consumer and "behind" checks time it from now.
void WsSession::write_started() {
  writing_since_ = Clock::now();
  if (behind_) {  // a write that blocks means the client, not the server, is slow
    arm(blocked_, deps_.opts.write_blocked, [self = shared_from_this()](const beast::error_code& ec) {
      if (!ec && self->writing_since_) self->set_behind(false);
    });
  }
}

awaitable<bool> WsSession::write_now(const std::string& frame) {
  if (!may_send()) {
    if (end_reason_ == "closed") end_reason_ = "write: closed";
    co_return false;
  }
  write_started();
  cork_.cork();
  cork_.append_text_frame(frame);
  boost::system::error_code ec;
  if (!cork_.write_now()) ec = co_await cork_.flush();  // (the socket had no room for all of it)
  writing_since_.reset();
  if (ec) {
    if (end_reason_ == "closed") end_reason_ = "write: " + ec.message();
    co_return false;
  }
  deps_.metrics.ws_write(1);
  co_return true;
}

// Writes room's messages with cursor < seq < until (until 0: to the end) page by page as
// the socket drains, moving cursor along. False: the connection is done (closed, revoked or
// the write failed); ok says whether it ended well. A sidebar gets the user's own messages
// with "echo":true, as it does live.
awaitable<bool> WsSession::page_out(Id room, chat::Seq& cursor, chat::Seq until, bool& ok) {
  auto& svc = deps_.service;
  Id user = adm_.user;
  int page_size = deps_.opts.replay_page;
  ok = true;
  for (;;) {
    std::vector<chat::Message> page;
    try {
      chat::Seq from = cursor;
      page = co_await on_pool(deps_.pool,
                              [&svc, user, room, from, page_size] { return svc.replay(user, room, from, page_size); });
    } catch (const std::exception& e) {
      // Not a member any more: 1008 (a sidebar just skips the room); storage failed: 1011, the
      // client reconnects and resumes.
      if (storage_failed(e)) {
        request_close(1011, "try again", false);
      } else if (adm_.sidebar) {
        co_return true;
      } else {
        request_close(1008, "not a member", false);
      }
      co_return false;
    }
    for (const auto& m : page) {
      if (close_ || !may_send()) co_return false;  // revoked, cut or closed meanwhile: stop replaying
      if (until > 0 && m.seq >= until) co_return true;
      // (A named frame: GCC 12 destroys a conditional's temporary twice inside co_await.)
      std::string frame;
      if (adm_.sidebar && m.sender_id == user)
        frame = api::new_message_event(m, true)->payload;
      else
        frame = api::new_message_frame(m);
      if (!co_await write_now(frame)) {
        ok = false;
        co_return false;
      }
      cursor = m.seq;
    }
    if (static_cast<int>(page.size()) < page_size || (until > 0 && cursor + 1 >= until)) co_return true;
  }
}

// The frames that are ready together leave in one write: each of them is framed into the
// corked layer, which then sends them all at once, after whatever it holds already (control
// frames, what write_inline() left). An empty batch just sends what is held.
awaitable<bool> WsSession::write_batch(const std::vector<api::OutEventPtr>& batch) {
  auto& cork = cork_;
  if (!batch.empty() && !may_send()) {  // a close went out or came in: no data after it
    if (end_reason_ == "closed") end_reason_ = "write: closed";
    co_return false;
  }
  cork.cork();
  for (const auto& ev : batch) cork.append_text_frame(ev->payload);
  write_started();
  auto ec = co_await cork.flush();
  writing_since_.reset();
  if (ec) {
    if (end_reason_ == "closed") end_reason_ = "write: " + ec.message();
    co_return false;
  }
  deps_.metrics.ws_write(batch.size());
  co_return true;
}

// Chatroom resume: every message after the cursor, page by page as the socket drains (none
// of it counts toward the queue bounds); more than replay_max missing: resync_required.
awaitable<bool> WsSession::replay() {
  auto& svc = deps_.service;
  Id user = adm_.user, room = adm_.room;
  chat::Seq last = 0;
  try {
    last = co_await on_pool(deps_.pool, [&svc, user, room] { return svc.require_membership(user, room); });
  } catch (const std::exception& e) {
    if (storage_failed(e)) {
      request_close(1011, "try again", false);
    } else {
      request_close(1008, "not a member", false);
    }
    co_return true;
  }
  if (!co_await send_connected()) co_return false;
  chat::Seq cursor = last;
  bool ok = true;
  if (adm_.after_seq && last - std::min(*adm_.after_seq, last) > static_cast<chat::Seq>(deps_.opts.replay_max)) {
    if (!co_await write_now(api::resync_frame(room, last))) co_return false;
  } else if (adm_.after_seq) {
    cursor = std::min(*adm_.after_seq, last);
    if (!co_await page_out(room, cursor, 0, ok)) co_return ok;
  }
  // Everything up to cursor is sent (or not wanted); from here the room's order in the hub
  // takes over, at the seq it releases next. Messages between the two went out to the live
  // sockets before this one's read, or were dropped there as late: read them here.
  chat::Seq next = deps_.hub.anchor(room, cursor);
  if (next > cursor + 1 && !co_await page_out(room, cursor, next, ok)) co_return ok;
  filter_.messages_sent_up_to(room, cursor);
  co_return true;
}

awaitable<bool> WsSession::catch_up() {
  if (!adm_.sidebar) co_return co_await replay();
  // Badges right after any outage: one update per room, from the hub's tracker of the user.
  if (!snapshot_ && !close_ && !closed_) {  // (a close requested before the wait began: no wait)
    if (!snapshot_wait_) snapshot_wait_ = std::make_unique<asio::steady_timer>(strand_);
    snapshot_wait_->expires_after(deps_.opts.snapshot_timeout);
    co_await snapshot_wait_->async_wait(tuple_awaitable);
  }
  if (close_ || closed_) co_return true;
  snapshot_wait_.reset();
  if (!snapshot_) {
    request_close(1011, "try again", false);
    co_return true;
  }
  if (!co_await send_connected()) co_return false;
  auto badges = std::move(*snapshot_);
  std::vector<std::pair<Id, chat::Seq>> position;  // (room, last_seq): what the snapshot counts
  position.reserve(badges.size());
  for (const auto& b : badges) {
    position.emplace_back(b->room, b->last_seq);
    if (!filter_.admit_badge(b->room, b->last_seq, b->read_seq)) continue;
    if (!co_await write_now(b->payload)) co_return false;
  }
  // The snapshot is the socket's position, as after_seq is a chatroom socket's: every message
  // after a room's last_seq comes as new_message, once and in seq order; the ones it counts do
  // not (a live frame of one, held while this ran, is dropped). Messages the instance released
  // before the snapshot's position caught up with them (their events were processed, or
  // dropped as late, between this socket's registration and now) are read from storage here.
  auto next = deps_.hub.anchor(position);
  for (std::size_t i = 0; i < position.size(); ++i) {
    auto [room, cursor] = position[i];
    bool ok = true;
    if (next[i] > cursor + 1 && !co_await page_out(room, cursor, next[i], ok)) co_return ok;
    filter_.messages_sent_up_to(room, cursor);
  }
  co_return true;
}

// `connected` goes out once the socket's position is read (a sidebar's snapshot, a chatroom
// socket's last seq), so that every message sent after the client saw it is delivered.
awaitable<bool> WsSession::send_connected() {
  if (connected_sent_) co_return true;
  connected_sent_ = true;
  co_return co_await write_now(
      api::connected_frame(adm_.user, who_.connection_id, adm_.sidebar ? std::nullopt : std::optional<Id>(adm_.room)));
}

awaitable<void> WsSession::catch_up_then_write() {
  auto self = shared_from_this();
  bool ok = true;
  try {
    ok = co_await catch_up();
  } catch (const std::exception& e) {  // storage failed or is shutting down
    // A storage fault is reported (rate-limited) by the store itself, not once per socket.
    if (storage_failed(e))
      spdlog::debug("ws catch-up failed conn={} user={}: {}", who_.connection_id, adm_.user, e.what());
    else
      spdlog::warn("ws catch-up failed conn={} user={}: {}", who_.connection_id, adm_.user, e.what());
    request_close(1011, "try again", false);
  }
  // A catch-up that ended in a close still says `connected` first (then the close).
  if (ok && !connected_sent_) ok = co_await send_connected();
  catching_up_ = false;
  auto held = std::move(pending_);
  pending_.clear();
  pending_bytes_ = 0;
  for (const auto& ev : held) push(ev, true);  // a 1001 close flushes what was held too
  // (A catch-up cut short by the client's close goes on to the writer, which sends the answer
  // still buffered and tears down.)
  if (!ok && !peer_closed_) {
    if (!closed_) hard_close(end_reason_);
    writer_ = Writer::Done;
    co_return;
  }
  co_await writer_loop();
}

// Writes what is due (a ping, the queue, the close) and ends when nothing is: wake() starts it
// again. Once it has written the close or failed, it is done for the connection.
awaitable<void> WsSession::writer_loop() {
  auto self = shared_from_this();
  bool ok = true, close_sent = false;
  std::vector<api::OutEventPtr> batch;
  while (ok && !closed_) {
    if (teardown_due_ && !cork_.pending()) {  // the answer to the client's close has left
      teardown();
      close_sent = true;
      break;
    }
    if (ping_due_) {
      ping_due_ = false;
      if (may_send()) {
        cork_.cork();
        cork_.append_frame(WsOpcode::Ping, {});
      }
      continue;
    }
    if (cork_.pending() || (may_send() && queued() > 0)) {  // (pending: control frames, what write_inline() left)
      batch.clear();
      if (queue_ && may_send()) queue_->take(batch, deps_.opts.write_batch);
      queue_changed();
      ok = co_await write_batch(batch);
      batch.clear();
      queue_changed();
      set_behind(ok && queued() * 4 >= deps_.opts.queue_max_events);
      continue;
    }
    if (close_ && !close_sent_) {
      close_sent_ = true;
      cork_.cork();
      cork_.append_frame(WsOpcode::Close, ws_close_payload(close_->first, close_->second));
      write_started();
      auto ec = co_await cork_.flush();
      writing_since_.reset();
      close_sent = !ec;
      // A violation's close, or the answer to the client's: the connection ends here. Otherwise
      // the reader waits for the client's close, for the handshake timeout at most.
      if (close_sent && (fail_close_ || peer_closed_))
        teardown();
      else if (close_sent)
        cut_within(deps_.opts.handshake_timeout);
      break;
    }
    writer_ = Writer::Idle;
    co_return;
  }
  writer_ = Writer::Done;
  // Unless a close handshake is under way (the reader ends when the peer answers it, or the
  // kill timer cuts it), nothing more will be written: end the connection.
  if (!closed_ && !close_sent) hard_close(end_reason_);
}

// The reader is a chain of reads, not a coroutine: an idle connection waits in one read into a
// 64-byte buffer in the session. Asio's reads are speculative (they try the socket first), so
// no readiness is ever missed with its edge-triggered epoll — a readiness wait would be: its
// signal can be taken by another IO thread before the wait is queued. A read that fills the
// small buffer goes on into one 16 KiB buffer per IO thread until the socket would block.
// Everything read is parsed at once (net/ws_frames.h); only a partly read message is kept in
// the session (WsFrameReader), and the unparsed rest of a read while a blocking frame is
// answered (in_).
void WsSession::read_next() {
  stream_.socket().async_read_some(asio::buffer(head_), [self = shared_from_this()](
                                                            const boost::system::error_code& ec, std::size_t n) {
    self->on_read(ec, n);
  });
}

void WsSession::on_read(const boost::system::error_code& ec, std::size_t n) {
  if (ec) {
    if (end_reason_ == "closed") end_reason_ = "read: " + ec.message();
    return reader_ended();
  }
  if (!handle_input(std::string_view(head_.data(), n))) return;
  if (n < head_.size()) return read_next();  // (most likely all there was: the next read tries first)
  read_available();
}

void WsSession::read_available() {
  thread_local std::array<char, 16 * 1024> buf;  // one per IO thread; parsed before the next read
  auto& sock = stream_.socket();
  boost::system::error_code ec;
  if (!sock.non_blocking()) sock.non_blocking(true, ec);
  // Bounded work per turn: a client that sends without pause does not hold the strand (its
  // timers, its writer) or the IO thread; the rest is read after what else is due.
  for (int reads = 0; reads < 16; ++reads) {
    std::size_t n = sock.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return read_next();
    if (ec) {
      if (end_reason_ == "closed") end_reason_ = "read: " + ec.message();
      return reader_ended();
    }
    if (!handle_input(std::string_view(buf.data(), n))) return;
  }
  asio::post(strand_, [self = shared_from_this()] { self->read_available(); });
}

// Parses and handles what was read. After a violation or once our side is shut down, the
// rest is dropped (the connection waits for the client's end).
bool WsSession::handle_input(std::string_view data) {
  while (!data.empty()) {
    if (closed_ || peer_closed_ || frames_.failed()) return true;  // (closed_: also once torn down)
    WsEvent ev;
    data.remove_prefix(frames_.next(data, ev));
    if (ev.kind == WsEvent::Kind::None) break;
    last_rx_ = Clock::now();
    switch (ev.kind) {
      case WsEvent::Kind::Ping:
        send_control(WsOpcode::Pong, ev.payload);
        break;
      case WsEvent::Kind::Pong:
      case WsEvent::Kind::None:
        break;
      case WsEvent::Kind::Close:
        on_peer_close(ev.code);
        return true;
      case WsEvent::Kind::Error:
        deps_.metrics.add("parley_ws_protocol_errors_total", 1);
        if (end_reason_ == "closed") end_reason_ = "protocol: " + std::string(ev.payload);
        spdlog::info("ws protocol error conn={} user={}: {} (close {})", who_.connection_id, adm_.user, ev.payload,
                     ev.code);
        fail_close_ = true;
        if (close_sent_)  // our close is out already: no other close frame, just the end
          teardown();
        else
          request_close(ev.code, std::string(ev.payload), false);
        break;
      case WsEvent::Kind::Text:
      case WsEvent::Kind::Binary:
        if (on_message(ev)) {
          in_.assign(data);
          return false;
        }
        break;
    }
  }
  return true;
}

bool WsSession::on_message(const WsEvent& ev) {
  if (close_ || closed_) return false;  // closing or cut: answer nothing more
  // Inbound rate: a token bucket per connection, over every data frame (sends included).
  bool limited = !inbound_.take(last_rx_);
  if (ev.kind != WsEvent::Kind::Text) {
    push_reply(limited ? api::error_frame("rate_limited", "too many frames")
                       : api::error_frame("binary_not_supported", "frames must be JSON text"));
    return false;
  }
  auto in = deps_.service.dispatch(who_, ev.payload, limited);
  if (!in.reply.empty()) push_reply(std::move(in.reply));
  if (!in.blocking) return false;
  // One at a time, in the order the frames came: a client's sends keep their order (the next
  // frame is parsed once the answer is queued).
  asio::co_spawn(
      deps_.pool, [f = std::move(in.blocking)]() mutable -> awaitable<std::string> { co_return f(); },
      asio::bind_executor(strand_, [self = shared_from_this()](std::exception_ptr e, std::string answer) {
        if (e) answer = api::error_frame("unavailable", "try again");
        if (!answer.empty()) self->push_reply(std::move(answer));
        self->resume_reading();
      }));
  return true;
}

void WsSession::resume_reading() {
  std::string rest;
  rest.swap(in_);
  if (!handle_input(rest)) return;
  read_available();
}

// A ping's pong: out now if nothing is in flight and the socket takes it, else with the next
// write (the writer's, woken when idle).
void WsSession::send_control(WsOpcode op, std::string_view payload) {
  if (!may_send()) return;
  // A client that pings and does not read: while a write waits, at most kControlBacklog bytes
  // of pongs wait behind it; the pongs of later pings are not sent (RFC 6455 §5.5.3 lets a
  // server answer only some of them).
  constexpr std::size_t kControlBacklog = 4096;
  if (cork_.busy() && cork_.buffered() >= kControlBacklog) return;
  cork_.append_frame(op, payload);
  if (cork_.busy()) return;  // the flush in flight takes it along
  if (!cork_.write_now() && writer_ == Writer::Idle) wake();
}

// The client's close: answered with its code (none if it gave none), then the connection
// ends once the answer has left.
void WsSession::on_peer_close(std::uint16_t code) {
  if (end_reason_ == "closed") end_reason_ = "client close " + std::to_string(code);
  bool answer = !close_sent_ && !closed_;
  peer_closed_ = true;
  if (answer) {
    close_sent_ = true;
    cork_.append_frame(WsOpcode::Close, code ? ws_close_payload(code, "") : std::string());
  }
  teardown_when_sent();
}

void WsSession::teardown_when_sent() {
  if (closed_) return;
  if (!cork_.busy() && cork_.pending()) cork_.write_now();
  if (cork_.busy() || cork_.pending()) {  // the writer's flush ends with teardown()
    teardown_due_ = true;
    cut_within(deps_.opts.close_timeout);
    if (writer_ == Writer::Idle) wake();
    return;
  }
  teardown();
}

// Our side is done: FIN after the last byte, then the reader drops what still comes until the
// client's end (or kill_ cuts it), as RFC 6455 §7.1.1 has a server close the TCP connection.
void WsSession::teardown() {
  if (closed_) return;  // (ended() below: closed_ also marks a teardown done)
  boost::system::error_code ec;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  cut_within(deps_.opts.handshake_timeout);
  ended();
}

// The connection is cut (hard_close) d from now at the latest: kill_ keeps an earlier deadline.
void WsSession::cut_within(Clock::duration d) {
  if (kill_ && kill_->expiry() > Clock::now() && kill_->expiry() - Clock::now() <= d) return;
  arm(kill_, d, [self = shared_from_this()](const beast::error_code& ec) {
    if (!ec) self->hard_close("close timeout");
  });
}

void WsSession::reader_ended() {
  ended();
  cancel(kill_);
  beast::error_code ignored;
  stream_.socket().close(ignored);
  std::string().swap(in_);
  reader_done_ = true;
  maybe_finish();
}

// The connection is over once the reader has ended and no writer runs (none starts after the
// reader's end: the connection is closed by then).
void WsSession::maybe_finish() {
  if (reader_done_ && writer_ != Writer::Running) finish();
}

// Every exit path after the upgrade leaves the registry, the sweep and the gauges, then tells
// the HTTP server (on_end).
void WsSession::finish() {
  if (finished_) return;
  finished_ = true;
  if (registered_) {
    spdlog::info("ws disconnect conn={} user={} endpoint={} room={} duration={:.1f}s reason={}", who_.connection_id,
                 adm_.user, endpoint(), adm_.sidebar ? std::string("-") : format_id(adm_.room),
                 std::chrono::duration<double>(Clock::now() - started_).count(), end_reason_);
    deps_.hub.remove(adm_.user, who_.room, this);
    sweep_.remove(*this);
    deps_.metrics.add(gauge(), -1);
    closed_ = true;
    set_behind(false);
    deps_.service.load().connections(-1);
  }
  snapshot_wait_.reset();
  auto end = std::move(on_end_);
  on_end_ = nullptr;
  if (end) end();
}

// WsSweep's tick: the idle and write timeouts, the ping, and what an idle connection can give
// back. Pings go out on the sweep's cadence: every ping_interval once the first is sent (the
// first between ping_interval - tick/2 and ping_interval + tick/2 after the connect).
void WsSession::keepalive_check() {
  if (closed_) return;
  const auto& o = deps_.opts;
  auto now = Clock::now();
  if (now - last_rx_ > o.idle_timeout) return hard_close("idle timeout");
  if (writing_since_ && now - *writing_since_ > o.write_timeout) {  // the client does not drain
    deps_.metrics.add("parley_ws_slow_consumer_closes_total", 1);
    return hard_close("write timeout");
  }
  if (!close_ && now - last_ping_ >= o.ping_interval - keepalive_tick(o) / 2) {
    last_ping_ = now;
    ping_due_ = true;
    wake();
  }
  if (queue_ && queue_->empty()) queue_.reset();  // the queue's blocks go back while idle
  if (writer_ != Writer::Running) cork_.release();  // and the batch buffers
  if (in_.empty()) frames_.release();                 // and the last message's
}

awaitable<void> WsSession::run(std::unique_ptr<Request> req) {
  auto self = shared_from_this();
  started_ = Clock::now();
  try {
    // The upgrade's answer, written here (no Beast stream per connection); http_server.cpp
    // checked the request (GET, Upgrade/Connection, version 13, a 16-byte key) before.
    stream_.expires_never();
    cork_.cork();
    cork_.append_raw(ws_accept_response((*req)[beast::http::field::sec_websocket_key]));
    req.reset();  // answered: its headers and target are not needed any more
    boost::system::error_code ec;
    if (!cork_.write_now()) {
      stream_.expires_after(deps_.opts.handshake_timeout);
      ec = co_await cork_.flush();
      stream_.expires_never();
    }
    if (ec) {
      deps_.metrics.add("parley_ws_handshake_failures_total{reason=\"handshake\"}", 1);
      spdlog::info("ws handshake failed conn={} user={}: {}", who_.connection_id, adm_.user, ec.message());
      finish();
      co_return;
    }
    deps_.metrics.add(gauge(), 1);
    deps_.service.load().connections(1);
    registered_ = true;
    last_rx_ = last_ping_ = Clock::now();
    sweep_.add(*this);
    // Refused once the server is closing all sockets: this one came in too late for that.
    if (!deps_.hub.add(adm_.user, who_.room, self))
      request_close(1001, "server shutting down", true);
    else if (revoked())  // revoked after admission, before the hub knew this socket
      request_close(1008, "token revoked", false);
    spdlog::info("ws connect conn={} user={} endpoint={} room={}", who_.connection_id, adm_.user, endpoint(),
                 adm_.sidebar ? std::string("-") : format_id(adm_.room));
    // The writer runs beside the reader; the connection is over when both have ended.
    writer_ = Writer::Running;
    start_writer(catch_up_then_write());
    read_next();
  } catch (const std::exception& e) {
    spdlog::error("ws session failed conn={}: {}", who_.connection_id, e.what());
    hard_close("failed");
    reader_done_ = true;
    maybe_finish();
  }
}

}  // namespace parley::net
