#include "bus/open_bus.h"

#include <stdexcept>

#include "bus/redis_bus.h"

namespace parley::bus {

std::unique_ptr<Bus> open_bus(std::string_view url) {
  if (url.empty()) return std::make_unique<LocalBus>();
  std::string error;
  auto opts = parse_redis_url(url, &error);
  if (!opts) throw std::invalid_argument(error);
  return std::make_unique<RedisBus>(std::move(*opts));
}

}  // namespace parley::bus
