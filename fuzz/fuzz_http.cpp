// libFuzzer target: the bytes a client sends on one connection, through the same steps as
// net::HttpServer's session — the header through Beast's parser and the RFC 9112 framing
// check (net/http_request.h), the body, then RestApi::handle — request after request while
// the connection stays open; an upgrade request goes to the WebSocket gate (WsGate::admit).
// Checks: no crash or sanitizer report; no 5xx (the store never fails here); every body is
// valid UTF-8 JSON, errors with the contract's shape; and when the framing check passes,
// Beast's framing agrees with it (a Transfer-Encoding means chunked, and chunked never goes
// with a Content-Length).
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <cstddef>
#include <cstdint>

#include "net/http_request.h"
#include "world.h"

namespace http = boost::beast::http;
using namespace parley;

namespace {
constexpr std::size_t kMaxBody = 1024 * 1024;  // net::HttpOptions defaults
constexpr std::uint32_t kMaxHeader = 16 * 1024;

void check_response(const api::Response& r) {
  if (r.status < 200 || r.status >= 500) fuzz::fail("status outside 2xx-4xx", std::to_string(r.status) + " " + r.body);
  if (r.status == 204) {
    if (!r.body.empty()) fuzz::fail("204 with a body", r.body);
    return;
  }
  if (r.content_type != "application/json") return;  // /metrics
  auto v = fuzz::require_json(r.body, "response body is not valid UTF-8 JSON");
  if (r.status >= 400) {
    auto* o = v.if_object();
    auto* e = o ? o->if_contains("error") : nullptr;
    if (!e) fuzz::fail("error without {\"error\":…}", r.body);
    fuzz::require_error_shape(*e, r.body, "error body without code/message");
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool trace = std::getenv("PARLEY_FUZZ_TRACE") != nullptr;  // print each answer
  fuzz::World w;
  std::string bytes = w.with_tokens(std::string_view(reinterpret_cast<const char*>(data), size));
  std::string_view in(bytes);
  for (int requests = 0; requests < 16 && !in.empty(); ++requests) {
    net::RequestParser parser;
    parser.body_limit(kMaxBody);
    parser.header_limit(kMaxHeader);
    std::size_t parsed = 0;
    net::HeadStep step = net::feed_head(parser, in, parsed);
    if (step.status != net::HeadStep::done) return 0;  // waits for more, or 4xx and closed
    // The framing check passed: Beast must frame the body the same way.
    auto& msg = parser.get();
    bool te = msg.find(http::field::transfer_encoding) != msg.end();
    bool cl = msg.find(http::field::content_length) != msg.end();
    if (te && !parser.chunked())
      fuzz::fail("Transfer-Encoding accepted, but Beast does not read chunked", in.substr(0, parsed));
    if (parser.chunked() && cl) fuzz::fail("chunked together with Content-Length", in.substr(0, parsed));
    if (cl && !parser.content_length()) fuzz::fail("Content-Length accepted, but Beast has none", in.substr(0, parsed));
    in.remove_prefix(parsed);
    while (!parser.is_done()) {
      if (in.empty()) return 0;  // the server would wait for the rest of the body
      boost::beast::error_code ec;
      std::size_t used = parser.put(boost::asio::const_buffer(in.data(), in.size()), ec);
      in.remove_prefix(used);
      if (ec == http::error::need_more) {
        if (used == 0) return 0;
        continue;
      }
      if (ec) return 0;  // 400/413 and the connection is closed
    }
    auto& req = parser.get();
    if (boost::beast::websocket::is_upgrade(req)) {  // the WebSocket gate decides, then the socket is not HTTP
      api::UpgradeRequest ur{std::string(req.target()), std::string(req[http::field::authorization]),
                             std::string(req[http::field::origin]), std::string(req[http::field::host])};
      api::Admission adm = w.gate.admit(ur);
      if (trace)
        std::fprintf(stderr, "upgrade %s -> %s %d %s\n", ur.target.c_str(), adm.accepted ? "accepted" : "refused",
                     adm.refusal.status, adm.refusal.body.c_str());
      if (!adm.accepted) check_response(adm.refusal);
      return 0;
    }
    bool keep_alive = req.keep_alive();
    api::Request r = net::to_api_request(req, "203.0.113.7");
    api::Response resp = w.rest.handle(r);
    if (trace)
      std::fprintf(stderr, "%s %s -> %d %s\n", r.method.c_str(), r.target.c_str(), resp.status, resp.body.c_str());
    check_response(resp);
    if (!keep_alive) return 0;
  }
  return 0;
}
