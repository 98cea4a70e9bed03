# Sourced by scripts/demo.sh: the services a script runs in the background, and their teardown.
# `start CMD...` runs each in its own session, so a Ctrl-C reaches the script alone (a broker that took it
# too would be gone before the device could flush to it); `stop_all` stops them in the reverse order of
# their start (the device before the service, the service before the broker), each with SIGTERM, and kills
# whatever still runs STOP_WAIT_S (4) seconds after the first.
pids=()

start() {
  setsid "$@" &
  pids+=($!)
}

_now_ms() { date +%s%3N; }

_alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]
}

stop_all() {
  local deadline=$(($(_now_ms) + ${STOP_WAIT_S:-4} * 1000)) i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || continue
    while _alive "${pids[i]}" && (($(_now_ms) < deadline)); do sleep 0.05; done
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
