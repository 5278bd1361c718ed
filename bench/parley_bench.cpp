// parley-bench: a native load generator for the Parley server.
//
// Scenarios:
//   idle    N authenticated WebSocket sockets held open; server RSS per socket, handshakes/s.
//   fanout  one group room, M member sockets, K senders (REST or WebSocket send_message);
//           deliveries/s, latency percentiles, loss/duplicate/disorder checks, CPU seconds.
//   chat    R rooms × S members on chatroom sockets, every member sending over WebSocket at a
//           set rate; persisted messages/s, deliveries/s, send → deliver p50/p99, loss checks.
//   rest    REST sends (group commit), then history and unread-count reads; requests/s, p99.
//   reconnect-storm  N chatroom sockets drop at once, messages arrive meanwhile, all come back
//           with after_seq; time until every gap is filled, 5xx/refusals, gaps/duplicates.
//   (chat, rest and reconnect-storm live in scenarios.inc.)
//
// Design: one io_context per client thread (one by default); every socket is a coroutine
// that reads frames and parses only what it needs; the only per-socket state is a bitmap of
// the seqs it has seen. Nothing is queued without bound. It targets loopback only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "latency_histogram.h"
#include "peer_process.h"
#include "server_process.h"

namespace parley::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(use_awaitable);

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}
double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
  std::string scenario;
  // server
  std::string server_bin, url;
  std::vector<std::string> server_args;
  int server_pid = 0, server_cpu = -1, client_cpu = -1;
  // client
  int threads = 1, setup_concurrency = 8, connect_concurrency = 200, conns_per_addr = 10000;
  double timeout = 300, drain_timeout = 30;
  double settle = 0;  // fanout: seconds between the last socket open and the first send
  std::string endpoint = "sidebar";
  int users = 0;  // 0: scenario default
  // idle
  int conns = 1000;
  double hold = 1.0;
  // fanout
  int members = 100, senders = 1, ws_window = 64;
  long messages = 0;  // 0: unset
  double duration = 0, rate = 100;
  std::string send_via = "rest";
  // chat, rest, reconnect-storm (scenarios.inc)
  int rooms = 0, room_size = 8, connections = 64, reconnect_concurrency = 0;
  double member_rate = 1.25, read_duration = 3;
  long before_messages = 2, outage_messages = 20;
  // target: parley, or a peer from bench/peers/ (ws-peer, socketio-peer) for idle and fanout
  std::string target = "parley", peer_cmd, peers_dir;
};

// ---------------------------------------------------------------------------------------------
// Shared pieces

// Counts down from n; wait() returns once it reaches zero. count_down() may run on any thread.
class Latch {
 public:
  Latch(asio::any_io_executor ex, std::size_t n) : s_(std::make_shared<State>(ex, n)) {}
  void count_down() {
    if (s_->left.fetch_sub(1) == 1) asio::post(s_->timer.get_executor(), [s = s_] { s->timer.cancel(); });
  }
  awaitable<void> wait() {
    while (s_->left.load() > 0) co_await s_->timer.async_wait(kTuple);
  }

 private:
  struct State {
    State(asio::any_io_executor ex, std::size_t n) : timer(ex, Clock::time_point::max()), left(n) {}
    asio::steady_timer timer;
    std::atomic<std::size_t> left;
  };
  std::shared_ptr<State> s_;
};

awaitable<void> sleep_for(std::chrono::nanoseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(kTuple);
}

struct HttpResult {
  int status = 0;
  std::string body;
};

// One keep-alive HTTP/1.1 connection; reconnects (once per request) when the server closed it.
class HttpClient {
 public:
  HttpClient(asio::any_io_executor ex, tcp::endpoint ep, std::string host)
      : stream_(ex), ep_(ep), host_(std::move(host)) {}

  awaitable<HttpResult> request(http::verb verb, std::string target, std::string body, const std::string& token) {
    for (int attempt = 0;; ++attempt) {
      boost::system::error_code ec;
      if (!open_) {
        stream_.expires_after(std::chrono::seconds(10));
        std::tie(ec) = co_await stream_.async_connect(ep_, kTuple);
        if (!ec) {
          open_ = true;
          stream_.socket().set_option(tcp::no_delay(true));
        }
      }
      if (!ec) {
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, host_);
        if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
        if (verb == http::verb::post || verb == http::verb::put) {
          req.set(http::field::content_type, "application/json");
          req.body() = body;
        }
        req.prepare_payload();
        stream_.expires_after(std::chrono::seconds(30));
        std::tie(ec, std::ignore) = co_await http::async_write(stream_, req, kTuple);
        if (!ec) {
          http::response<http::string_body> res;
          std::tie(ec, std::ignore) = co_await http::async_read(stream_, buf_, res, kTuple);
          if (!ec) {
            if (!res.keep_alive()) close();
            co_return HttpResult{static_cast<int>(res.result_int()), std::move(res.body())};
          }
        }
      }
      close();
      if (attempt >= 1)
        throw std::runtime_error(std::string(http::to_string(verb)) + " " + target + ": " + ec.message());
    }
  }

 private:
  void close() {
    boost::system::error_code ignored;
    stream_.socket().close(ignored);
    buf_.clear();
    open_ = false;
  }
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  tcp::endpoint ep_;
  std::string host_;
  bool open_ = false;
};

json::value parse_json(const std::string& s) {
  json::error_code ec;
  auto v = json::parse(s, ec);
  if (ec) return nullptr;
  return v;
}

std::string str_field(const json::value& v, std::initializer_list<const char*> path) {
  const json::value* p = &v;
  for (const char* k : path) {
    if (!p->is_object()) return {};
    p = p->as_object().if_contains(k);
    if (!p) return {};
  }
  return p->is_string() ? std::string(p->as_string()) : std::string();
}

std::int64_t int_field(const json::value& v, std::initializer_list<const char*> path) {
  const json::value* p = &v;
  for (const char* k : path) {
    if (!p->is_object()) return -1;
    p = p->as_object().if_contains(k);
    if (!p) return -1;
  }
  return p->is_int64() ? p->as_int64() : (p->is_uint64() ? static_cast<std::int64_t>(p->as_uint64()) : -1);
}

// "HOST:PORT" from http://HOST:PORT[/]; refuses anything outside 127.0.0.0/8 and ::1.
bool parse_loopback_url(const std::string& url, tcp::endpoint& ep, std::string& host_header, std::string& err) {
  std::string rest = url;
  if (rest.rfind("http://", 0) != 0) {
    err = "--url must start with http://";
    return false;
  }
  rest = rest.substr(7);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string host, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      err = "bad --url";
      return false;
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string::npos) {
      err = "--url needs a port";
      return false;
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  bool loopback =
      !ec && ((addr.is_v4() && (addr.to_v4().to_uint() >> 24) == 127) || (addr.is_v6() && addr.to_v6().is_loopback()));
  if (!loopback) {
    err = "refusing --url " + url + ": only loopback hosts (127.0.0.0/8, ::1) may be targeted";
    return false;
  }
  unsigned p = 0;
  auto [ptr, pec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (pec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
    err = "bad port in --url";
    return false;
  }
  ep = tcp::endpoint(addr, static_cast<unsigned short>(p));
  host_header = addr.is_v6() ? "[" + host + "]:" + port : host + ":" + port;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Per-socket and per-thread state

// What one client thread accumulates; touched only by coroutines of its own io_context.
struct ThreadStats {
  LatencyHistogram latency;
  std::int64_t last_delivery_ns = 0;
};

// Counters shared by all threads.
struct Totals {
  std::atomic<long> connected{0}, connect_failed{0}, closed{0};
  std::atomic<long> deliveries{0}, dup{0}, disorder{0}, foreign{0}, unread_updates{0}, other_frames{0};
  std::atomic<long> errors{0};
  std::atomic<bool> measuring{false};
};

struct User {
  std::string id, token;
};

// One member socket. `seen` is indexed by seq (grows as seqs arrive).
struct Receiver {
  std::size_t index = 0, user = 0;
  ThreadStats* stats = nullptr;
  std::unique_ptr<websocket::stream<tcp::socket>> ws;
  std::vector<bool> seen;
  std::int64_t max_seq = 0;
  long got = 0;
  bool open = false;
  std::string close_reason;
};

std::string_view frame_type(std::string_view t, json::value& parsed, bool& did_parse) {
  constexpr std::string_view prefix = R"({"type":")";
  if (t.substr(0, prefix.size()) == prefix) {
    auto end = t.find('"', prefix.size());
    if (end != std::string_view::npos) return t.substr(prefix.size(), end - prefix.size());
  }
  json::error_code ec;
  parsed = json::parse(t, ec);
  did_parse = true;
  if (ec || !parsed.is_object()) return {};
  auto* ty = parsed.as_object().if_contains("type");
  return ty && ty->is_string() ? std::string_view(ty->as_string()) : std::string_view();
}

// Benchmark content: "b|<sender>|<n>|<steady ns>".
struct Stamp {
  long sender = -1, n = -1;
  std::int64_t ns = 0;
};
bool parse_stamp(std::string_view c, Stamp& s) {
  if (c.substr(0, 2) != "b|") return false;
  const char* p = c.data() + 2;
  const char* e = c.data() + c.size();
  auto r1 = std::from_chars(p, e, s.sender);
  if (r1.ec != std::errc() || r1.ptr == e || *r1.ptr != '|') return false;
  auto r2 = std::from_chars(r1.ptr + 1, e, s.n);
  if (r2.ec != std::errc() || r2.ptr == e || *r2.ptr != '|') return false;
  auto r3 = std::from_chars(r2.ptr + 1, e, s.ns);
  return r3.ec == std::errc();
}

// seq and content of a new_message frame, by a cheap scan, or by a full parse when the scan fails.
bool new_message_fields(std::string_view t, std::int64_t& seq, Stamp& stamp) {
  auto sp = t.find(R"("seq":)");
  auto cp = t.find(R"("content":")");
  if (sp != std::string_view::npos && cp != std::string_view::npos) {
    const char* b = t.data() + sp + 6;
    auto r = std::from_chars(b, t.data() + t.size(), seq);
    auto cstart = cp + 11;
    auto cend = t.find('"', cstart);
    if (r.ec == std::errc() && cend != std::string_view::npos)
      return parse_stamp(t.substr(cstart, cend - cstart), stamp) || (stamp = Stamp{}, true);
  }
  json::error_code ec;
  auto v = json::parse(t, ec);
  if (ec) return false;
  seq = int_field(v, {"data", "seq"});
  auto content = str_field(v, {"data", "content"});
  if (!parse_stamp(content, stamp)) stamp = Stamp{};
  return seq > 0;
}

// Socket.IO (Engine.IO v4 over WebSocket): an event is the text frame `42["NAME",PAYLOAD]`.
// Sets `payload` to PAYLOAD when `t` is the event `name`.
bool sio_event(std::string_view t, std::string_view name, std::string_view& payload) {
  if (t.size() < name.size() + 8 || t.substr(0, 4) != R"(42[")" || t.substr(4, name.size()) != name ||
      t.substr(4 + name.size(), 2) != R"(",)" || t.back() != ']')
    return false;
  payload = t.substr(6 + name.size(), t.size() - 7 - name.size());
  return true;
}

// ---------------------------------------------------------------------------------------------
// The run

// How a client waits before it sends a shed request again: 20 ms, doubling up to 1 s, ±25 %
// jitter, back to 20 ms after its next success. (With a fixed 20 ms, 16,000 sockets turned a
// moment of overload into a storm of refused frames that kept the server's core busy
// refusing: docs/decisions.md "WebSocket sends that wait for their commit on no thread".)
struct ShedBackoff {
  int attempt = 0;
  std::chrono::milliseconds next() {
    thread_local std::minstd_rand rng{std::random_device{}()};
    int base = std::min(1000, 20 << std::min(attempt++, 6));
    std::uniform_int_distribution<int> jitter(base * 3 / 4, base * 5 / 4);
    return std::chrono::milliseconds(jitter(rng));
  }
  void reset() { attempt = 0; }
};

// chat, rest and reconnect-storm (scenarios.inc).
class Bench;
struct Scenarios;
std::shared_ptr<Scenarios> make_scenarios(Bench& b);
awaitable<void> scenario_flow(Scenarios& s);
std::string scenario_report(Scenarios& s, bool& bad);
void scenario_close(Scenarios& s);
bool is_extra_scenario(const std::string& name) {
  return name == "chat" || name == "rest" || name == "reconnect-storm";
}

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)) {
    for (int i = 0; i < o_.threads; ++i) {
      ctxs_.push_back(std::make_unique<asio::io_context>(1));
      stats_.push_back(std::make_unique<ThreadStats>());
    }
  }

  // Runs the scenario; prints the RESULT line; returns the exit code.
  int run();

 private:
  awaitable<void> main_flow();
  awaitable<void> setup_users(std::size_t count, const std::string& prefix, std::vector<User>& out);
  awaitable<std::string> setup_room(const User& creator, const std::vector<User>& members);
  awaitable<void> connect_worker(std::size_t thread, Latch done);
  awaitable<void> open_socket(websocket::stream<tcp::socket>& ws, std::size_t i, const User& u, std::string& first,
                              boost::system::error_code& ec);
  // engine_io: Socket.IO framing (answers the pings, takes new_message events out of `42[…]`)
  awaitable<void> receive_loop(std::shared_ptr<Receiver> r, bool engine_io);
  void on_frame(Receiver& r, std::string_view t);
  awaitable<void> rest_sender(std::size_t k, long count, Latch done);
  awaitable<void> ws_sender(std::size_t k, long count, Latch done);
  // --target ws-peer / socketio-peer (bench/peers/): the peer process, the Socket.IO session
  // opening, a Socket.IO receiver's loop, and a Socket.IO sender with its reader.
  int start_peer();
  awaitable<void> sio_open(websocket::stream<tcp::socket>& ws, std::string& first, boost::system::error_code& ec);
  awaitable<void> sio_sender(std::size_t k, long count, Latch done);
  awaitable<void> sio_sender_reader(std::size_t k);
  void record_ack(std::int64_t seq);
  void stop_all();
  int report();
  std::string target_for(const User& u) const;

  Options o_;
  std::vector<std::unique_ptr<asio::io_context>> ctxs_;
  std::vector<std::unique_ptr<ThreadStats>> stats_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ChildProcess> peer_;
  pid_t server_pid_ = 0;
  tcp::endpoint ep_;
  std::string host_header_, run_id_;
  Totals totals_;
  std::vector<User> users_, sender_users_;
  std::string room_id_;
  std::vector<std::shared_ptr<Receiver>> receivers_;
  std::size_t sockets_wanted_ = 0;
  std::atomic<std::size_t> connect_next_{0};

  // Phase results.
  std::atomic<bool> finished_{false};  // the measured part is over: closes are expected now
  bool completed_ = false, timed_out_ = false, interrupted_ = false;
  std::string fatal_;  // a setup or protocol failure that ends the run
  Clock::time_point connect_start_, connect_end_, send_start_, send_end_;
  long rss_before_ = -1, rss_after_ = -1;
  double server_cpu0_ = 0, server_cpu1_ = 0, client_cpu0_ = 0, client_cpu1_ = 0;
  double connect_server_cpu_ = -1, connect_client_cpu_ = -1;  // CPU seconds the sockets' opening took

  // Sends (all on thread 0).
  long sent_ = 0, send_failed_ = 0;
  std::atomic<long> acked_{0};
  std::vector<bool> acked_seq_;
  std::string first_send_error_;
  struct WsSender {
    std::unique_ptr<websocket::stream<tcp::socket>> ws;
    long outstanding = 0;
    bool writing = false;
    bool pong_due = false;  // socketio-peer: the server's ping "2" waits for its "3"
    std::map<std::string, std::string> frames;  // unacknowledged sends by client_msg_id (≤ --ws-window)
    std::vector<std::string> retry;             // shed ones to send again
    ShedBackoff backoff;
  };
  long shed_ = 0;  // sends refused because the server was behind (503 / overloaded), then retried
  awaitable<void> resend_shed(WsSender& s) {
    if (s.retry.empty()) co_return;
    co_await sleep_for(s.backoff.next());
    auto again = std::move(s.retry);
    s.retry.clear();
    for (const auto& c : again) {
      auto it = s.frames.find(c);
      if (it != s.frames.end()) co_await s.ws->async_write(asio::buffer(it->second), use_awaitable);
    }
  }
  std::vector<std::unique_ptr<WsSender>> ws_senders_;

  friend struct Scenarios;
  std::shared_ptr<Scenarios> sc_;  // chat, rest, reconnect-storm
};

std::string Bench::target_for(const User& u) const {
  if (o_.target == "ws-peer") return "/";
  if (o_.target == "socketio-peer") return "/socket.io/?EIO=4&transport=websocket";
  if (o_.endpoint == "chatroom") return "/api/ws?token=" + u.token + "&room_id=" + room_id_;
  return "/ws?token=" + u.token;
}

void Bench::stop_all() {
  for (auto& c : ctxs_) c->stop();
}

awaitable<void> Bench::setup_users(std::size_t count, const std::string& prefix, std::vector<User>& out) {
  out.resize(count);
  auto ex = co_await asio::this_coro::executor;
  std::size_t next = 0;
  std::size_t workers = std::min<std::size_t>(count, static_cast<std::size_t>(o_.setup_concurrency));
  Latch done(ex, workers);
  std::string failure;
  for (std::size_t w = 0; w < workers; ++w) {
    asio::co_spawn(
        ex,
        [&]() -> awaitable<void> {
          HttpClient http(ex, ep_, host_header_);
          while (next < count && failure.empty()) {
            std::size_t i = next++;
            json::object body{{"username", "b" + run_id_ + prefix + std::to_string(i)}, {"password", "bench-password"}};
            auto r = co_await http.request(http::verb::post, "/api/auth/register", json::serialize(body), "");
            auto v = parse_json(r.body);
            out[i].id = str_field(v, {"user", "id"});
            out[i].token = str_field(v, {"token"});
            if (r.status != 201 || out[i].id.empty() || out[i].token.empty())
              failure = "register failed with HTTP " + std::to_string(r.status) + ": " + r.body;
          }
        },
        [&](std::exception_ptr e) {
          if (e && failure.empty()) try {
              std::rethrow_exception(e);
            } catch (const std::exception& x) {
              failure = std::string("register: ") + x.what();
            }
          done.count_down();
        });
  }
  co_await done.wait();
  if (!failure.empty()) throw std::runtime_error(failure);
}

awaitable<std::string> Bench::setup_room(const User& creator, const std::vector<User>& members) {
  auto ex = co_await asio::this_coro::executor;
  HttpClient http(ex, ep_, host_header_);
  json::array ids;
  std::size_t first = std::min<std::size_t>(members.size(), 1000);
  for (std::size_t i = 0; i < first; ++i) ids.push_back(json::value(members[i].id));
  json::object body{{"name", "bench " + run_id_}, {"member_ids", std::move(ids)}};
  auto r = co_await http.request(http::verb::post, "/api/chatrooms", json::serialize(body), creator.token);
  std::string room = str_field(parse_json(r.body), {"id"});
  if (r.status != 201 || room.empty())
    throw std::runtime_error("creating the room failed with HTTP " + std::to_string(r.status) + ": " + r.body);
  for (std::size_t i = first; i < members.size(); ++i) {
    json::object add{{"user_id", members[i].id}};
    auto a = co_await http.request(http::verb::post, "/api/chatrooms/" + room + "/members", json::serialize(add),
                                   creator.token);
    if (a.status != 200)
      throw std::runtime_error("adding a member failed with HTTP " + std::to_string(a.status) + ": " + a.body);
  }
  co_return room;
}

// Connects socket i as user u (binding a spread source address when many sockets are
// wanted), upgrades, and reads the first frame into `first`.
awaitable<void> Bench::open_socket(websocket::stream<tcp::socket>& ws, std::size_t i, const User& u, std::string& first,
                                   boost::system::error_code& ec) {
  auto& sock = ws.next_layer();
  sock.open(ep_.protocol(), ec);
  if (ec) co_return;
  if (ep_.address().is_v4() && sockets_wanted_ > static_cast<std::size_t>(o_.conns_per_addr)) {
    int one = 1;
    ::setsockopt(sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    auto block = static_cast<unsigned>(i / static_cast<std::size_t>(o_.conns_per_addr));
    asio::ip::address_v4 src((127u << 24) + 2 + block);
    sock.bind(tcp::endpoint(src, 0), ec);
    if (ec) co_return;
  }
  std::tie(ec) = co_await sock.async_connect(ep_, kTuple);
  if (ec) co_return;
  sock.set_option(tcp::no_delay(true), ec);
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::request_type& req) { req.set(http::field::user_agent, "parley-bench"); }));
  ws.read_message_max(1 << 20);
  websocket::response_type res;
  std::tie(ec) = co_await ws.async_handshake(res, host_header_, target_for(u), kTuple);
  if (ec) {
    if (res.result_int() != 0 && res.result_int() != 101)
      first = "HTTP " + std::to_string(res.result_int()) + " " + res.body();
    co_return;
  }
  beast::flat_buffer buf;
  std::tie(ec, std::ignore) = co_await ws.async_read(buf, kTuple);
  if (ec) co_return;
  first = beast::buffers_to_string(buf.data());
}

awaitable<void> Bench::connect_worker(std::size_t thread, Latch done) {
  auto ex = co_await asio::this_coro::executor;
  std::size_t i;
  while ((i = connect_next_.fetch_add(1)) < receivers_.size()) {
    auto r = std::make_shared<Receiver>();
    r->index = i;
    r->user = i % users_.size();
    r->stats = stats_[thread].get();
    r->ws = std::make_unique<websocket::stream<tcp::socket>>(ex);
    std::string first;
    boost::system::error_code ec;
    co_await open_socket(*r->ws, i, users_[r->user], first, ec);
    if (!ec && o_.target == "socketio-peer") co_await sio_open(*r->ws, first, ec);
    if (ec || first.find(R"("connected")") == std::string::npos) {
      if (totals_.connect_failed.fetch_add(1) < 5)
        std::fprintf(stderr, "parley-bench: socket %zu failed to open: %s %s\n", i,
                     ec ? ec.message().c_str() : "no connected frame", first.c_str());
    } else {
      r->open = true;
      totals_.connected.fetch_add(1);
      receivers_[i] = r;  // distinct slots; read only after all threads joined or the latch
      asio::co_spawn(ex, receive_loop(r, o_.target == "socketio-peer"), asio::detached);
    }
    done.count_down();
  }
}

void Bench::on_frame(Receiver& r, std::string_view t) {
  json::value parsed;
  bool did_parse = false;
  auto type = frame_type(t, parsed, did_parse);
  if (type == "new_message") {
    std::int64_t seq = 0;
    Stamp stamp;
    if (!new_message_fields(t, seq, stamp) || seq <= 0) {
      totals_.other_frames.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (stamp.sender < 0) {  // not one of ours
      totals_.foreign.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    auto s = static_cast<std::size_t>(seq);
    if (r.seen.size() <= s) r.seen.resize(std::max(s + 1, r.seen.size() * 2));
    if (r.seen[s]) {
      totals_.dup.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    r.seen[s] = true;
    if (seq < r.max_seq) totals_.disorder.fetch_add(1, std::memory_order_relaxed);
    r.max_seq = std::max(r.max_seq, seq);
    ++r.got;
    std::int64_t now = now_ns();
    r.stats->latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - stamp.ns)));
    r.stats->last_delivery_ns = now;
    totals_.deliveries.fetch_add(1, std::memory_order_relaxed);
  } else if (type == "unread_count_update") {
    if (totals_.measuring.load(std::memory_order_relaxed))
      totals_.unread_updates.fetch_add(1, std::memory_order_relaxed);
  } else if (type == "error") {
    if (totals_.errors.fetch_add(1) < 5)
      std::fprintf(stderr, "parley-bench: error frame: %.*s\n", int(t.size()), t.data());
  } else {
    totals_.other_frames.fetch_add(1, std::memory_order_relaxed);
  }
}

awaitable<void> Bench::receive_loop(std::shared_ptr<Receiver> r, bool engine_io) {
  beast::flat_buffer buf;
  for (;;) {
    buf.clear();
    auto [ec, n] = co_await r->ws->async_read(buf, kTuple);
    if (ec) {
      r->open = false;
      auto reason = r->ws->reason();
      r->close_reason = ec == websocket::error::closed
                            ? "closed " + std::to_string(reason.code) + " " + std::string(reason.reason.c_str())
                            : ec.message();
      if (!finished_ && totals_.closed.fetch_add(1) < 5)
        std::fprintf(stderr, "parley-bench: socket %zu closed: %s\n", r->index, r->close_reason.c_str());
      co_return;
    }
    auto d = buf.data();
    std::string_view t(static_cast<const char*>(d.data()), d.size()), payload;
    if (!engine_io) {
      on_frame(*r, t);
    } else if (t == "2") {  // Engine.IO ping: answer at once (a receiver writes nothing else)
      co_await r->ws->async_write(asio::buffer(std::string_view("3")), kTuple);
    } else if (sio_event(t, "new_message", payload)) {
      on_frame(*r, payload);
    } else {
      totals_.other_frames.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void Bench::record_ack(std::int64_t seq) {
  if (seq <= 0) return;
  auto s = static_cast<std::size_t>(seq);
  if (acked_seq_.size() <= s) acked_seq_.resize(std::max(s + 1, acked_seq_.size() * 2));
  if (!acked_seq_[s]) {
    acked_seq_[s] = true;
    acked_.fetch_add(1);
  }
}

// The send schedule: sender k of K sends its n-th message at start + (n + k/K) * K/rate.
Clock::time_point send_time(Clock::time_point start, const Options& o, std::size_t k, long n) {
  if (o.rate <= 0) return start;
  double per = static_cast<double>(o.senders) / o.rate;
  double at = (static_cast<double>(n) + static_cast<double>(k) / o.senders) * per;
  return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at));
}

bool sending_window_over(const Options& o, Clock::time_point start) {
  return o.duration > 0 && seconds_between(start, Clock::now()) >= o.duration;
}

std::string content_for(std::size_t k, long n) {
  return "b|" + std::to_string(k) + "|" + std::to_string(n) + "|" + std::to_string(now_ns());
}

awaitable<void> Bench::rest_sender(std::size_t k, long count, Latch done) {
  auto ex = co_await asio::this_coro::executor;
  HttpClient http(ex, ep_, host_header_);
  const User& me = sender_users_[k];
  std::string target = "/api/chatrooms/" + room_id_ + "/messages";
  try {
    for (long n = 0; n < count && !sending_window_over(o_, send_start_); ++n) {
      auto at = send_time(send_start_, o_, k, n);
      if (at > Clock::now()) co_await sleep_for(at - Clock::now());
      json::object body{{"content", content_for(k, n)}, {"client_msg_id", std::to_string(k) + "-" + std::to_string(n)}};
      ++sent_;
      auto r = co_await http.request(http::verb::post, target, json::serialize(body), me.token);
      // Shed at the entrance (the server is behind): retry the same send (same client_msg_id,
      // same timestamp, so the wait counts in its latency) after a growing pause.
      ShedBackoff backoff;
      while (r.status == 503 && !sending_window_over(o_, send_start_)) {
        ++shed_;
        co_await sleep_for(backoff.next());
        r = co_await http.request(http::verb::post, target, json::serialize(body), me.token);
      }
      std::int64_t seq = r.status == 201 ? int_field(parse_json(r.body), {"seq"}) : -1;
      if (seq > 0) {
        record_ack(seq);
      } else {
        if (send_failed_++ == 0) first_send_error_ = "HTTP " + std::to_string(r.status) + " " + r.body;
      }
    }
  } catch (const std::exception& e) {
    if (send_failed_++ == 0) first_send_error_ = e.what();
  }
  done.count_down();
}

awaitable<void> Bench::ws_sender(std::size_t k, long count, Latch done) {
  auto& s = *ws_senders_[k];
  try {
    for (long n = 0; n < count && !sending_window_over(o_, send_start_) && fatal_.empty(); ++n) {
      auto at = send_time(send_start_, o_, k, n);
      if (at > Clock::now()) co_await sleep_for(at - Clock::now());
      while (s.outstanding >= o_.ws_window && fatal_.empty()) co_await sleep_for(std::chrono::microseconds(500));
      if (!fatal_.empty()) break;
      json::object data{{"room_id", room_id_},
                        {"content", content_for(k, n)},
                        {"client_msg_id", std::to_string(k) + "-" + std::to_string(n)}};
      std::string frame = json::serialize(json::object{{"type", "send_message"}, {"data", std::move(data)}});
      ++sent_;
      ++s.outstanding;
      s.frames[std::to_string(k) + "-" + std::to_string(n)] = frame;
      co_await s.ws->async_write(asio::buffer(frame), use_awaitable);
      co_await resend_shed(s);
    }
    while (s.outstanding > 0 && fatal_.empty() && !s.retry.empty()) co_await resend_shed(s);
    // Wait for the outstanding acks (bounded by the drain timeout).
    auto until =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.drain_timeout));
    while (s.outstanding > 0 && Clock::now() < until && fatal_.empty())
      co_await sleep_for(std::chrono::milliseconds(1));
    if (s.outstanding > 0 && fatal_.empty()) {
      if (send_failed_ == 0) first_send_error_ = "no ack for " + std::to_string(s.outstanding) + " sends";
      send_failed_ += s.outstanding;
    }
  } catch (const std::exception& e) {
    if (send_failed_++ == 0) first_send_error_ = e.what();
  }
  done.count_down();
}

// ---------------------------------------------------------------------------------------------
// Peers (--target ws-peer | socketio-peer): bench/peers/ servers doing the same fan-out job on
// Node. ws-peer speaks Parley's frames (connected, send_message → ack, new_message), so the
// Parley paths serve it unchanged; socketio-peer wraps the same JSON in Socket.IO events.

int Bench::start_peer() {
  std::vector<std::string> argv;
  if (!o_.peer_cmd.empty()) {
    argv = split_command(o_.peer_cmd);
  } else {
    std::string dir = o_.peers_dir.empty() ? std::string(default_peers_dir()) : o_.peers_dir;
    std::string script = dir + (o_.target == "ws-peer" ? "/ws_peer.mjs" : "/socketio_peer.mjs");
    if (::access(script.c_str(), R_OK) != 0) {
      std::fprintf(stderr, "parley-bench: cannot read %s (give --peers-dir or --peer-cmd)\n", script.c_str());
      return 2;
    }
    if (::access((dir + "/node_modules").c_str(), R_OK) != 0) {
      std::fprintf(stderr, "parley-bench: %s/node_modules is missing: run `npm ci` in %s\n", dir.c_str(), dir.c_str());
      return 2;
    }
    argv = {"node", script};
  }
  try {
    peer_ = parley::bench::start_peer(argv, o_.server_cpu, 30.0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parley-bench: cannot start the peer: %s\n", e.what());
    return 2;
  }
  server_pid_ = peer_->pid();
  std::string err;
  if (!parse_loopback_url(peer_->url(), ep_, host_header_, err)) {
    std::fprintf(stderr, "parley-bench: %s\n", err.c_str());
    return 2;
  }
  std::printf("server: pid %d: %s\n", server_pid_, peer_->command().c_str());
  return 0;
}

// After the WebSocket upgrade: the server's Engine.IO open packet `0{…}` is in `first`; join
// the default namespace (`40`) and wait for its `40{"sid":…}`. On success `first` holds a
// `connected` frame, as a Parley socket's first frame.
awaitable<void> Bench::sio_open(websocket::stream<tcp::socket>& ws, std::string& first,
                                boost::system::error_code& ec) {
  if (first.substr(0, 2) != "0{" || first.find(R"("pingInterval")") == std::string::npos) {
    first = "no Engine.IO open packet: " + first.substr(0, 200);
    co_return;
  }
  std::tie(ec, std::ignore) = co_await ws.async_write(asio::buffer(std::string_view("40")), kTuple);
  if (ec) co_return;
  beast::flat_buffer buf;
  std::tie(ec, std::ignore) = co_await ws.async_read(buf, kTuple);
  if (ec) co_return;
  std::string got = beast::buffers_to_string(buf.data());
  first = got.substr(0, 3) == "40{" ? std::string(R"({"type":"connected"})") : "no namespace connect: " + got.substr(0, 200);
}

// As ws_sender, with the frame `42["send_message",{…}]`; the only writer on its socket, so it
// also answers the pings its reader saw (pong_due), until the run is over.
awaitable<void> Bench::sio_sender(std::size_t k, long count, Latch done) {
  auto& s = *ws_senders_[k];
  auto pong = [&s]() -> awaitable<void> {
    if (!s.pong_due) co_return;
    s.pong_due = false;
    co_await s.ws->async_write(asio::buffer(std::string_view("3")), use_awaitable);
  };
  try {
    for (long n = 0; n < count && !sending_window_over(o_, send_start_) && fatal_.empty(); ++n) {
      auto at = send_time(send_start_, o_, k, n);
      if (at > Clock::now()) co_await sleep_for(at - Clock::now());
      while (s.outstanding >= o_.ws_window && fatal_.empty()) {
        co_await pong();
        co_await sleep_for(std::chrono::microseconds(500));
      }
      if (!fatal_.empty()) break;
      std::string cmid = std::to_string(k) + "-" + std::to_string(n);
      json::object data{{"room_id", room_id_}, {"content", content_for(k, n)}, {"client_msg_id", cmid}};
      std::string frame = R"(42["send_message",)" + json::serialize(data) + "]";
      ++sent_;
      ++s.outstanding;
      s.frames[cmid] = frame;
      co_await pong();
      co_await s.ws->async_write(asio::buffer(frame), use_awaitable);
    }
    auto until =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.drain_timeout));
    while (s.outstanding > 0 && Clock::now() < until && fatal_.empty()) {
      co_await pong();
      co_await sleep_for(std::chrono::milliseconds(1));
    }
    if (s.outstanding > 0 && fatal_.empty()) {
      if (send_failed_ == 0) first_send_error_ = "no ack for " + std::to_string(s.outstanding) + " sends";
      send_failed_ += s.outstanding;
    }
  } catch (const std::exception& e) {
    if (send_failed_++ == 0) first_send_error_ = e.what();
  }
  done.count_down();
  // The receivers may still be draining: keep the session alive.
  try {
    while (!finished_) {
      co_await pong();
      co_await sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const std::exception&) {
  }
}

awaitable<void> Bench::sio_sender_reader(std::size_t k) {
  auto& s = *ws_senders_[k];
  beast::flat_buffer buf;
  for (;;) {
    buf.clear();
    auto [ec, n] = co_await s.ws->async_read(buf, kTuple);
    if (ec) {
      if (!finished_ && fatal_.empty()) fatal_ = "sender socket " + std::to_string(k) + " closed: " + ec.message();
      co_return;
    }
    std::string_view t(static_cast<const char*>(buf.data().data()), buf.size());
    std::string_view payload;
    if (t == "2") {
      s.pong_due = true;
    } else if (sio_event(t, "ack", payload)) {
      auto v = parse_json(std::string(payload));
      auto cmid = str_field(v, {"data", "client_msg_id"});
      if (!s.frames.erase(cmid)) continue;  // not one of this sender's outstanding sends
      --s.outstanding;
      record_ack(int_field(v, {"data", "message", "seq"}));
    } else if (sio_event(t, "error_frame", payload)) {
      auto v = parse_json(std::string(payload));
      if (s.frames.erase(str_field(v, {"data", "client_msg_id"}))) --s.outstanding;
      if (send_failed_++ == 0) first_send_error_ = std::string(t);
    }
  }
}

awaitable<void> Bench::main_flow() {
  auto ex = co_await asio::this_coro::executor;
  const bool idle = o_.scenario == "idle";
  std::size_t n_sockets = static_cast<std::size_t>(idle ? o_.conns : o_.members);
  std::size_t n_users =
      o_.users > 0 ? static_cast<std::size_t>(o_.users) : (idle ? std::min<std::size_t>(n_sockets, 100) : n_sockets);
  n_users = std::min(n_users, n_sockets);
  std::size_t n_senders = idle ? 0 : static_cast<std::size_t>(o_.senders);

  auto t_setup = Clock::now();
  const bool peer = o_.target != "parley";
  if (peer) {  // a peer has no users, no tokens and one room that every socket is in
    users_.assign(1, User{});
    sender_users_.assign(n_senders, User{});
    room_id_ = "bench";
  }
  if (!peer) co_await setup_users(n_users, "u", users_);
  if (n_senders && !peer) co_await setup_users(n_senders, "s", sender_users_);
  std::printf("setup: %zu users and %zu senders registered in %.1f s\n", n_users, n_senders,
              seconds_between(t_setup, Clock::now()));
  if (!peer && (!idle || o_.endpoint == "chatroom")) {
    std::vector<User> members = users_;
    User creator = n_senders ? sender_users_[0] : users_[0];
    for (std::size_t k = 1; k < n_senders; ++k) members.push_back(sender_users_[k]);
    if (!n_senders) members.erase(members.begin());
    room_id_ = co_await setup_room(creator, members);
    std::printf("setup: room %s with %zu members\n", room_id_.c_str(), members.size() + 1);
  }
  std::fflush(stdout);

  // Receiver sockets, opened connect_concurrency at a time over the client threads.
  sockets_wanted_ = n_sockets + (o_.send_via == "ws" ? n_senders : 0);
  receivers_.resize(n_sockets);
  if (server_pid_ > 0) rss_before_ = rss_kib(server_pid_);
  double server_cpu_before = server_pid_ > 0 ? cpu_seconds(server_pid_) : 0, client_cpu_before = cpu_seconds(0);
  connect_start_ = Clock::now();
  Latch opened(ex, n_sockets);
  auto workers_per_thread = std::max<std::size_t>(1, static_cast<std::size_t>(o_.connect_concurrency) / ctxs_.size());
  for (std::size_t t = 0; t < ctxs_.size(); ++t)
    for (std::size_t w = 0; w < workers_per_thread; ++w)
      asio::co_spawn(*ctxs_[t], connect_worker(t, opened), asio::detached);
  co_await opened.wait();
  connect_end_ = Clock::now();
  if (server_pid_ > 0) connect_server_cpu_ = cpu_seconds(server_pid_) - server_cpu_before;
  connect_client_cpu_ = cpu_seconds(0) - client_cpu_before;
  std::printf("connected: %ld of %zu sockets in %.2f s (%.0f handshakes/s)\n", totals_.connected.load(), n_sockets,
              seconds_between(connect_start_, connect_end_),
              static_cast<double>(totals_.connected.load()) / seconds_between(connect_start_, connect_end_));
  std::fflush(stdout);

  if (idle) {
    co_await sleep_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.hold)));
    if (server_pid_ > 0) rss_after_ = rss_kib(server_pid_);
    finished_ = true;
    completed_ = true;
    co_return;
  }

  // What connecting set off on the server (badge snapshots, subscriptions) is over before
  // the first send, so that the sends are measured alone.
  if (o_.settle > 0) co_await sleep_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.settle)));
  std::printf("sending: after %.1f s\n", o_.settle);
  std::fflush(stdout);

  // Sender sockets (WebSocket mode): one per sender user, on thread 0.
  if (o_.send_via == "ws") {
    for (std::size_t k = 0; k < n_senders; ++k) {
      auto s = std::make_unique<WsSender>();
      s->ws = std::make_unique<websocket::stream<tcp::socket>>(ex);
      std::string first;
      boost::system::error_code ec;
      co_await open_socket(*s->ws, n_sockets + k, sender_users_[k], first, ec);
      if (!ec && o_.target == "socketio-peer") co_await sio_open(*s->ws, first, ec);
      if (ec || first.find(R"("connected")") == std::string::npos)
        throw std::runtime_error("sender socket " + std::to_string(k) + " failed to open: " + ec.message() + " " +
                                 first);
      ws_senders_.push_back(std::move(s));
    }
    // Each sender socket's reader: acks and errors; everything else is counted and dropped.
    for (std::size_t k = 0; k < n_senders; ++k) {
      if (o_.target == "socketio-peer") {
        asio::co_spawn(ex, sio_sender_reader(k), asio::detached);
        continue;
      }
      asio::co_spawn(
          ex,
          [this, k]() -> awaitable<void> {
            auto& s = *ws_senders_[k];
            beast::flat_buffer buf;
            for (;;) {
              buf.clear();
              auto [ec, n] = co_await s.ws->async_read(buf, kTuple);
              if (ec) {
                if (!finished_ && fatal_.empty())
                  fatal_ = "sender socket " + std::to_string(k) + " closed: " + ec.message();
                co_return;
              }
              std::string_view t(static_cast<const char*>(buf.data().data()), buf.size());
              json::value v;
              bool parsed = false;
              auto type = frame_type(t, v, parsed);
              if (type != "ack" && type != "error") continue;
              if (!parsed) v = json::parse(t);
              auto cmid = str_field(v, {"data", "client_msg_id"});
              if (type == "ack") {
                --s.outstanding;
                s.backoff.reset();
                s.frames.erase(std::string(cmid));
                record_ack(int_field(v, {"data", "message", "seq"}));
                continue;
              }
              auto code = str_field(v, {"data", "code"});
              if (code == "overloaded" && s.frames.count(std::string(cmid))) {  // shed: send it again
                ++shed_;
                s.retry.push_back(std::string(cmid));
                continue;
              }
              if (code == "unknown_type") {
                fatal_ =
                    "the server does not support WebSocket send_message (it answered error unknown_type); "
                    "use --send-via rest";
                continue;
              }
              if (str_field(v, {"data", "client_msg_id"}).empty()) continue;  // not about a send
              --s.outstanding;
              if (send_failed_++ == 0) first_send_error_ = std::string(t);
            }
          },
          asio::detached);
    }
  }

  // Let the sidebar snapshots arrive, then measure.
  co_await sleep_for(std::chrono::milliseconds(300));
  long total = o_.messages > 0 ? o_.messages : (o_.duration > 0 ? std::numeric_limits<long>::max() / 2 : 1000);
  totals_.measuring = true;
  server_cpu0_ = server_pid_ > 0 ? cpu_seconds(server_pid_) : 0;
  client_cpu0_ = cpu_seconds(0);
  send_start_ = Clock::now();
  Latch sent(ex, n_senders);
  for (std::size_t k = 0; k < n_senders; ++k) {
    long count = total / static_cast<long>(n_senders) + (static_cast<long>(k) < total % static_cast<long>(n_senders));
    if (o_.target == "socketio-peer")
      asio::co_spawn(ex, sio_sender(k, count, sent), asio::detached);
    else if (o_.send_via == "ws")
      asio::co_spawn(ex, ws_sender(k, count, sent), asio::detached);
    else
      asio::co_spawn(ex, rest_sender(k, count, sent), asio::detached);
  }
  co_await sent.wait();
  send_end_ = Clock::now();
  if (!fatal_.empty()) throw std::runtime_error(fatal_);

  // Drain: every acknowledged message must reach every member socket.
  auto drain_until =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.drain_timeout));
  long expected = acked_.load() * static_cast<long>(n_sockets);
  // Closed sockets get nothing more: stop early once deliveries stall with some of them closed.
  long last_seen = -1;
  auto last_progress = Clock::now();
  while (totals_.deliveries.load() < expected && Clock::now() < drain_until) {
    long d = totals_.deliveries.load();
    if (d != last_seen) {
      last_seen = d;
      last_progress = Clock::now();
    } else if (totals_.closed.load() > 0 && Clock::now() - last_progress > std::chrono::seconds(2)) {
      break;
    }
    co_await sleep_for(std::chrono::milliseconds(5));
  }
  server_cpu1_ = server_pid_ > 0 ? cpu_seconds(server_pid_) : 0;
  client_cpu1_ = cpu_seconds(0);
  finished_ = true;
  completed_ = true;
}

int Bench::run() {
  // Server.
  if (!o_.url.empty()) {
    std::string err;
    if (!parse_loopback_url(o_.url, ep_, host_header_, err)) {
      std::fprintf(stderr, "parley-bench: %s\n", err.c_str());
      return 2;
    }
    server_pid_ = o_.server_pid;
  } else if (o_.target != "parley") {
    if (int rc = start_peer(); rc != 0) return rc;
  } else {
    try {
      server_ = std::make_unique<ServerProcess>(o_.server_bin, o_.server_args, o_.server_cpu, 30.0);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "parley-bench: cannot start the server: %s\n", e.what());
      return 2;
    }
    server_pid_ = server_->pid();
    std::string err;
    if (!parse_loopback_url(server_->url(), ep_, host_header_, err)) {
      std::fprintf(stderr, "parley-bench: %s\n", err.c_str());
      return 2;
    }
    std::printf("server: pid %d: %s\n", server_pid_, server_->command().c_str());
  }
  if (o_.client_cpu >= 0 && !pin_to_cpu(o_.client_cpu))
    std::fprintf(stderr, "parley-bench: cannot pin the client to CPU %d\n", o_.client_cpu);
  std::printf("server: %s%s\n", o_.url.empty() ? (peer_ ? peer_->url() : server_->url()).c_str() : o_.url.c_str(),
              server_pid_ > 0 ? "" : " (no --server-pid: no server RSS/CPU)");
  std::fflush(stdout);

  std::random_device rd;
  char id[16];
  std::snprintf(id, sizeof id, "%06x", rd() & 0xffffff);
  run_id_ = id;

  auto& ctx0 = *ctxs_[0];
  asio::steady_timer hard(ctx0, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.timeout)));
  hard.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    timed_out_ = true;
    std::fprintf(stderr, "parley-bench: hard timeout of %.0f s reached\n", o_.timeout);
    stop_all();
  });
  asio::signal_set signals(ctx0, SIGINT, SIGTERM);
  signals.async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    interrupted_ = true;
    stop_all();
  });
  if (is_extra_scenario(o_.scenario)) sc_ = make_scenarios(*this);
  asio::co_spawn(ctx0, sc_ ? scenario_flow(*sc_) : main_flow(), [this](std::exception_ptr e) {
    if (e) try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        fatal_ = x.what();
      }
    stop_all();
  });

  std::vector<std::thread> threads;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (std::size_t t = 1; t < ctxs_.size(); ++t) {
    guards.push_back(asio::make_work_guard(*ctxs_[t]));
    threads.emplace_back([&c = *ctxs_[t]] { c.run(); });
  }
  ctx0.run();
  finished_ = true;
  stop_all();
  for (auto& t : threads) t.join();
  if (!completed_) {
    server_cpu1_ = server_pid_ > 0 ? cpu_seconds(server_pid_) : 0;
    client_cpu1_ = cpu_seconds(0);
  }
  int rc = report();
  // Close every client socket first: a server stopping closes its WebSockets with a close
  // handshake that a stopped client would leave hanging.
  boost::system::error_code ignored;
  for (auto& r : receivers_)
    if (r) r->ws->next_layer().close(ignored);
  for (auto& s : ws_senders_) s->ws->next_layer().close(ignored);
  if (sc_) scenario_close(*sc_);
  if (server_) {
    int st = server_->stop();
    if (st != 0 && st != -1) std::fprintf(stderr, "parley-bench: the server exited with status %d\n", st);
  }
  if (peer_) {
    int st = peer_->stop();
    if (st != 0 && st != -1) std::fprintf(stderr, "parley-bench: the peer exited with status %d\n", st);
  }
  return rc;
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

int Bench::report() {
  std::string status = "ok";
  if (timed_out_)
    status = "timeout";
  else if (interrupted_)
    status = "interrupted";
  else if (!fatal_.empty())
    status = "error";
  if (!fatal_.empty()) std::fprintf(stderr, "parley-bench: %s\n", fatal_.c_str());
  const long failed = totals_.connect_failed.load();
  std::string line;
  bool bad = status != "ok" || failed > 0;

  if (sc_) {
    line = scenario_report(*sc_, bad);
    if (bad && status == "ok") status = "failed";  // a check failed: loss, gap, 5xx, refusal…
  } else if (o_.scenario == "idle") {
    long conns = totals_.connected.load();
    long closed = totals_.closed.load();
    double secs = seconds_between(connect_start_, connect_end_);
    double per = conns > 0 && rss_before_ >= 0 && rss_after_ >= 0
                     ? static_cast<double>(rss_after_ - rss_before_) / static_cast<double>(conns)
                     : -1;
    bad = bad || closed > 0 || conns != o_.conns;
    line = "RESULT scenario=idle endpoint=" + o_.endpoint + " conns=" + std::to_string(conns) +
           " users=" + std::to_string(o_.target == "parley" ? users_.size() : 0) + " failed=" + std::to_string(failed) +
           " closed=" + std::to_string(closed) + " rss_before_kib=" + std::to_string(rss_before_) +
           " rss_after_kib=" + std::to_string(rss_after_) + " rss_per_conn_kib=" + fmt("%.2f", per) +
           " connect_s=" + fmt("%.3f", secs) + " handshakes_per_s=" + fmt("%.0f", secs > 0 ? conns / secs : 0);
    // What one opening costs each side (user + system time over the opening phase): the
    // figure that says which of the two bounds handshakes/s.
    if (conns > 0 && connect_server_cpu_ >= 0)
      line += " server_cpu_us_per_handshake=" + fmt("%.1f", connect_server_cpu_ * 1e6 / static_cast<double>(conns));
    if (conns > 0 && connect_client_cpu_ >= 0)
      line += " client_cpu_us_per_handshake=" + fmt("%.1f", connect_client_cpu_ * 1e6 / static_cast<double>(conns));
  } else {
    LatencyHistogram h;
    std::int64_t last = 0;
    for (auto& s : stats_) {
      h.merge(s->latency);
      last = std::max(last, s->last_delivery_ns);
    }
    // Loss: every acknowledged seq must have reached every member socket.
    long lost = 0, open_sockets = 0, unacked_deliveries = 0;  // open_sockets: still open at the end
    for (auto& r : receivers_) {
      if (!r) continue;
      open_sockets += r->open;
      for (std::size_t s = 1; s < acked_seq_.size(); ++s)
        if (acked_seq_[s] && (s >= r->seen.size() || !r->seen[s])) ++lost;
      for (std::size_t s = 1; s < r->seen.size(); ++s)
        if (r->seen[s] && (s >= acked_seq_.size() || !acked_seq_[s])) ++unacked_deliveries;
    }
    long missing_sockets = static_cast<long>(o_.members) - static_cast<long>(totals_.connected.load());
    if (missing_sockets > 0) lost += missing_sockets * acked_.load();
    long deliveries = totals_.deliveries.load();
    double secs =
        last > 0
            ? static_cast<double>(
                  last - std::chrono::duration_cast<std::chrono::nanoseconds>(send_start_.time_since_epoch()).count()) /
                  1e9
            : 0;
    double send_secs = seconds_between(send_start_, send_end_ > send_start_ ? send_end_ : Clock::now());
    double scpu = server_cpu1_ - server_cpu0_, ccpu = client_cpu1_ - client_cpu0_;
    long dup = totals_.dup.load(), disorder = totals_.disorder.load(), closed = totals_.closed.load();
    bad = bad || lost > 0 || dup > 0 || disorder > 0 || closed > 0 || send_failed_ > 0 || acked_.load() == 0;
    auto ms = [](std::uint64_t ns) { return fmt("%.3f", static_cast<double>(ns) / 1e6); };
    line = "RESULT scenario=fanout send_via=" + o_.send_via + " endpoint=" + o_.endpoint +
           " members=" + std::to_string(o_.members) + " users=" + std::to_string(o_.target == "parley" ? users_.size() : 0) +
           " senders=" + std::to_string(o_.senders) + " rate=" + fmt("%.0f", o_.rate) +
           " messages=" + std::to_string(acked_.load()) + " sent=" + std::to_string(sent_) +
           " send_failed=" + std::to_string(send_failed_) + " shed=" + std::to_string(shed_) +
           " sends_per_s=" + fmt("%.1f", send_secs > 0 ? static_cast<double>(sent_) / send_secs : 0) +
           " deliveries=" + std::to_string(deliveries) +
           " expected=" + std::to_string(acked_.load() * static_cast<long>(o_.members)) +
           " deliveries_per_s=" + fmt("%.0f", secs > 0 ? static_cast<double>(deliveries) / secs : 0) +
           " seconds=" + fmt("%.3f", secs) + " p50_ms=" + ms(h.quantile(0.5)) + " p90_ms=" + ms(h.quantile(0.9)) +
           " p99_ms=" + ms(h.quantile(0.99)) + " p999_ms=" + ms(h.quantile(0.999)) + " max_ms=" + ms(h.max()) +
           " lost=" + std::to_string(lost) + " dup=" + std::to_string(dup) + " disorder=" + std::to_string(disorder) +
           " unacked_deliveries=" + std::to_string(unacked_deliveries) +
           " unread_updates=" + std::to_string(totals_.unread_updates.load()) +
           " error_frames=" + std::to_string(totals_.errors.load()) + " conn_failed=" + std::to_string(failed) +
           " closed=" + std::to_string(closed) + " open=" + std::to_string(open_sockets) +
           " server_cpu_s=" + fmt("%.2f", scpu) + " client_cpu_s=" + fmt("%.2f", ccpu) +
           " deliveries_per_server_cpu_s=" + fmt("%.0f", scpu > 0 ? static_cast<double>(deliveries) / scpu : 0);
    if (send_failed_ > 0)
      std::fprintf(stderr, "parley-bench: %ld sends failed; first: %s\n", send_failed_, first_send_error_.c_str());
  }
  line += " target=" + o_.target + " status=" + status;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  return bad ? 1 : 0;
}

#include "scenarios.inc"

}  // namespace
}  // namespace parley::bench

int main(int argc, char** argv) {
  using parley::bench::Options;
  Options o;
  CLI::App app{
      "parley-bench — a load generator for the Parley server (loopback only)\n"
      "  idle    N authenticated WebSocket sockets held open: server RSS per socket, handshakes/s\n"
      "  fanout  one room, M member sockets, K senders over REST or WebSocket: deliveries/s, latency,\n"
      "          loss/duplicate/disorder, server and client CPU seconds\n"
      "  chat    R rooms x S members on chatroom sockets, each sending over WebSocket at --member-rate:\n"
      "          persisted messages/s, deliveries/s, send->deliver p50/p99, loss/duplicate/disorder\n"
      "  rest    C connections: REST sends (group commit), then history and unread-count reads: req/s, p99\n"
      "  reconnect-storm  N chatroom sockets drop at once and reconnect with after_seq: time until all\n"
      "          are back with every gap filled, 5xx/refusals\n"
      "Ends with one line 'RESULT scenario=… key=value …'; exits non-zero on any loss, duplicate,\n"
      "disorder, refused connection, failed send or timeout.",
      "parley-bench"};
  app.require_subcommand(1, 1);
  auto* idle = app.add_subcommand("idle", "hold N idle authenticated sockets; server RSS per socket");
  auto* fanout = app.add_subcommand("fanout", "one room, M member sockets, K senders");
  auto extra = parley::bench::add_scenario_subcommands(app, o);
  for (auto* sub : {idle, fanout, extra.chat, extra.rest, extra.storm}) {
    sub->add_option("--server-bin", o.server_bin, "the parley binary to start a throwaway server from");
    sub->add_option("--server-arg", o.server_args,
                    "extra argument for `parley serve` (repeatable; --server-arg=--flag=value)")
        ->allow_extra_args(false);
    sub->add_option("--url", o.url, "an existing server (http://127.0.0.1:PORT; loopback only)");
    sub->add_option("--server-pid", o.server_pid, "PID of the --url server, for its RSS and CPU");
    sub->add_option("--server-cpu", o.server_cpu, "pin the started server to this CPU")->check(CLI::Range(0, 1023));
    sub->add_option("--client-cpu", o.client_cpu, "pin this client to this CPU")->check(CLI::Range(0, 1023));
    sub->add_option("--threads", o.threads, "client threads (one io_context each)")
        ->capture_default_str()
        ->check(CLI::Range(1, 64));
    sub->add_option("--users", o.users, "distinct users owning the sockets (idle: default min(N,100); fanout: M)")
        ->check(CLI::Range(1, 1000000));
    sub->add_option("--endpoint", o.endpoint, "sidebar (/ws) or chatroom (/api/ws?room_id=)")
        ->capture_default_str()
        ->check(CLI::IsMember({"sidebar", "chatroom"}));
    sub->add_option("--timeout", o.timeout, "hard timeout in seconds: report and exit non-zero")
        ->capture_default_str()
        ->check(CLI::Range(1.0, 86400.0));
    sub->add_option("--setup-concurrency", o.setup_concurrency, "parallel registrations")
        ->capture_default_str()
        ->check(CLI::Range(1, 256));
    sub->add_option("--connect-concurrency", o.connect_concurrency, "sockets opening at once")
        ->capture_default_str()
        ->check(CLI::Range(1, 10000));
    sub->add_option("--target", o.target,
                    "parley, or a peer from bench/peers/ (Node, no persistence): ws-peer (ws) or socketio-peer "
                    "(Socket.IO 4, WebSocket transport)")
        ->capture_default_str()
        ->check(CLI::IsMember({"parley", "ws-peer", "socketio-peer"}));
    sub->add_option("--peer-cmd", o.peer_cmd,
                    "command line starting the peer (split on spaces; `--port 0` is appended; default: node "
                    "PEERS_DIR/ws_peer.mjs or socketio_peer.mjs)");
    sub->add_option("--peers-dir", o.peers_dir,
                    std::string("directory of the peers and their node_modules (default ") +
                        parley::bench::default_peers_dir() + ")");
    sub->add_option("--conns-per-addr", o.conns_per_addr,
                    "sockets per client source address (127.0.0.2, .3, … when more are wanted)")
        ->capture_default_str()
        ->check(CLI::Range(100, 20000));
  }
  idle->add_option("--conns", o.conns, "sockets to open")->capture_default_str()->check(CLI::Range(1, 1000000));
  idle->add_option("--hold", o.hold, "seconds to hold them before measuring RSS")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  fanout->add_option("--members", o.members, "member sockets (receivers)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  fanout->add_option("--senders", o.senders, "sending users (extra members of the room)")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  fanout->add_option("--send-via", o.send_via, "rest (POST …/messages) or ws (send_message)")
      ->capture_default_str()
      ->check(CLI::IsMember({"rest", "ws"}));
  fanout->add_option("--messages", o.messages, "messages to send in all (default 1000 unless --duration)")
      ->check(CLI::Range(1L, 100000000L));
  fanout->add_option("--duration", o.duration, "stop sending after this many seconds")->check(CLI::Range(0.0, 86400.0));
  fanout->add_option("--rate", o.rate, "total send rate, messages/s (0: as fast as possible)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  fanout->add_option("--settle", o.settle, "seconds to wait after every socket is open before the first send")
      ->check(CLI::Range(0.0, 600.0));
  fanout->add_option("--drain-timeout", o.drain_timeout, "seconds to wait for deliveries after the last send")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  fanout->add_option("--ws-window", o.ws_window, "unacknowledged WebSocket sends per sender")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  CLI11_PARSE(app, argc, argv);
  o.scenario = idle->parsed() ? "idle" : fanout->parsed() ? "fanout" : extra.parsed();
  if (o.target != "parley") {
    auto* sub = idle->parsed() ? idle : fanout;
    std::string bad;
    if (parley::bench::is_extra_scenario(o.scenario)) bad = "a peer runs only the idle and fanout scenarios";
    else if (!o.server_bin.empty()) bad = "--server-bin is for --target parley (use --peer-cmd)";
    else if (!o.server_args.empty()) bad = "--server-arg is for --target parley";
    else if (o.endpoint != "sidebar") bad = "--endpoint is for --target parley (a peer has one room)";
    else if (o.scenario == "fanout" && sub->count("--send-via") > 0 && o.send_via != "ws")
      bad = "a peer takes sends over WebSocket only (--send-via ws)";
    if (!bad.empty()) {
      std::fprintf(stderr, "parley-bench: --target %s: %s\n", o.target.c_str(), bad.c_str());
      return 2;
    }
    o.send_via = "ws";
  } else if (o.url.empty() == o.server_bin.empty()) {
    std::fprintf(stderr, "parley-bench: give exactly one of --server-bin PATH or --url http://127.0.0.1:PORT\n");
    return 2;
  }

  if (parley::bench::is_extra_scenario(o.scenario)) extra.defaults(o);
  long fds = parley::bench::raise_fd_limit();
  long wanted = (parley::bench::is_extra_scenario(o.scenario) ? extra.fds_wanted(o)
                 : o.scenario == "idle"                       ? o.conns
                                                              : o.members + o.senders) +
                64L + o.setup_concurrency;
  std::printf("parley-bench %s: open-file limit raised to %ld\n", o.scenario.c_str(), fds);
  if (fds > 0 && wanted > fds) {
    std::fprintf(stderr, "parley-bench: %ld sockets need about %ld open files, but the limit is %ld\n",
                 wanted - 64L - o.setup_concurrency, wanted, fds);
    return 2;
  }
  if (o.target != "parley")
    std::printf("params: target=%s (a bench/peers/ server: no users, one room, nothing persisted)\n", o.target.c_str());
  if (parley::bench::is_extra_scenario(o.scenario)) {
    // printed by the scenario, with its defaults resolved
  } else if (o.scenario == "idle")
    std::printf("params: scenario=idle conns=%d users=%d endpoint=%s hold_s=%.1f threads=%d timeout_s=%.0f\n", o.conns,
                o.users > 0 ? std::min(o.users, o.conns) : std::min(o.conns, 100), o.endpoint.c_str(), o.hold,
                o.threads, o.timeout);
  else
    std::printf(
        "params: scenario=fanout members=%d users=%d senders=%d send_via=%s endpoint=%s messages=%ld duration_s=%.1f "
        "rate=%.0f threads=%d timeout_s=%.0f\n",
        o.members, o.users > 0 ? o.users : o.members, o.senders, o.send_via.c_str(), o.endpoint.c_str(), o.messages,
        o.duration, o.rate, o.threads, o.timeout);
  std::fflush(stdout);
  parley::bench::Bench b(o);
  return b.run();
}
