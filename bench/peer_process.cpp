#include "peer_process.h"

#include <stdexcept>

namespace parley::bench {

#ifndef PARLEY_BENCH_PEERS_DIR
#define PARLEY_BENCH_PEERS_DIR "bench/peers"
#endif
const char* default_peers_dir() { return PARLEY_BENCH_PEERS_DIR; }

std::vector<std::string> split_command(const std::string& cmd) {
  std::vector<std::string> out;
  std::string word;
  for (char c : cmd) {
    if (c == ' ' || c == '\t') {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

std::unique_ptr<ChildProcess> start_peer(std::vector<std::string> argv, int cpu, double startup_timeout_s) {
  if (argv.empty()) throw std::runtime_error("empty peer command");
  argv.insert(argv.end(), {"--port", "0"});
  auto find_url = [](const std::string& out) -> std::string {
    const std::string marker = "LISTENING port=";
    auto pos = out.find(marker);
    if (pos == std::string::npos) return "";
    auto end = out.find('\n', pos);
    if (end == std::string::npos) return "";
    return "http://127.0.0.1:" + out.substr(pos + marker.size(), end - pos - marker.size());
  };
  return std::make_unique<ChildProcess>(std::move(argv), cpu, startup_timeout_s, "the peer", find_url);
}

}  // namespace parley::bench
