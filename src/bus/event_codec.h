// The bus's wire format: one committed domain event (chat/events.h) as a compact JSON text,
// tagged with the publishing instance and a per-instance counter. The tag lets a receiver
// skip its own echo (the publisher delivers locally at once) and drop the extra copies of
// one event that arrive on several of its channels. Every field of every event round-trips.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "chat/events.h"

namespace parley::bus {

struct Envelope {
  std::uint64_t instance = 0;  // the publishing process (random at start)
  std::uint64_t number = 0;    // 1, 2, 3, … per publishing process
  chat::EventPtr event;
};

// {"v":1,"i":instance,"n":number,"t":"mc"|"mr"|"mj"|"ml"|"tr"|"ty","e":{…}}
std::string encode(const chat::Event& event, std::uint64_t instance, std::uint64_t number);

// nullopt when the text is not a well-formed envelope of a known version and type (any
// missing field, wrong type or out-of-range value); *error then says what was wrong.
std::optional<Envelope> decode(std::string_view text, std::string* error = nullptr);

}  // namespace parley::bus
