// Which Redis channels carry an event. Room events (MessageCreated, MessageRead,
// MessageDelivered, Typing, ReactionChanged) go to one channel per room, subscribed by every instance with a
// member of the room online (Hub →
// Bus::watch_room), so a message costs one PUBLISH and one copy per such instance whatever
// the room's size. Membership events go to the user's channel, subscribed by the instances
// where the user is connected (Hub → Bus::watch_user): that is how an instance learns that
// a connected user joined a room it must now follow. One broadcast channel for what every
// instance needs whatever it watches (TokensRevoked: each instance caches token versions).
// RoomUpdated of a change to an existing room goes to the room's channel (the instances of
// the members who stay follow it) and to the channel of the member it added (whose instance
// may follow nothing of the room yet): one payload, PUBLISHed on each, received once per
// instance (the subscriber drops copies by tag). RoomUpdated of a new room goes to the
// broadcast channel: nobody follows the room yet, and one PUBLISH with one copy per instance
// is cheaper than one per first member (up to 1,000) of a payload that lists them all.
// Presence goes to the broadcast channel for the same reason (its audience: up to 10,000).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "chat/events.h"
#include "common/ids.h"

namespace parley::bus {

inline std::string user_channel(std::string_view prefix, Id user) {
  return std::string(prefix) + "u:" + std::to_string(user);
}
inline std::string room_channel(std::string_view prefix, Id room) {
  return std::string(prefix) + "r:" + std::to_string(room);
}
inline std::string broadcast_channel(std::string_view prefix) { return std::string(prefix) + "all"; }

// The channel to publish e on (RoomUpdated: see channels_for).
inline std::string channel_for(const chat::Event& e, std::string_view prefix) {
  if (const auto* m = std::get_if<chat::MessageCreated>(&e)) return room_channel(prefix, m->message.room_id);
  if (const auto* r = std::get_if<chat::MessageRead>(&e)) return room_channel(prefix, r->room);
  if (const auto* d = std::get_if<chat::MessageDelivered>(&e)) return room_channel(prefix, d->room);
  if (const auto* j = std::get_if<chat::MemberJoined>(&e)) return user_channel(prefix, j->user);
  if (const auto* l = std::get_if<chat::MemberLeft>(&e)) return user_channel(prefix, l->user);
  if (const auto* t = std::get_if<chat::Typing>(&e)) return room_channel(prefix, t->room);
  if (const auto* x = std::get_if<chat::ReactionChanged>(&e)) return room_channel(prefix, x->room);
  if (const auto* p = std::get_if<chat::UploadProgress>(&e)) return user_channel(prefix, p->user);
  if (const auto* u = std::get_if<chat::RoomUpdated>(&e); u && !u->created) return room_channel(prefix, u->room);
  return broadcast_channel(prefix);  // TokensRevoked, a new room's RoomUpdated, Presence
}

// Every channel to publish e on, the same payload on each: channel_for's, and for the
// RoomUpdated of an add the added member's too.
inline std::vector<std::string> channels_for(const chat::Event& e, std::string_view prefix) {
  std::vector<std::string> out{channel_for(e, prefix)};
  if (const auto* u = std::get_if<chat::RoomUpdated>(&e); u && !u->created)
    for (Id j : u->joined) out.push_back(user_channel(prefix, j));
  return out;
}

// What a channel name is: a user's, a room's (with its id) or neither (the broadcast one,
// or a name that is not ours).
struct ChannelOf {
  enum Kind { None, User, Room } kind = None;
  Id id = 0;
  bool operator==(const ChannelOf&) const = default;
};
inline ChannelOf parse_channel(std::string_view ch, std::string_view prefix) {
  if (ch.substr(0, prefix.size()) != prefix) return {};
  ch.remove_prefix(prefix.size());
  ChannelOf::Kind kind = ch.substr(0, 2) == "u:" ? ChannelOf::User : ch.substr(0, 2) == "r:" ? ChannelOf::Room : ChannelOf::None;
  if (kind == ChannelOf::None) return {};
  Id id = parse_id(ch.substr(2)).value_or(0);
  if (id == 0) return {};
  return {kind, id};
}

}  // namespace parley::bus
