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
