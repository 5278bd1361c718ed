// Randomized model-based test of rooms, membership, messages and read state.
//
// A seeded PRNG drives several hundred random operations by a handful of users over a few
// rooms (group rooms with random initial members, and a direct room). The test keeps a small
// reference model — per room the messages (sender, seq, id), per (room, user) the read
// watermark, the membership and the creator — and after every step compares what the server
// says with the model (CONTRACT.md "Read status" and its invariant, docs/decisions.md
// "Read state"):
//   - sending moves the sender's watermark to the sent message;
//   - reading message S moves the watermark to max(w, S), never backwards;
//   - a (re)join sets the watermark to max(old, last_seq);
//   - unread = #messages with seq > watermark and sender != user;
//   - every room route answers 403 to non-members, nothing changes.
// Operations: send (with new, repeated and foreign client_msg_ids), single read, bulk read
// (sometimes with a foreign or unknown id: all or nothing), mark-all-read, add (new member,
// present member, re-join), remove (self-leave, creator removes, non-creator → 403, direct →
// 400), and a "burst" of concurrent sends/reads/mark-all-reads in one room whose end state
// is reconciled from the answers.
// Every step checks GET /api/messages/unread-counts and GET /api/chatrooms/:id/first-unread for
// every user and room, and read-by-who for a couple of random messages; every FULL_EVERY
// steps (and at the end) also GET /api/chatrooms, GET /api/messages/latest, non-member probes,
// and at the end every message's read-by-who and the full history of every room.
//
// Sends are mixed: about half go over REST, the others as WebSocket `send_message` on one of
// the sender's sockets (CONTRACT.md "Sending over WebSocket"; the choice of transport and socket
// comes from its own PRNG stream, so a seed's operations stay as they were). A WS send must
// be answered on its socket by `ack` {"client_msg_id","message"} with the message the model
// expects (the original one for a repeated client_msg_id, shared with REST), or by `error`
// `forbidden` for a non-member; bursts mix both transports too.
//
// Every user also keeps a sidebar WebSocket (`/ws?token=…`, CONTRACT.md "WebSocket") open for
// the whole run, and a few users a second one (a second device). After every WS_EVERY steps
// (default every step), once its events have settled (up to 3 s), on every open connection:
//   - every message has arrived as `new_message` exactly once, in strictly increasing seq per
//     room, if the connection's user was a member other than its sender when it was sent
//     (without `echo`), or if the connection belongs to the sender and did not send it itself
//     (with "echo":true, CONTRACT.md "Multi-device": every sidebar of the sender for a REST
//     send, all but the sending one for a WS send); never for a room the user was not in,
//     never on the connection that sent it;
//   - per room, the `unread_count_update`s never go backwards (last_seq never decreases; at
//     equal last_seq the count never grows), and the newest one (highest last_seq, then lowest
//     unread_count) carries the model's unread count, and a last_seq no higher than the
//     room's, with only the user's own messages above it (an update is sent when the count
//     changes, and a user's own message, echo or not, leaves their count as it was);
//   - `message_read` only for rooms the user has been in, never above the room's last_seq;
//   - `message_delivered` only for rooms the user has been in, per (room, user) strictly
//     increasing on a connection, never above the room's last_seq nor the model's delivered
//     watermark of that user.
// Delivered (CONTRACT.md "Delivered"): between steps, from a PRNG stream of its own (so that
// a seed's other operations stay as they were), a user sends `delivered` {room_id,
// up_to_seq} on one of their sidebars, with an up_to_seq at, below or above the room's
// last_seq. The model's delivered watermark of (room, user) is max(every `delivered`, clamped
// to last_seq at that moment; the read watermark): a read, a send and a join raise it with
// the read one. A move must come back as `message_delivered` on that socket; a non-member
// gets `error` `forbidden`. read-by-who's `delivered_to` must list exactly the members but
// the sender whose delivered watermark is at or past the message, each `delivered_at` fixed
// once seen, not before the message, not after that member's `read_at`.
// Reactions (CONTRACT.md "Reactions"): between steps, from a PRNG stream of its own, a user
// PUTs or DELETEs one of four emoji (👍, ❤️ with VS16, a ZWJ family, a flag) on a random
// message of one of their rooms (sometimes of another room: 403 forbidden). The model keeps
// per message emoji → users in the order they reacted; the answer must be exactly the model's
// map, a change must reach every open sidebar of every member as exactly one `reaction`
// {message_id, room_id, user_id, emoji, action} (awaited before the next operation), a call
// that changes nothing (a repeated add, removing what is not there) none: any `reaction` not
// due on a connection is a problem. new_message must carry a `reactions` map, and at the end
// every room's history must carry exactly the model's reactions on every message.
// A few times during the run (between steps, from a separate PRNG stream so that the REST
// operations of a seed stay as they were) one of a user's sidebars is closed and reopened,
// and the snapshot right after `connected` must be exactly one update per room of the user
// with the model's unread_count, last_seq and total_unread. At the end, each open
// connection's newest update per room is compared with GET /api/messages/unread-counts and
// GET /api/chatrooms.
//
// Two cases: a few users (PARLEY_MODEL_USERS, default 5) for many steps, and many distinct
// users (PARLEY_MODEL_MANY_USERS, default 1,000; 0 skips it) for fewer steps
// (PARLEY_MODEL_MANY_STEPS, default 60), where one group holds everyone. With many users,
// each step checks the REST state of a sample of users (PARLEY_MODEL_SAMPLE, default 24) and
// every FULL_EVERY steps and at the end the unread counts of all of them (the room lists,
// with every member inlined, of a sample only); sidebars are checked on every connection.
//
// Env: PARLEY_MODEL_SEED (default fixed), PARLEY_MODEL_STEPS (default 400),
// PARLEY_MODEL_FULL_EVERY (default 10), PARLEY_MODEL_WS_EVERY (default 1),
// PARLEY_MODEL_WS_SEND_SHARE (share of sends over WebSocket, default 0.5),
// PARLEY_MODEL_REACTION_SHARE (share of steps followed by a reaction call, default 0.25). A failure names
// the seed, the case, the step and the operation, and the last PARLEY_MODEL_HISTORY (default 12)
// operations.
// The model and the run live in lib/model.mjs (scale_out.test.mjs runs them over two instances).
import { test } from 'node:test';
import { DEFAULT_SEED as SEED, STEPS_FEW, USERS_FEW, USERS_MANY, STEPS_MANY, runModel } from './lib/model.mjs';

test(`model-based read state, ${USERS_FEW} users (seed ${SEED}, ${STEPS_FEW} steps)`, { timeout: 300_000 },
  (t) => runModel(t, { caseName: 'few', nUsers: USERS_FEW, steps: STEPS_FEW }));

test(`model-based read state, ${USERS_MANY} distinct users (seed ${SEED}, ${STEPS_MANY} steps)`,
  { timeout: 300_000, skip: USERS_MANY < 2 ? 'PARLEY_MODEL_MANY_USERS < 2' : false },
  (t) => runModel(t, { caseName: 'many', nUsers: USERS_MANY, steps: STEPS_MANY }));
