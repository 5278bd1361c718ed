#include "api/ws_inbound.h"

#include <boost/json.hpp>

#include "api/events_json.h"
#include "common/time.h"

namespace parley::api {
namespace json = boost::json;

std::string answer_client_frame(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return error_frame("invalid_json", "a frame must be a JSON object");
  const auto& o = v.as_object();
  auto t = o.if_contains("type");
  if (!t || !t->is_string()) return error_frame("invalid_request", "type must be a string");
  std::string_view type = t->as_string();
  const json::value* data = o.if_contains("data");
  if (data && !data->is_object() && !data->is_null()) return error_frame("invalid_request", "data must be an object");
  const json::value* ts = (data && data->is_object()) ? data->as_object().if_contains("timestamp") : nullptr;
  auto reply = [&](const char* rtype, json::value stamp) {
    return json::serialize(json::object{
        {"type", rtype},
        {"data", json::object{{"timestamp", std::move(stamp)}, {"server_time", format_rfc3339(now_ms())}}}});
  };
  if (type == "ping") {
    if (!ts || !ts->is_number()) return error_frame("invalid_request", "ping needs data.timestamp as a number");
    return reply("pong", *ts);
  }
  if (type == "heartbeat") {
    if (ts && !ts->is_number()) return error_frame("invalid_request", "heartbeat data.timestamp must be a number");
    return reply("heartbeat_ack", ts ? *ts : json::value(now_ms()));
  }
  return error_frame("unknown_type", "unknown message type");
}

}  // namespace parley::api
