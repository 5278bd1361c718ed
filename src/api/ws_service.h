#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/fanout.h"
#include "api/metrics.h"
#include "api/ws_gate.h"
#include "chat/service.h"

namespace parley::api {

// The identity of one WebSocket connection, given to every inbound handler.
struct WsIdentity {
  Id user = 0;
  Id room = 0;  // chatroom sockets: their room; 0 on the sidebar
  std::string connection_id;
};

// What one client frame asks for. reply: sent at once (when not empty). blocking: work that
// touches storage, to be run off the IO threads; what it returns is sent when it is done.
// The connection runs one blocking call at a time, in the order its frames came.
struct Inbound {
  std::string reply;
  std::function<std::string()> blocking;
};

// Where a validated `typing` frame goes (net::Hub, which knows the user's rooms from their
// badge tracker, coalesces the frames and carries them to the room; docs/decisions.md
// "Typing"). Called on the connection's strand; never blocks.
class TypingDesk {
 public:
  enum class Verdict {
    Sent,       // taken (what goes out to the room, if anything, is the desk's business)
    NotMember,  // the user is not a member of the room: nothing goes out
    Unknown,    // the desk does not know the user's rooms yet: check storage, then call again
    Full,       // the typing table is at its bound: nothing goes out
  };
  virtual ~TypingDesk() = default;
  // member_checked: the caller read the membership from storage (after Unknown).
  virtual Verdict typing(const WsIdentity& who, Id room, bool start, bool member_checked) = 0;
};

// The inbound dispatcher (CONTRACT.md "Client → server", "Sending over WebSocket"): a table
// from `type` to handler, like Router for REST. Parsing and validation happen before any
// storage work, so a refused frame costs no storage call and stores nothing.
class WsDispatcher {
 public:
  using Handler = std::function<Inbound(const WsIdentity&, const void* data, const std::optional<std::string>& cmid)>;
  WsDispatcher(chat::ChatService& chat, Metrics& metrics, const LoadGauge& load);
  // rate_limited: the connection's inbound budget is spent (the frame is parsed only to name
  // its client_msg_id in the error).
  Inbound dispatch(const WsIdentity& who, std::string_view text, bool rate_limited) const;
  // Where `typing` frames go; set once at wiring, before the first frame (without one,
  // `typing` is answered `error` `unavailable`).
  void attach_typing(TypingDesk* desk) { typing_ = desk; }

 private:
  std::map<std::string, Handler, std::less<>> handlers_;  // data: a boost::json::object*
  TypingDesk* typing_ = nullptr;
};

// What net/ needs from the rest of the process for WebSockets, so that it depends on api/
// alone: admission, the reads of catch-up (replay, badge snapshot, gap fills) and the
// inbound dispatcher. The reads are blocking: call them off the IO threads.
class WsService {
 public:
  WsService(chat::ChatService& chat, WsGate& gate, Metrics& metrics, LoadGauge& load)
      : chat_(chat), gate_(gate), metrics_(metrics), load_(load), dispatcher_(chat, metrics, load) {}

  Admission admit(const UpgradeRequest& req) { return gate_.admit(req); }
  std::optional<Admission> try_admit(const UpgradeRequest& req) { return gate_.try_admit(req); }
  // Never blocks: whether the admitted connection's token has been revoked since admission.
  bool revoked(const Admission& a) const { return gate_.revoked(a); }
  static std::string new_connection_id();

  std::vector<chat::RoomBadge> badge_snapshot(Id user) { return chat_.badge_snapshot(user); }
  // What a connected user's state is in storage, read again after a bus outage: their
  // badges and their token version (a revocation whose event was missed).
  struct Resync {
    std::vector<chat::RoomBadge> badges;
    std::int64_t token_version = 0;
  };
  Resync resync_state(Id user) {
    Resync r;
    r.token_version = chat_.token_version(user).value_or(0);
    r.badges = chat_.badge_snapshot(user);
    return r;
  }
  // The room's last_seq; throws parley::Error (403/404) when user is not a member.
  chat::Seq require_membership(Id user, Id room) { return chat_.require_membership(user, room); }
  std::vector<chat::Message> replay(Id user, Id room, chat::Seq after, int limit) {
    return chat_.messages_after(user, room, after, limit);
  }
  struct Fill {
    std::vector<Id> members;
    std::vector<chat::Message> messages;
  };
  Fill fill(Id room, chat::Seq after, chat::Seq before, int limit) {
    return Fill{chat_.active_member_ids(room), chat_.messages_between(room, after, before, limit)};
  }

  Inbound dispatch(const WsIdentity& who, std::string_view text, bool rate_limited) const {
    return dispatcher_.dispatch(who, text, rate_limited);
  }
  Metrics& metrics() { return metrics_; }
  LoadGauge& load() { return load_; }
  void attach_typing(TypingDesk& desk) { dispatcher_.attach_typing(&desk); }

 private:
  chat::ChatService& chat_;
  WsGate& gate_;
  Metrics& metrics_;
  LoadGauge& load_;
  WsDispatcher dispatcher_;
};

}  // namespace parley::api
