# Smoke run of parley-bench (ctest bench_smoke): a short run of every scenario (fanout over REST,
# idle, chat, rest, reconnect-storm) against throwaway servers; each must exit 0 and end with
# its RESULT line.
# cmake -DBENCH=path/to/parley-bench -DSERVER=path/to/parley -P smoke.cmake
# One run per element; its arguments are separated by spaces.
set(runs
  "fanout --members 20 --senders 2 --messages 200 --rate 500 --send-via rest"
  "idle --conns 200 --hold 0.2"
  "chat --rooms 20 --room-size 4 --users 8 --member-rate 5 --duration 1"
  "rest --connections 4 --duration 1 --read-duration 0.5"
  "reconnect-storm --conns 100 --rooms 4 --users 25 --outage-messages 5")
foreach(shown IN LISTS runs)
  separate_arguments(args UNIX_COMMAND "${shown}")
  list(GET args 0 scenario)
  execute_process(COMMAND ${BENCH} ${args} --server-bin ${SERVER} --timeout 60
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("parley-bench ${shown}\n${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "parley-bench ${shown} exited with ${rc}")
  endif()
  if(NOT out MATCHES "(^|\n)RESULT scenario=${scenario} [^\n]*status=ok\n$")
    message(FATAL_ERROR "parley-bench ${shown} printed no final RESULT line")
  endif()
endforeach()
# The same two scenarios against each peer (bench/peers/: Node ws, Socket.IO) when its
# packages are installed (scripts/test.sh runs `npm ci` there): parley-bench starts
# `node PEERS/…_peer.mjs` itself.
set(peer_runs
  "idle --target ws-peer --conns 100 --hold 0.2"
  "fanout --target ws-peer --members 20 --senders 2 --messages 200 --rate 500"
  "idle --target socketio-peer --conns 100 --hold 0.2"
  "fanout --target socketio-peer --members 20 --senders 2 --messages 200 --rate 500")
if(NOT DEFINED PEERS OR NOT EXISTS "${PEERS}/node_modules/ws" OR NOT EXISTS "${PEERS}/node_modules/socket.io")
  message("skipping the peer runs: ${PEERS}/node_modules is not installed (cd bench/peers && npm ci)")
  return()
endif()
foreach(shown IN LISTS peer_runs)
  separate_arguments(args UNIX_COMMAND "${shown}")
  list(GET args 0 scenario)
  list(GET args 2 target)
  execute_process(COMMAND ${BENCH} ${args} --peers-dir ${PEERS} --timeout 60
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("parley-bench ${shown}\n${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "parley-bench ${shown} exited with ${rc}")
  endif()
  if(NOT out MATCHES "(^|\n)RESULT scenario=${scenario} [^\n]* target=${target} status=ok\n$")
    message(FATAL_ERROR "parley-bench ${shown} printed no final RESULT line for ${target}")
  endif()
endforeach()
