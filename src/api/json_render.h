#pragma once
#include <boost/json/value.hpp>

#include "chat/service.h"
#include "chat/types.h"

namespace parley::api {

// The contract's JSON shapes of the domain objects.
boost::json::object to_json(const chat::User& u);
boost::json::object to_json(const chat::Message& m);
boost::json::object to_json(const chat::Reactions& r);  // {"<emoji>": ["<user_id>"…]}
boost::json::object to_json(const chat::Upload& u);  // {id, filename, content_type, size, sha256, url?}
boost::json::object to_json(const chat::RoomView& r);
boost::json::value to_json(const std::optional<chat::Message>& m);
boost::json::object to_json(const chat::ReadResult& r);
boost::json::array to_json(const std::vector<chat::User>& users);

}  // namespace parley::api
