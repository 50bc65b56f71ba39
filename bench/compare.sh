#!/usr/bin/env bash
# Side-by-side benchmark: runs the load generator (bench/run.ts) against Parley, ejabberd and Prosody in one
# run, each on loopback with the configuration in bench/servers/, and prints one table with ratios to Parley.
#
#   bash bench/compare.sh [--install] [--servers parley,ejabberd,prosody] [--scenarios login,idle,msg]
#                         [--runs 3] [--quick] [--users N] [--keep] [sizes...]
#
# --install    apt-get install ejabberd and prosody (Debian's packages; plus their SQLite drivers for the mam
#              scenario), then stop and disable the daemons the packages come with.
# --servers    which servers, in order (default parley,ejabberd,prosody)
# --scenarios  login, idle, msg (closed loop at full speed, the same with stream management enabled, and open
#              loop at 1,000 msgs/s), offline, mam, and login-plain, idle-plain (without TLS: the servers are
#              restarted with STARTTLS optional for these) (default login,idle,msg)
# --runs       runs of each scenario per server; the table shows the median (default 3)
# --quick      short runs and 1,000 users/sessions instead of 10,000: a smoke test, not a measurement
# --users      accounts user1..userN for login and idle (default 10,000, 1,000 with --quick); msg, offline and
#              mam runs get accounts of their own above these (see "Accounts" below)
# --keep       keep the temp dir (configs, logs, databases) instead of deleting it
# --check      no generator: start each server, register the users, check STARTTLS answers, stop
#
# Sizes (defaults: the full run; --quick sets smaller ones; an explicit option wins over both):
# --duration S          seconds of each login and msg run (default 10, 3 with --quick)
# --sessions N          idle sessions (default 10,000, 1,000 with --quick; at most --users)
# --pairs P             msg and offline sender/receiver pairs (default 50)
# --offline-messages M  messages the offline scenario stores and drains (default 10,000, 1,000 with --quick)
# --mam-messages M      messages mam-fill puts in the archive before the mam runs page through it (default
#                       100,000, 10,000 with --quick); ejabberd and Prosody archive a few hundred a second here
# --mam-pages N         pages of 50 each mam run fetches (default 100)
# --mam-cap S           time cap of the archive fill, in seconds (default 1,800); a fill that hits it fails
#
# Accounts: login and idle use user1..userN. Every msg, offline and mam-fill attempt logs in accounts of its own,
# above userN (2 x pairs of them; mam: 2), so nothing one run leaves behind (messages stored offline when a run
# logs out with messages in flight) reaches the next; the mam runs page through the archive of the last fill's
# first account. compare.sh registers enough accounts for every run and retry.
#
# Each server runs pinned to CPU 0 (taskset -c 0), the generator pinned to CPU 1. Before each run the script
# waits up to QUIET_WAIT seconds (default 60) for the rest of the machine to be under QUIET_PERCENT (default 10)
# percent busy; during the run it measures what other processes took of each CPU, and a run disturbed by more
# than QUIET_PERCENT is done again, up to RETRIES (default 2) times. Readings go with the figures.
# GEN_WORKERS (default 1) sets the generator's --workers. The JSON lines go to .bench-out/compare-<time>.jsonl, the table to .bench-out/compare-<time>.md
# and to stdout.
# Every step is bounded by a timeout, and every server started here is stopped on exit (trap EXIT).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -d "$HOME/.node24/node_modules/.bin" ]] && PATH="$HOME/.node24/node_modules/.bin:$PATH"
NODE="${NODE:-node}"

SERVERS="parley,ejabberd,prosody"
SCENARIOS="login,idle,msg"
RUNS=3
QUICK=0
INSTALL=0
KEEP=0
USERS=""
CHECK=0
ORIG_ARGS="$*"
OPT_DURATION=""
OPT_SESSIONS=""
OPT_PAIRS=""
OPT_MESSAGES=""
OPT_MAM_MESSAGES=""
OPT_MAM_PAGES=""
OPT_MAM_CAP=""

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --install) INSTALL=1; shift ;;
    --servers) SERVERS="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --users) USERS="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --check) CHECK=1; shift ;;
    --duration) OPT_DURATION="$2"; shift 2 ;;
    --sessions) OPT_SESSIONS="$2"; shift 2 ;;
    --pairs) OPT_PAIRS="$2"; shift 2 ;;
    --offline-messages) OPT_MESSAGES="$2"; shift 2 ;;
    --mam-messages) OPT_MAM_MESSAGES="$2"; shift 2 ;;
    --mam-pages) OPT_MAM_PAGES="$2"; shift 2 ;;
    --mam-cap) OPT_MAM_CAP="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
  esac
done

# Ports: one block per server, so a leftover of one can never answer for another.
# Below the ephemeral range (32768-60999), so no outgoing connection can take them. PORT_OFFSET moves them all
# (e.g. to smoke-test while another compare.sh runs; the figures of two runs at once mean nothing).
PORT_OFFSET="${PORT_OFFSET:-0}"
declare -A PORT=([parley]=$((17222 + PORT_OFFSET)) [ejabberd]=$((27222 + PORT_OFFSET)) [prosody]=$((29222 + PORT_OFFSET)))
declare -A TLS_PORT=([parley]=$((17223 + PORT_OFFSET)) [ejabberd]=$((27223 + PORT_OFFSET)) [prosody]=$((29223 + PORT_OFFSET)))
# Parley's HTTP listeners (on by default, no benchmark traffic) in its own block too.
PARLEY_HTTP_PORT=$((17280 + PORT_OFFSET))
PARLEY_HTTPS_PORT=$((17281 + PORT_OFFSET))
EJABBERD_DIST_PORT=$((27299 + PORT_OFFSET))

IFS=, read -r -a SERVER_LIST <<<"$SERVERS"
IFS=, read -r -a SCENARIO_LIST <<<"$SCENARIOS"
for s in "${SERVER_LIST[@]}"; do
  [[ -n "${PORT[$s]:-}" ]] || { echo "compare.sh: unknown server '$s' (parley, ejabberd, prosody)" >&2; exit 64; }
done
for s in "${SCENARIO_LIST[@]}"; do
  case "$s" in login|idle|msg|offline|mam|login-plain|idle-plain) ;; *) echo "compare.sh: unknown scenario '$s'" >&2; exit 64 ;; esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --runs must be a positive integer" >&2; exit 64; }

# Scenario sizes. The full figures are the issue's (apart from the archive: 100,000 messages, not a million,
# which ejabberd and Prosody would take hours to archive); --quick only checks that everything works.
if [[ $QUICK == 1 ]]; then
  DURATION=3; SESSIONS=1000; MESSAGES=1000; MAM_MESSAGES=10000; DEFAULT_USERS=1000
else
  DURATION=10; SESSIONS=10000; MESSAGES=10000; MAM_MESSAGES=100000; DEFAULT_USERS=10000
fi
# msg: 50 pairs, both sides sending, 8 messages in flight per sender in the closed loop (800 in all), so the
# server rather than the round trip sets the rate.
PAIRS=50
WINDOW=8
MAM_PAGES=100
MAM_CAP=1800
positive() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: $1 must be a positive integer (got '$2')" >&2; exit 64; }; }
[[ -n $OPT_DURATION ]] && { positive --duration "$OPT_DURATION"; DURATION=$OPT_DURATION; }
[[ -n $OPT_SESSIONS ]] && { positive --sessions "$OPT_SESSIONS"; SESSIONS=$OPT_SESSIONS; }
[[ -n $OPT_PAIRS ]] && { positive --pairs "$OPT_PAIRS"; PAIRS=$OPT_PAIRS; }
[[ -n $OPT_MESSAGES ]] && { positive --offline-messages "$OPT_MESSAGES"; MESSAGES=$OPT_MESSAGES; }
[[ -n $OPT_MAM_MESSAGES ]] && { positive --mam-messages "$OPT_MAM_MESSAGES"; MAM_MESSAGES=$OPT_MAM_MESSAGES; }
[[ -n $OPT_MAM_PAGES ]] && { positive --mam-pages "$OPT_MAM_PAGES"; MAM_PAGES=$OPT_MAM_PAGES; }
[[ -n $OPT_MAM_CAP ]] && { positive --mam-cap "$OPT_MAM_CAP"; MAM_CAP=$OPT_MAM_CAP; }
USERS="${USERS:-$DEFAULT_USERS}"
positive --users "$USERS"
(( SESSIONS > USERS )) && SESSIONS=$USERS
# Several loopback source addresses, so 10,000 connections never run short of ephemeral ports.
SOURCES="127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4"
GEN_WORKERS="${GEN_WORKERS:-1}"
# CPU use by other processes (percent: of all cores before a run, of each pinned core during it) above which a
# run waits for the machine to calm down, or is done again.
QUIET_PERCENT="${QUIET_PERCENT:-10}"
QUIET_WAIT="${QUIET_WAIT:-60}"
RETRIES="${RETRIES:-2}"
[[ "$RETRIES" =~ ^[0-9]+$ ]] || { echo "compare.sh: RETRIES must be a number" >&2; exit 64; }

# Each scenario becomes one or more generator invocations: "label|scenario|arguments|accounts", where accounts
# is "" (user1..userN, shared), a number (every attempt gets that many accounts of its own) or "mam" (the
# accounts of the last mam-fill).
variants_for() {
  case "$1" in
    login) echo "login|login|--concurrency 50 --duration $DURATION|" ;;
    idle) echo "idle|idle|--sessions $SESSIONS --sources $SOURCES|" ;;
    login-plain) echo "login-plain|login|--tls none --concurrency 50 --duration $DURATION|" ;;
    idle-plain) echo "idle-plain|idle|--tls none --sessions $SESSIONS --sources $SOURCES|" ;;
    msg)
      echo "msg-closed|msg|--pairs $PAIRS --window $WINDOW --duration $DURATION|$((2 * PAIRS))"
      echo "msg-sm|msg|--pairs $PAIRS --window $WINDOW --duration $DURATION --sm|$((2 * PAIRS))"
      echo "msg-open|msg|--pairs $PAIRS --rate 1000 --duration $DURATION|$((2 * PAIRS))" ;;
    offline) echo "offline|offline|--pairs $PAIRS --messages $MESSAGES|$((2 * PAIRS))" ;;
    # mam-fill runs once (its first account sends the second the archive), then mam pages through the first
    # account's archive --runs times.
    mam)
      echo "mam-fill|mam-fill|--messages $MAM_MESSAGES --cap $MAM_CAP|2"
      echo "mam|mam|--page-size 50 --pages $MAM_PAGES|mam" ;;
  esac
}
# A generous bound on one generator run: its own duration plus time to connect and drain (the archive fill
# gets its own bound, from its cap).
GEN_TIMEOUT=$(( DURATION + 300 ))
FILL_TIMEOUT=$(( MAM_CAP + 300 ))

# Accounts of their own for every attempt of msg, offline and mam-fill (see "Accounts" above): how many to
# register above userN, enough for every run and every retry.
own_accounts_needed() {
  local s v total=0 label scen args accounts
  for s in "${SCENARIO_LIST[@]}"; do
    while IFS='|' read -r label scen args accounts; do
      [[ $accounts =~ ^[0-9]+$ ]] || continue
      local runs=$RUNS
      [[ $label == mam-fill ]] && runs=1
      total=$(( total + accounts * runs * (RETRIES + 1) ))
    done < <(variants_for "$s")
  done
  echo "$total"
}
TOTAL_USERS=$(( USERS + $(own_accounts_needed) ))
NEXT_ACCOUNT=$USERS   # the last account handed out; reset for each server
MAM_OFFSET=""         # the range of the last mam-fill attempt

log() { printf '%s compare: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------------------
# Installing the other servers, and making sure their system daemons are not running.

stop_system_daemons() {
  # No systemd here: the packages' init scripts may have started daemons (unless policy-rc.d forbade it).
  for svc in ejabberd prosody; do
    if [[ -x "/etc/init.d/$svc" ]]; then
      timeout 60 service "$svc" stop >/dev/null 2>&1 || true
      command -v update-rc.d >/dev/null && update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
  done
  # Whatever else runs as the packages' users is one of those daemons: stop it by pid. Servers started by a
  # compare.sh (this one or another running at the same time) are left alone: their command lines name the
  # benchmark's Erlang node or temp dir.
  local pids pid
  pids=""
  for pid in $( { pgrep -u ejabberd -x beam.smp || true; pgrep -u prosody -f '^lua[0-9.]* /usr/bin/prosody' || true; } ); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -e 'ejabberd-bench' -e '/parley-compare\.' || pids="$pids $pid"
  done
  for pid in $pids; do
    log "stopping system daemon pid $pid ($(ps -o comm= -p "$pid" 2>/dev/null || echo gone))"
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $pids; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

if [[ $INSTALL == 1 ]]; then
  [[ $(id -u) == 0 ]] || die "--install needs root (apt-get)"
  log "installing ejabberd and prosody from Debian's packages"
  timeout 600 apt-get update -q >/dev/null || die "apt-get update failed"
  # The SQLite drivers are only for the mam scenario's archives (see the two configurations).
  DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -q ejabberd prosody erlang-p1-sqlite3 \
    lua-dbi-sqlite3 >/dev/null || die "apt-get install ejabberd prosody failed"
fi
stop_system_daemons

for s in "${SERVER_LIST[@]}"; do
  case "$s" in
    ejabberd) command -v ejabberdctl >/dev/null || die "ejabberd is not installed: run with --install" ;;
    prosody) command -v prosody >/dev/null || die "prosody is not installed: run with --install" ;;
  esac
done
command -v taskset >/dev/null || die "taskset (util-linux) is needed to pin the servers and the generator"
command -v openssl >/dev/null || die "openssl is needed to make the run's certificate"
[[ $CHECK == 1 || -f "$ROOT/bench/run.ts" ]] || die "bench/run.ts (the load generator) is missing"
if [[ " ${SERVER_LIST[*]} " == *" parley "* ]]; then
  [[ -f "$ROOT/bench/setup-parley-users.ts" ]] || die "bench/setup-parley-users.ts is missing"
fi
# Servers and the generator each hold up to $SESSIONS sockets.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(( $(ulimit -n) > SESSIONS + 1000 )) || log "warning: ulimit -n is $(ulimit -n), the idle scenario may run out of files"

# ---------------------------------------------------------------------------------------------------------
# The run's temp dir and certificate.

WORK="$(mktemp -d /tmp/parley-compare.XXXXXX)"
chmod 755 "$WORK"
STAMP="$(date -u +%Y%m%d-%H%M%S)"
OUTDIR="$ROOT/.bench-out"
mkdir -p "$OUTDIR/logs"
OUT="$OUTDIR/compare-$STAMP.jsonl"
TABLE="$OUTDIR/compare-$STAMP.md"
LOGDIR="$OUTDIR/logs/compare-$STAMP"
mkdir -p "$LOGDIR"

CUR_SERVER=""   # the server currently running, for the EXIT trap
CUR_PGID=""
CUR_PID=""
CUR_PHASE=""

cleanup() {
  local code=$?
  if [[ -n "$CUR_SERVER" ]]; then stop_server "$CUR_SERVER" || true; fi
  if [[ $KEEP == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit $code
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One ECDSA P-256 certificate for "localhost", shared by all three servers, so the TLS handshake costs each
# of them the same; readable by the ejabberd and prosody users (it exists only for this run).
mkdir -p "$WORK/tls"
timeout 30 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
  -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" >/dev/null 2>&1 || die "openssl req failed"
cat "$WORK/tls/cert.pem" "$WORK/tls/key.pem" >"$WORK/tls/combined.pem"
chmod 644 "$WORK/tls/"*.pem

# Renders a config template for a phase: setup (with the bench:setup-only lines), run, mam (with the
# bench:mam-only lines: ejabberd's and Prosody's archives; Parley's is on in every phase) or plain
# (bench:plain-only lines instead of bench:tls-only ones).
render() {
  local src="$1" dst="$2" dir="$3" server="$4" phase="$5"
  local drop_setup='/bench:setup-only *$/d' drop_mam='/bench:mam-only *$/d'
  local drop_plain='/bench:plain-only *$/d' drop_tls=''
  [[ $phase == setup ]] && drop_setup=''
  [[ $phase == mam ]] && drop_mam=''
  [[ $phase == plain ]] && { drop_plain=''; drop_tls='/bench:tls-only *$/d'; }
  sed -e "$drop_setup" -e "$drop_mam" -e "$drop_plain" ${drop_tls:+-e "$drop_tls"} \
    -e "s|@WORK@|$dir|g" -e "s|@CERT@|$WORK/tls/cert.pem|g" -e "s|@KEY@|$WORK/tls/key.pem|g" -e "s|@CERTDIR@|$WORK/tls|g" \
    -e "s|@PEM@|$WORK/tls/combined.pem|g" -e "s|@PORT@|${PORT[$server]}|g" \
    -e "s|@TLS_PORT@|${TLS_PORT[$server]}|g" -e "s|@DIST_PORT@|$EJABBERD_DIST_PORT|g" \
    -e "s|@HTTP_PORT@|$PARLEY_HTTP_PORT|g" -e "s|@HTTPS_PORT@|$PARLEY_HTTPS_PORT|g" \
    "$src" >"$dst"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until the server's port answers, its process still alive.
wait_port() {
  local server="$1" port="$2" pid="$3" limit="$4" i
  for ((i = 0; i < limit * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$LOGDIR/$server.out" >&2 || true; die "$server exited during start"; }
    port_open "$port" && return 0
    sleep 0.2
  done
  tail -20 "$LOGDIR/$server.out" >&2 || true
  die "$server did not open port $port within ${limit}s"
}

wait_gone() {
  local pid="$1" limit="$2" i
  for ((i = 0; i < limit * 5; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  return 1
}

# ejabberdctl run as the ejabberd user directly (setpriv, no su): su would go through PAM, whose default limit
# of 1,024 open files stops the idle scenario; the Erlang cookie lives in the run's temp dir ($HOME).
EJABBERDCTL=()
ejabberdctl_args() {
  local dir="$WORK/ejabberd"
  EJABBERDCTL=(setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$dir"
    ejabberdctl --config-dir "$dir/etc" --config "$dir/etc/ejabberd.yml"
    --ctl-config "$dir/etc/ejabberdctl.cfg" --spool "$dir/spool" --logs "$dir/log")
}

# Starts a server for a phase, pinned to CPU 0, in a process group of its own (setsid), and sets CUR_PID to
# the process whose memory and CPU the generator reads.
start_server() {
  local server="$1" phase="$2" dir="$WORK/$1" p
  mkdir -p "$dir"
  # Something else on our ports (a server left over from another run) would be measured instead.
  local -a ports=("${PORT[$server]}" "${TLS_PORT[$server]}")
  [[ $server == parley ]] && ports+=("$PARLEY_HTTP_PORT" "$PARLEY_HTTPS_PORT")
  for p in "${ports[@]}"; do
    port_open "$p" && die "port $p is already in use; stop whatever listens there (ss -ltnp | grep :$p)"
  done
  case "$server" in
    parley)
      render "$ROOT/bench/servers/parley/parley.yml" "$dir/parley.yml" "$dir" parley "$phase"
      setsid taskset -c 0 "$NODE" "$ROOT/bin/parley.js" start --config "$dir/parley.yml" \
        >>"$LOGDIR/parley.out" 2>&1 </dev/null &
      CUR_PGID=$!; CUR_PID=$CUR_PGID
      ;;
    ejabberd)
      mkdir -p "$dir/etc" "$dir/spool" "$dir/log"
      render "$ROOT/bench/servers/ejabberd/ejabberd.yml" "$dir/etc/ejabberd.yml" "$dir" ejabberd "$phase"
      render "$ROOT/bench/servers/ejabberd/ejabberdctl.cfg" "$dir/etc/ejabberdctl.cfg" "$dir" ejabberd "$phase"
      cp "$ROOT/bench/servers/ejabberd/inetrc" "$dir/etc/inetrc"
      rm -f "$dir/ejabberd.pid"
      chown -R ejabberd: "$dir"
      ejabberdctl_args
      setsid taskset -c 0 "${EJABBERDCTL[@]}" foreground >>"$LOGDIR/ejabberd.out" 2>&1 </dev/null &
      CUR_PGID=$!; CUR_PID=""
      local i
      for ((i = 0; i < 300; i++)); do
        [[ -s "$dir/ejabberd.pid" ]] && { CUR_PID="$(cat "$dir/ejabberd.pid")"; break; }
        kill -0 "$CUR_PGID" 2>/dev/null || break
        sleep 0.2
      done
      # ejabberd writes its pid file early in start-up; fall back to the VM process in our group.
      [[ -n "$CUR_PID" ]] || CUR_PID="$(pgrep -g "$CUR_PGID" -x beam.smp | head -1 || true)"
      [[ -n "$CUR_PID" ]] || { tail -20 "$LOGDIR/ejabberd.out" >&2 || true; die "ejabberd did not start"; }
      ;;
    prosody)
      mkdir -p "$dir/data"
      render "$ROOT/bench/servers/prosody/prosody.cfg.lua" "$dir/prosody.cfg.lua" "$dir" prosody "$phase"
      chown -R prosody: "$dir"
      # Prosody does not run as root; setpriv, taskset and the prosody script all exec, so $! is Prosody's pid.
      setsid taskset -c 0 setpriv --reuid=prosody --regid=prosody --init-groups \
        prosody -F --config "$dir/prosody.cfg.lua" >>"$LOGDIR/prosody.out" 2>&1 </dev/null &
      CUR_PGID=$!; CUR_PID=$CUR_PGID
      ;;
  esac
  CUR_SERVER="$server"
  CUR_PHASE="$phase"
  wait_port "$server" "${PORT[$server]}" "$CUR_PID" 60
  log "$server ($phase) listening on ${PORT[$server]}, pid $CUR_PID"
}

stop_server() {
  local server="$1"
  [[ -n "$CUR_PGID" ]] || return 0
  case "$server" in
    ejabberd)
      ejabberdctl_args
      timeout 60 "${EJABBERDCTL[@]}" stop >>"$LOGDIR/ejabberd.out" 2>&1 </dev/null || true
      ;;
    *) kill -TERM "$CUR_PID" 2>/dev/null || true ;;
  esac
  if ! wait_gone "$CUR_PID" 30; then
    log "$server did not stop within 30s: killing its process group $CUR_PGID"
    kill -KILL -- "-$CUR_PGID" 2>/dev/null || true
    wait_gone "$CUR_PID" 10 || true
  fi
  # The rest of the group (ejabberdctl's shell, su) ends with the server; make sure of it.
  kill -TERM -- "-$CUR_PGID" 2>/dev/null || true
  wait "$CUR_PGID" 2>/dev/null || true
  CUR_SERVER=""; CUR_PGID=""; CUR_PID=""
}

register_users() {
  local server="$1"
  log "$server: registering user1..user$TOTAL_USERS (user1..user$USERS for login and idle, the rest for runs of their own)"
  case "$server" in
    parley)
      timeout 1800 "$NODE" "$ROOT/bench/setup-parley-users.ts" --config "$WORK/parley/parley.yml" \
        --users "$TOTAL_USERS" --password pw >>"$LOGDIR/register-parley.log" 2>&1 </dev/null \
        || { tail -20 "$LOGDIR/register-parley.log" >&2; die "parley: user setup failed"; }
      ;;
    *)
      timeout 1800 taskset -c 1 "$NODE" "$ROOT/bench/register-ibr.ts" --port "${PORT[$server]}" \
        --users "$TOTAL_USERS" --password pw --connections 8 --window 32 --timeout 1700 \
        >>"$LOGDIR/register-$server.log" 2>&1 </dev/null \
        || { tail -20 "$LOGDIR/register-$server.log" >&2; die "$server: registration failed"; }
      ;;
  esac
  log "$server: $(tail -1 "$LOGDIR/register-$server.log" 2>/dev/null || echo done)"
}

# Percent of all CPUs busy over one second: anything but an idle machine skews a side-by-side comparison.
cpu_busy() {
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
  for ((i = 1; i < ${#a[@]}; i++)); do total=$(( total + b[i] - a[i] )); done
  (( total > 0 )) || { echo 0; return; }
  echo $(( (total - idle) * 100 / total ))
}

# Waits (up to QUIET_WAIT seconds) until the machine is idle apart from the server under test, which is idle
# between runs; returns the last reading so it can be recorded next to the figures.
wait_quiet() {
  local busy i
  for ((i = 0; i < QUIET_WAIT / 2 + 1; i++)); do
    busy="$(cpu_busy)"
    (( busy <= QUIET_PERCENT )) && break
    (( i == 0 )) && log "machine is ${busy}% busy (other processes): waiting for it to calm down" >&2
    sleep 1
  done
  (( busy <= QUIET_PERCENT )) || log "warning: machine still ${busy}% busy; the next figures may be low" >&2
  echo "$busy"
}

json_escape() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\n\r\t'; }

# CPU time in clock ticks: busy and total of one CPU (from /proc/stat), and of one process (all its threads).
# Interrupt and softirq time is left out of "busy": loopback traffic is handled there, for the server and the
# generator alike, and is no sign of another process.
cpu_ticks() { awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6 - $7 - $8, t }' /proc/stat; }
proc_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Runs one generator invocation, pinned to CPU 1, and appends its JSON line (or an error line) to $OUT.
# Other processes on the machine are measured during the run: CPU 0's busy time not spent by the server, and
# CPU 1's not spent by the generator. A run disturbed by more than QUIET_PERCENT is done again (at most
# RETRIES more times); the disturbed attempt is kept in the .discarded file, and the last attempt is kept
# with its reading if none was clean.
run_generator() {
  local server="$1" label="$2" scenario="$3" args="$4" run="$5" accounts="$6"
  local -a extra
  read -r -a extra <<<"$args"
  local limit=$GEN_TIMEOUT
  [[ $label == mam-fill ]] && limit=$FILL_TIMEOUT
  local attempt base busy started rc line other0 other1 hz died=""
  hz="$(getconf CLK_TCK)"
  for ((attempt = 0; attempt <= RETRIES; attempt++)); do
    base="$LOGDIR/$server-$label-$run"
    (( attempt > 0 )) && base="$base-retry$attempt"
    # The accounts of this attempt (later options win over the --users given below).
    local -a range=()
    if [[ $accounts =~ ^[0-9]+$ ]]; then
      (( NEXT_ACCOUNT + accounts <= TOTAL_USERS )) || die "out of registered accounts ($TOTAL_USERS) for $label"
      range=(--users "$accounts" --offset "$NEXT_ACCOUNT")
      [[ $label == mam-fill ]] && MAM_OFFSET=$NEXT_ACCOUNT
      NEXT_ACCOUNT=$(( NEXT_ACCOUNT + accounts ))
    elif [[ $accounts == mam ]]; then
      [[ -n $MAM_OFFSET ]] || die "mam: no archive was filled"
      range=(--users 2 --offset "$MAM_OFFSET")
    fi
    busy="$(wait_quiet)"
    started=$SECONDS
    rc=0
    died=""
    local c0a c1a sa c0b c1b sb
    c0a=($(cpu_ticks 0)); c1a=($(cpu_ticks 1)); sa="$(proc_ticks "$CUR_PID")"
    timeout --kill-after=10 "$limit" taskset -c 1 "$NODE" "$ROOT/bench/run.ts" "$scenario" \
      --host 127.0.0.1 --port "${PORT[$server]}" --domain localhost --users "$USERS" --password pw \
      --mech SCRAM-SHA-1 --tls starttls --workers "$GEN_WORKERS" --pid "$CUR_PID" --server "$server" \
      --json-only "${extra[@]}" "${range[@]}" >"$base.json" 2>"$base.err" </dev/null || rc=$?
    c0b=($(cpu_ticks 0)); c1b=($(cpu_ticks 1)); sb="$(proc_ticks "$CUR_PID")"
    line="$(grep '^{' "$base.json" | tail -1 || true)"
    # The generator reports its own CPU seconds for the whole run; the server's come from /proc.
    local gen_ticks
    gen_ticks="$(sed -n 's/.*"generator":{[^}]*"cpuSeconds":\([0-9.]*\).*/\1/p' <<<"$line" | awk -v hz="$hz" '{ printf "%d", $1 * hz }')"
    other0=$(( ( (c0b[0] - c0a[0]) - (sb - sa) ) * 100 / ( c0b[1] - c0a[1] > 0 ? c0b[1] - c0a[1] : 1 ) ))
    other1=$(( ( (c1b[0] - c1a[0]) - ${gen_ticks:-0} ) * 100 / ( c1b[1] - c1a[1] > 0 ? c1b[1] - c1a[1] : 1 ) ))
    (( other0 < 0 )) && other0=0
    (( other1 < 0 )) && other1=0
    local extra_json=",\"variant\":\"$label\",\"run\":$run,\"busyBeforePercent\":$busy,\"otherCpu0Percent\":$other0,\"otherCpu1Percent\":$other1"
    if ! kill -0 "$CUR_PID" 2>/dev/null; then
      # The server is gone: say how it ended, and start it again for the next runs.
      local status=0
      wait "$CUR_PGID" 2>/dev/null || status=$?
      # Status 0 from Parley means it was sent SIGTERM or SIGINT (it exits 0 after a clean stop).
      log "$server exited during $label run $run (status $status$( (( status > 128 )) && echo ", signal $((status - 128))")); restarting it"
      line=""
      rc=1
      died="the server exited with status $status"
      kill -TERM -- "-$CUR_PGID" 2>/dev/null || true
      CUR_PGID=""
      start_server "$server" "$CUR_PHASE"
      (( attempt < RETRIES )) && continue
      break
    fi
    if [[ -n "$line" && $rc == 0 && $line != *'"error":'* ]] && (( other0 > QUIET_PERCENT || other1 > QUIET_PERCENT )) \
      && (( attempt < RETRIES )); then
      printf '%s\n' "${line%\}}$extra_json}" >>"$OUT.discarded"
      log "$server $label run $run: other processes took ${other0}% of CPU 0 and ${other1}% of CPU 1: running it again"
      # idle measures memory: only a fresh server gives a fair figure, as for every idle run.
      if [[ $scenario == idle ]]; then
        stop_server "$server"
        start_server "$server" "$CUR_PHASE"
      fi
      sleep 2
      continue
    fi
    break
  done
  if [[ -n "$line" && ( $rc == 0 || $line == *'"error":'* ) ]]; then
    # The variant label (msg-closed, msg-open, ...) and the run number go alongside the generator's figures.
    printf '%s\n' "${line%\}}$extra_json}" >>"$OUT"
    if [[ $line == *'"error":'* ]]; then
      log "$server $label run $run: no figures ($(sed 's/.*"error":"\([^"]*\)".*/\1/' <<<"$line")), see $base.err"
    else
      log "$server $label run $run: ok ($((SECONDS - started))s, others used ${other0}% of CPU 0, ${other1}% of CPU 1)"
    fi
  else
    local why="exit $rc"
    [[ $rc == 124 ]] && why="timed out after ${limit}s"
    [[ -n $died ]] && why="$died"
    local tailmsg
    tailmsg="$(tail -3 "$base.err" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
    printf '{"scenario":"%s","server":"%s","variant":"%s","run":%s,"error":"%s"}\n' "$scenario" "$server" \
      "$label" "$run" "$(json_escape "$why: $tailmsg")" >>"$OUT"
    log "$server $label run $run: FAILED ($why), see $base.err"
  fi
}

server_version() {
  case "$1" in
    parley) "$NODE" -p "require('$ROOT/package.json').version" 2>/dev/null || echo "?" ;;
    ejabberd) dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || echo "?" ;;
    prosody) dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo "?" ;;
  esac
}

# The modules each server runs in the measured configuration (the issue asks to say which were on).
server_modules() {
  case "$1" in
    parley)
      # Parley's configuration turns no module off: its default list is what runs, mam included.
      (cd "$ROOT" && "$NODE" --input-type=module -e "
        const { builtinModules } = await import('./src/modules/index.ts');
        console.log(builtinModules.filter((m) => m.enabledByDefault !== false).map((m) => m.id).join(' '));" \
        2>/dev/null) || echo "?"
      printf '; mam (archiving every message) in every scenario'
      return ;;
    ejabberd) sed -e '/bench:setup-only *$/d' -e '/bench:mam-only *$/d' "$ROOT/bench/servers/ejabberd/ejabberd.yml" \
      | grep -o '^  mod_[a-z_]*' | sed 's/^  mod_//' | tr '\n' ' ' | sed 's/ $//' ;;
    prosody) { sed -n '/^modules_enabled = {/,/^}/p' "$ROOT/bench/servers/prosody/prosody.cfg.lua" \
      | sed -e '/bench:mam-only *$/d' | grep -o '^	"[a-z_]*"' | tr -d '"\t'; echo "(auto: presence message iq offline c2s)"; } \
      | tr '\n' ' ' | sed 's/ $//' ;;
  esac
  printf '; mam only in the mam scenario'
}

runtime_version() {
  case "$1" in
    parley) "$NODE" --version ;;
    ejabberd) echo "Erlang/OTP $(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().' 2>/dev/null || echo '?')" ;;
    prosody) lua5.4 -v 2>&1 | cut -d' ' -f1-2 ;;
  esac
}

# ---------------------------------------------------------------------------------------------------------
# The run.

{
  printf '{"meta":"compare","date":"%s","nproc":%s,"cpu":"%s","node":"%s","runs":%s,"quick":%s,"users":%s' \
    "$(json_escape "$(date)")" "$(nproc)" \
    "$(json_escape "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')")" \
    "$("$NODE" --version)" "$RUNS" "$([[ $QUICK == 1 ]] && echo true || echo false)" "$USERS"
  printf ',"sizes":{"duration":%s,"sessions":%s,"pairs":%s,"window":%s,"offlineMessages":%s,"mamMessages":%s,"mamPages":%s,"accounts":%s}' \
    "$DURATION" "$SESSIONS" "$PAIRS" "$WINDOW" "$MESSAGES" "$MAM_MESSAGES" "$MAM_PAGES" "$TOTAL_USERS"
  printf ',"command":"%s","servers":{' "$(json_escape "bash bench/compare.sh $ORIG_ARGS")"
  first=1
  for s in "${SERVER_LIST[@]}"; do
    [[ $first == 1 ]] || printf ','
    first=0
    printf '"%s":{"version":"%s","runtime":"%s","modules":"%s"}' "$s" "$(json_escape "$(server_version "$s")")" \
      "$(json_escape "$(runtime_version "$s")")" "$(json_escape "$(server_modules "$s")")"
  done
  printf '}}\n'
} >"$OUT"

log "servers: ${SERVER_LIST[*]}; scenarios: ${SCENARIO_LIST[*]}; runs: $RUNS; users: $USERS (+$((TOTAL_USERS - USERS)) for msg, offline and mam); work dir $WORK"

# Scenarios by the server configuration they need: the documented one, with archives, without TLS.
has_mam=0
tls_scenarios=()
plain_scenarios=()
for s in "${SCENARIO_LIST[@]}"; do
  case "$s" in
    mam) has_mam=1 ;;
    *-plain) plain_scenarios+=("$s") ;;
    *) tls_scenarios+=("$s") ;;
  esac
done

# --check: the server offers STARTTLS on its port and completes a TLS handshake for "localhost".
check_server() {
  local server="$1" out
  out="$(timeout 20 openssl s_client -starttls xmpp -xmpphost localhost -connect "127.0.0.1:${PORT[$server]}" \
    -brief </dev/null 2>&1 || true)"
  if grep -q 'Protocol version' <<<"$out"; then
    log "$server: STARTTLS ok ($(grep -m1 'Protocol version' <<<"$out" | sed 's/.*: *//'))"
  else
    log "$server: STARTTLS check FAILED: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
    return 1
  fi
}

run_phase() {
  local server="$1" phase="$2"; shift 2
  local scenario label scen args accounts run variant_count=0 last_scenario=""
  start_server "$server" "$phase"
  if [[ $CHECK == 1 ]]; then
    check_server "$server"
    stop_server "$server"
    return
  fi
  for scenario in "$@"; do
    # The variants are read before any server is restarted: a command that reads stdin (erl does) must never
    # swallow the rest of the list.
    local -a variants
    mapfile -t variants < <(variants_for "$scenario")
    local v
    for v in "${variants[@]}"; do
      IFS='|' read -r label scen args accounts <<<"$v"
      local n=$RUNS
      [[ $label == mam-fill ]] && n=1
      for ((run = 1; run <= n; run++)); do
        # Memory a previous run freed stays in the server process and would make sessions look cheaper:
        # every idle run gets a freshly started server.
        # Each scenario starts on a fresh server too, so none inherits another's garbage or caches.
        if [[ $variant_count -gt 0 && ( $scen == idle || ( $run == 1 && $scenario != "$last_scenario" ) ) ]]; then
          stop_server "$server"
          start_server "$server" "$phase"
        fi
        variant_count=$((variant_count + 1))
        last_scenario="$scenario"
        run_generator "$server" "$label" "$scen" "$args" "$run" "$accounts"
        sleep 2 # let the server close the previous run's connections
      done
    done
  done
  stop_server "$server"
}

for server in "${SERVER_LIST[@]}"; do
  log "=== $server ==="
  rm -rf "${WORK:?}/$server"
  # Every server hands out the same account ranges, in the same order.
  NEXT_ACCOUNT=$USERS
  MAM_OFFSET=""
  if [[ $server == parley ]]; then
    # Parley's users are written to its database before it starts.
    mkdir -p "$WORK/parley"
    render "$ROOT/bench/servers/parley/parley.yml" "$WORK/parley/parley.yml" "$WORK/parley" parley run
    register_users parley
  else
    # Setup phase: the same configuration plus in-band registration from loopback; then restart without it,
    # so the measured server runs exactly the documented module set.
    start_server "$server" setup
    register_users "$server"
    stop_server "$server"
  fi
  (( ${#tls_scenarios[@]} > 0 )) && run_phase "$server" run "${tls_scenarios[@]}"
  (( ${#plain_scenarios[@]} > 0 )) && run_phase "$server" plain "${plain_scenarios[@]}"
  (( has_mam == 1 )) && run_phase "$server" mam mam
done

[[ $CHECK == 1 ]] && { log "check done"; exit 0; }
"$NODE" "$ROOT/bench/compare-table.ts" "$OUT" | tee "$TABLE"
log "JSON lines: ${OUT#"$ROOT"/}; table: ${TABLE#"$ROOT"/}; logs: ${LOGDIR#"$ROOT"/}"
