// Which Redis channels carry an event. Per-user channels: an instance subscribes to the
// channel of every user with a connection there (Hub → Bus::watch_user), so it receives
// exactly the events its connections need, and a membership change needs no subscription
// change (the event names its members). One broadcast channel for what every instance
// needs whatever it watches (TokensRevoked: each instance caches token versions).
#pragma once
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "chat/events.h"
#include "common/ids.h"

namespace parley::bus {

inline std::string user_channel(std::string_view prefix, Id user) {
  return std::string(prefix) + "u:" + std::to_string(user);
}
inline std::string broadcast_channel(std::string_view prefix) { return std::string(prefix) + "all"; }

// The users an event concerns, sorted and distinct (empty for a broadcast event).
inline std::vector<Id> concerned_users(const chat::Event& e) {
  std::vector<Id> users;
  if (const auto* m = std::get_if<chat::MessageCreated>(&e)) {
    for (const auto& ms : m->members) users.push_back(ms.user);
    users.push_back(m->message.sender_id);  // the sender's other devices get the echo
  } else if (const auto* r = std::get_if<chat::MessageRead>(&e)) {
    users = r->members;
    users.push_back(r->reader);  // the reader's badge
  } else if (const auto* j = std::get_if<chat::MemberJoined>(&e)) {
    users.push_back(j->user);
  } else if (const auto* l = std::get_if<chat::MemberLeft>(&e)) {
    users.push_back(l->user);
  }
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  return users;
}

// The channels to publish e on: the broadcast one for TokensRevoked, else one per user.
inline std::vector<std::string> channels_for(const chat::Event& e, std::string_view prefix) {
  std::vector<std::string> out;
  if (std::holds_alternative<chat::TokensRevoked>(e)) {
    out.push_back(broadcast_channel(prefix));
    return out;
  }
  for (Id u : concerned_users(e)) out.push_back(user_channel(prefix, u));
  return out;
}

// The user of a user channel (0 when ch is not one).
inline Id channel_user(std::string_view ch, std::string_view prefix) {
  if (ch.substr(0, prefix.size()) != prefix) return 0;
  ch.remove_prefix(prefix.size());
  if (ch.substr(0, 2) != "u:") return 0;
  return parse_id(ch.substr(2)).value_or(0);
}

}  // namespace parley::bus
