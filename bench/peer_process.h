// A peer server under test (bench/peers/: Node `ws`, Socket.IO) as a child process: started
// from a command line with `--port 0` appended, pinned to a CPU, its port read from the
// "LISTENING port=N" line it prints, stopped with SIGTERM. No Beast or Asio here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server_process.h"

namespace parley::bench {

// Runs argv (argv[0] looked up in PATH) with "--port 0" appended, through ChildProcess; waits
// up to `startup_timeout_s` for the LISTENING line.
std::unique_ptr<ChildProcess> start_peer(std::vector<std::string> argv, int cpu, double startup_timeout_s);

// bench/peers/ of the source tree this binary was built from.
const char* default_peers_dir();

// Splits a command line on spaces and tabs (no quoting); empty words are dropped.
std::vector<std::string> split_command(const std::string& cmd);

}  // namespace parley::bench
