#pragma once
#include <memory>
#include <string_view>

#include "bus/bus.h"

namespace parley::bus {

// The bus named by --bus: "" → LocalBus (one instance), redis://HOST:PORT → RedisBus.
// Throws std::invalid_argument (with the reason) for anything else.
std::unique_ptr<Bus> open_bus(std::string_view url);

}  // namespace parley::bus
