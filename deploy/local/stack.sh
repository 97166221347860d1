#!/usr/bin/env bash
# The local ttlc stack on one Debian 12 machine: PostgreSQL, ClickHouse and the Tansu broker, all
# on 127.0.0.1, for tests, CI and demos. Run as root; no systemd needed.
#
#   stack.sh [up]   install what is missing, start what is stopped, wait until all are ready
#   stack.sh status print each service's state; exit 1 if any is down
#   stack.sh stop   stop what this script started
#   stack.sh env    print `export TTLC_...=` lines for the running stack
#
# Idempotent: `up` twice leaves one of each service running. Knobs (environment):
#   TTLC_PG_PORT (5432), TTLC_CH_HTTP_PORT (8123), TTLC_CH_TCP_PORT (9000),
#   TTLC_BROKER_PORT (9092), TTLC_BROKER_STORAGE (memory | sqlite), TTLC_BROKER_LOG (warn),
#   TTLC_READY_TIMEOUT (60 s per service), TTLC_BUILD_TIMEOUT (2400 s to wait for a tansu build).
# The PostgreSQL role ttlc/ttlc is a local development credential, not a secret.
set -euo pipefail

readonly STACK_ENV=/var/lib/ttlc/stack.env

# `status`, `stop` and `env` describe the stack `up` last started: its settings are their
# defaults. `up` itself always starts from the documented defaults plus the environment.
if [[ ${1:-up} != up && -f $STACK_ENV ]]; then
    while IFS='=' read -r key value; do
        key="${key#export }"
        case "$key" in
            TTLC_PG_PORT | TTLC_CH_HTTP_PORT | TTLC_CH_TCP_PORT | TTLC_BROKER_PORT | TTLC_BROKER_STORAGE)
                [[ -n ${!key:-} ]] || export "$key=$value"
                ;;
        esac
    done <"$STACK_ENV"
fi

readonly PG_PORT="${TTLC_PG_PORT:-5432}"
readonly CH_HTTP_PORT="${TTLC_CH_HTTP_PORT:-8123}"
readonly CH_TCP_PORT="${TTLC_CH_TCP_PORT:-9000}"
readonly BROKER_PORT="${TTLC_BROKER_PORT:-9092}"
readonly BROKER_STORAGE="${TTLC_BROKER_STORAGE:-memory}"
readonly BROKER_LOG="${TTLC_BROKER_LOG:-warn}"
readonly READY_TIMEOUT="${TTLC_READY_TIMEOUT:-60}"
readonly BUILD_TIMEOUT="${TTLC_BUILD_TIMEOUT:-2400}"

readonly HOST=127.0.0.1
readonly PREFIX=/opt/ttlc
readonly VENV="$PREFIX/venv"
readonly TANSU_VERSION=0.6.0
readonly TANSU_BIN="$PREFIX/bin/tansu"
readonly STATE_DIR=/var/lib/ttlc
readonly RUN_DIR="$STATE_DIR/run"
readonly LOG_DIR=/var/log/ttlc
readonly TANSU_DIR="$STATE_DIR/tansu"
readonly TANSU_PID="$RUN_DIR/tansu.pid"
readonly TANSU_CONF="$RUN_DIR/tansu.conf"
readonly TANSU_LOG="$LOG_DIR/tansu.log"
readonly TANSU_BUILD_LOG="$LOG_DIR/tansu-install.log"
readonly CH_DIR="$STATE_DIR/clickhouse"
readonly CH_CONFIG="$CH_DIR/config.xml"
readonly CH_PID="$CH_DIR/clickhouse-server.pid"
readonly CH_LOG_DIR="$LOG_DIR/clickhouse"
readonly CH_DATA=/var/lib/clickhouse
readonly PG_MARKER="$RUN_DIR/postgresql.started"
readonly APT_LOG="$LOG_DIR/stack-apt.log"

log() { printf 'stack: %s\n' "$*" >&2; }
die() {
    printf 'stack: error: %s\n' "$*" >&2
    exit 1
}

require_root() {
    [[ $(id -u) -eq 0 ]] || die "run me as root (I install packages and start services)"
}

validate_knobs() {
    local name value
    for name in TTLC_PG_PORT TTLC_CH_HTTP_PORT TTLC_CH_TCP_PORT TTLC_BROKER_PORT \
        TTLC_READY_TIMEOUT TTLC_BUILD_TIMEOUT; do
        value="${!name:-}"
        [[ -z $value || $value =~ ^[0-9]+$ ]] || die "$name must be a number, got '$value'"
    done
    case "$BROKER_STORAGE" in
        memory | sqlite) ;;
        *) die "TTLC_BROKER_STORAGE must be memory or sqlite, got '$BROKER_STORAGE'" ;;
    esac
}

# Runs the command "$@" until it succeeds or `timeout` seconds pass. The sleep is the polling
# interval, not the readiness mechanism: every service is probed for real.
wait_until() {
    local timeout="$1"
    shift
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

wait_for() {
    local what="$1"
    shift
    wait_until "$@" || return 1
    log "$what is ready"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

pid_alive() {
    local pid_file="$1" pattern="$2" pid
    pid="$(cat "$pid_file" 2>/dev/null)" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -d /proc/$pid ]] || return 1
    # Guard against a recycled pid: the process must still be the program we started.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

# True once the process is gone (or a zombie nobody has reaped yet).
proc_gone() {
    [[ ! -d /proc/$1 ]] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# Sends SIGTERM, waits up to 30 s for the process to exit, then SIGKILL.
stop_pid() {
    local name="$1" pid_file="$2" pattern="$3" pid
    if ! pid_alive "$pid_file" "$pattern"; then
        rm -f "$pid_file"
        return 0
    fi
    pid="$(<"$pid_file")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until 30 proc_gone "$pid"; then
        log "$name did not exit within 30 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pid_file"
}

# --- packages -------------------------------------------------------------------------------

pkg_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

# Installs the missing packages among "$@". Another apt/dpkg run holding the lock is waited for
# (DPkg::Lock::Timeout) instead of fought.
apt_ensure() {
    local missing=() pkg
    for pkg in "$@"; do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    ((${#missing[@]} > 0)) || return 0
    mkdir -p "$LOG_DIR"
    log "installing ${missing[*]} (log: $APT_LOG)"
    local apt=(apt-get -y -q -o DPkg::Lock::Timeout=900 -o APT::Acquire::Retries=3)
    local attempt
    for attempt in 1 2 3; do
        if DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends \
            "${missing[@]}" >>"$APT_LOG" 2>&1 9>&-; then
            return 0
        fi
        # A fresh machine has no package lists yet; an interrupted run may have left dpkg
        # half-configured. Both are fixed by these, then we retry.
        log "apt-get install failed (attempt $attempt); refreshing package lists"
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >>"$APT_LOG" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive dpkg --configure -a >>"$APT_LOG" 2>&1 || true
    done
    die "could not install ${missing[*]}; see $APT_LOG"
}

ensure_base_packages() {
    # build-essential + pkg-config: what rdkafka's bundled librdkafka (./configure + make) and
    # libz-sys's vendored zlib need to compile; cmake is not used by either. python3 is used by
    # librdkafka's Makefile and by the test venv. curl probes ClickHouse.
    apt_ensure build-essential pkg-config python3 python3-venv curl ca-certificates \
        procps util-linux iproute2
}

ensure_user() {
    local user="$1" home="$2"
    id -u "$user" >/dev/null 2>&1 && return 0
    log "creating system user $user"
    useradd --system --home-dir "$home" --no-create-home --shell /usr/sbin/nologin "$user"
}

# --- PostgreSQL -----------------------------------------------------------------------------

# The major version to use: the newest one with a "main" cluster, else the newest installed.
pg_version() {
    local v
    v="$(pg_lsclusters -h 2>/dev/null | awk '$2 == "main" { print $1 }' | sort -n | tail -n1)"
    if [[ -z $v ]]; then
        v="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null |
            grep -E '^[0-9]+$' | sort -n | tail -n1)"
    fi
    printf '%s' "$v"
}

pg_running() { pg_ctlcluster "$1" main status >/dev/null 2>&1; }

# Runs SQL as the postgres superuser over the Unix socket.
pg_super() {
    (cd / && runuser -u postgres -- psql -X -q -t -A -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@")
}

pg_app_ready() {
    PGPASSWORD=ttlc PGCONNECT_TIMEOUT=2 psql -X -q -t -A -h "$HOST" -p "$PG_PORT" -U ttlc -d ttlc \
        -c 'SELECT 1' 2>/dev/null | grep -qx 1
}

pg_set() {
    local v="$1" key="$2" want="$3" have
    have="$(pg_conftool -s "$v" main show "$key" 2>/dev/null || true)"
    have="${have//\'/}"
    [[ $have == "$want" ]] && return 1
    pg_conftool "$v" main set "$key" "$want" || die "pg_conftool could not set $key for PostgreSQL $v/main"
    return 0
}

# listen_addresses through Debian's conf.d (pg_conftool would leave 127.0.0.1 unquoted, which
# PostgreSQL rejects). Returns 0 when the file changed.
pg_listen_local() {
    local dir="/etc/postgresql/$1/main/conf.d" want
    want="$(printf "# Managed by deploy/local/stack.sh: local only.\nlisten_addresses = '%s'\n" "$HOST")"
    [[ $(cat "$dir/ttlc.conf" 2>/dev/null) == "$want" ]] && return 1
    install -d -m 0755 -o postgres -g postgres "$dir" || die "cannot create $dir"
    printf '%s\n' "$want" >"$dir/ttlc.conf" || die "cannot write $dir/ttlc.conf"
    return 0
}

postgres_up() {
    apt_ensure postgresql
    local v restart=0
    v="$(pg_version)"
    [[ -n $v ]] || die "no PostgreSQL server found under /usr/lib/postgresql after installing it"
    if ! pg_lsclusters -h | awk -v v="$v" '$1 == v && $2 == "main" { f = 1 } END { exit !f }'; then
        log "creating PostgreSQL $v cluster main"
        pg_createcluster "$v" main >/dev/null
    fi
    pg_set "$v" port "$PG_PORT" && restart=1
    pg_listen_local "$v" && restart=1
    if pg_running "$v"; then
        if ((restart)); then
            log "restarting PostgreSQL $v/main to listen on $HOST:$PG_PORT"
            pg_ctlcluster "$v" main restart 9>&-
        else
            log "PostgreSQL $v/main already running on $HOST:$PG_PORT"
        fi
    else
        log "starting PostgreSQL $v/main on $HOST:$PG_PORT"
        pg_ctlcluster "$v" main start 9>&-
        mkdir -p "$RUN_DIR"
        printf '%s\n' "$v" >"$PG_MARKER"
    fi
    wait_for "PostgreSQL" "$READY_TIMEOUT" pg_isready -q -h "$HOST" -p "$PG_PORT" ||
        die "PostgreSQL did not accept connections on $HOST:$PG_PORT within ${READY_TIMEOUT}s; see /var/log/postgresql/postgresql-$v-main.log"

    # The role and database the ttlc binary defaults to. Attributes and password are re-asserted
    # every time, so a drifted local setup is repaired rather than reported.
    pg_super <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ttlc') THEN
        CREATE ROLE ttlc;
    END IF;
END
$$;
ALTER ROLE ttlc LOGIN CREATEDB CREATEROLE PASSWORD 'ttlc';
SQL
    if [[ -z $(pg_super -c "SELECT 1 FROM pg_database WHERE datname = 'ttlc'") ]]; then
        log "creating database ttlc"
        pg_super -c 'CREATE DATABASE ttlc OWNER ttlc'
    fi
    wait_for "PostgreSQL database ttlc" "$READY_TIMEOUT" pg_app_ready ||
        die "cannot log in as ttlc on $HOST:$PG_PORT/ttlc (check pg_hba.conf allows scram-sha-256 from $HOST)"
}

postgres_status() {
    local v
    v="$(pg_version)"
    if pg_isready -q -h "$HOST" -p "$PG_PORT" 2>/dev/null && pg_app_ready; then
        printf '%-11s up    %s:%s  (cluster %s/main, database ttlc)\n' postgresql "$HOST" "$PG_PORT" "$v"
    else
        printf '%-11s down  %s:%s\n' postgresql "$HOST" "$PG_PORT"
        return 1
    fi
}

postgres_stop() {
    local v
    if [[ ! -f $PG_MARKER ]]; then
        log "PostgreSQL was not started by this script; leaving it alone"
        return 0
    fi
    v="$(<"$PG_MARKER")"
    if pg_running "$v"; then
        log "stopping PostgreSQL $v/main"
        pg_ctlcluster "$v" main stop -m fast
    fi
    rm -f "$PG_MARKER"
}

# --- ClickHouse -----------------------------------------------------------------------------

ch_ping() { [[ $(curl -fsS --max-time 2 "http://$HOST:$CH_HTTP_PORT/ping" 2>/dev/null) == "Ok." ]]; }

ch_query() {
    curl -fsS --max-time 10 --data-binary "$1" "http://$HOST:$CH_HTTP_PORT/"
}

# A small, complete server config: Debian's config.xml listens on ::1 and 127.0.0.1 at fixed
# ports, and overriding repeated <listen_host> elements through config.d is fiddly on 18.16.
# Users (default, no password) come from Debian's users.xml; only 127.0.0.1 is listened on.
write_ch_config() {
    local tmp
    tmp="$(mktemp)"
    cat >"$tmp" <<EOF
<?xml version="1.0"?>
<!-- Generated by deploy/local/stack.sh; edits are overwritten. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$CH_LOG_DIR/clickhouse-server.log</log>
        <errorlog>$CH_LOG_DIR/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>$HOST</listen_host>
    <http_port>$CH_HTTP_PORT</http_port>
    <tcp_port>$CH_TCP_PORT</tcp_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>536870912</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <path>$CH_DATA/</path>
    <tmp_path>$CH_DATA/tmp/</tmp_path>
    <user_files_path>$CH_DATA/user_files/</user_files_path>
    <format_schema_path>$CH_DATA/format_schemas/</format_schema_path>
    <users_config>/etc/clickhouse-server/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
EOF
    if cmp -s "$tmp" "$CH_CONFIG"; then
        rm -f "$tmp"
        return 1
    fi
    install -m 0644 -o root -g root "$tmp" "$CH_CONFIG" || die "cannot write $CH_CONFIG"
    rm -f "$tmp"
    return 0
}

clickhouse_start() {
    log "starting ClickHouse on $HOST:$CH_HTTP_PORT"
    (cd "$CH_DATA" && setpriv --reuid clickhouse --regid clickhouse --init-groups \
        clickhouse-server --config-file="$CH_CONFIG" --pid-file="$CH_PID" --daemon 9>&-) ||
        die "clickhouse-server failed to start; see $CH_LOG_DIR/clickhouse-server.err.log"
}

clickhouse_up() {
    apt_ensure clickhouse-server clickhouse-client
    id -u clickhouse >/dev/null 2>&1 || die "the clickhouse-server package did not create user clickhouse"
    install -d -m 0755 -o clickhouse -g clickhouse "$CH_DIR" "$CH_LOG_DIR" "$CH_DATA"
    local changed=0
    write_ch_config && changed=1
    if pid_alive "$CH_PID" clickhouse-server; then
        if ((changed)); then
            log "ClickHouse config changed; restarting it"
            stop_pid ClickHouse "$CH_PID" clickhouse-server
            clickhouse_start
        else
            log "ClickHouse already running on $HOST:$CH_HTTP_PORT (pid $(<"$CH_PID"))"
        fi
    elif ch_ping; then
        log "a ClickHouse not started by this script answers on $HOST:$CH_HTTP_PORT; using it"
    else
        port_open "$CH_HTTP_PORT" && die "port $CH_HTTP_PORT is taken by something that is not ClickHouse (see: ss -ltnp)"
        port_open "$CH_TCP_PORT" && die "port $CH_TCP_PORT is taken (see: ss -ltnp); set TTLC_CH_TCP_PORT"
        rm -f "$CH_PID"
        clickhouse_start
    fi
    wait_for "ClickHouse" "$READY_TIMEOUT" ch_ping ||
        die "ClickHouse did not answer /ping on $HOST:$CH_HTTP_PORT within ${READY_TIMEOUT}s; see $CH_LOG_DIR/clickhouse-server.err.log"
    ch_query 'CREATE DATABASE IF NOT EXISTS ttlc' >/dev/null ||
        die "could not create ClickHouse database ttlc"
}

clickhouse_status() {
    local version detail
    if ch_ping && version="$(ch_query 'SELECT version()' 2>/dev/null)" &&
        [[ $(ch_query "SELECT count() FROM system.databases WHERE name = 'ttlc'" 2>/dev/null) == 1 ]]; then
        if pid_alive "$CH_PID" clickhouse-server; then
            detail="pid $(<"$CH_PID")"
        else
            detail="not started by stack.sh"
        fi
        printf '%-11s up    %s:%s  (%s, version %s, database ttlc)\n' clickhouse "$HOST" "$CH_HTTP_PORT" "$detail" "$version"
    else
        printf '%-11s down  %s:%s\n' clickhouse "$HOST" "$CH_HTTP_PORT"
        return 1
    fi
}

clickhouse_stop() {
    if ! pid_alive "$CH_PID" clickhouse-server && ch_ping; then
        log "ClickHouse was not started by this script; leaving it alone"
        return 0
    fi
    stop_pid ClickHouse "$CH_PID" clickhouse-server
}

# --- Python venv for tests ------------------------------------------------------------------

venv_ok() { [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c 'import confluent_kafka, yaml' 2>/dev/null; }

venv_up() {
    venv_ok && return 0
    log "creating the Python test venv at $VENV (confluent-kafka, PyYAML from PyPI)"
    mkdir -p "$PREFIX"
    [[ -x $VENV/bin/python ]] || /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'confluent-kafka>=2.3' 'PyYAML>=6' ||
        die "pip could not install confluent-kafka and PyYAML into $VENV"
    venv_ok || die "the venv at $VENV cannot import confluent_kafka and yaml"
}

# --- Tansu ----------------------------------------------------------------------------------

tansu_ok() { [[ -x $TANSU_BIN ]] && [[ $("$TANSU_BIN" --version 2>/dev/null) == "tansu $TANSU_VERSION" ]]; }

tansu_building() { pgrep -f 'cargo install tansu' >/dev/null 2>&1; }
tansu_not_building() { ! tansu_building; }

find_cargo() {
    if command -v cargo >/dev/null 2>&1; then
        command -v cargo
    elif [[ -x ${HOME:-/root}/.cargo/bin/cargo ]]; then
        printf '%s' "${HOME:-/root}/.cargo/bin/cargo"
    else
        return 1
    fi
}

tansu_install() {
    tansu_ok && return 0
    if tansu_building; then
        log "a tansu build is already running (log: $TANSU_BUILD_LOG); waiting for it"
        wait_until "$BUILD_TIMEOUT" tansu_not_building ||
            die "the running tansu build did not finish within ${BUILD_TIMEOUT}s"
        tansu_ok && return 0
    fi
    local cargo
    cargo="$(find_cargo)" || die "cargo (Rust >= 1.85, via rustup) is needed to build tansu $TANSU_VERSION"
    log "building tansu $TANSU_VERSION into $PREFIX (10-15 min on 2 cores; log: $TANSU_BUILD_LOG)"
    mkdir -p "$LOG_DIR" "$PREFIX"
    local rc=0
    # --locked: without it the dependency resolution does not compile. dynostore gives memory://,
    # libsql gives sqlite://.
    "$cargo" install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
        --root "$PREFIX" >>"$TANSU_BUILD_LOG" 2>&1 || rc=$?
    printf 'rc=%s\n' "$rc" >>"$TANSU_BUILD_LOG"
    ((rc == 0)) || die "cargo install tansu failed (rc=$rc); see $TANSU_BUILD_LOG"
    tansu_ok || die "$TANSU_BIN does not report version $TANSU_VERSION after the build"
}

tansu_storage_url() {
    case "$BROKER_STORAGE" in
        memory) printf 'memory://tansu/' ;;
        # Relative to the broker's working directory, which is $TANSU_DIR.
        sqlite) printf 'sqlite://tansu.db' ;;
    esac
}

# Asks the broker for metadata with confluent-kafka and checks it advertises $HOST:$BROKER_PORT.
broker_ready() {
    "$VENV/bin/python" - "$HOST" "$BROKER_PORT" <<'PY'
import logging
import sys
from confluent_kafka.admin import AdminClient

host, port = sys.argv[1], int(sys.argv[2])
quiet = logging.getLogger("librdkafka")
quiet.setLevel(logging.CRITICAL)
admin = AdminClient({"bootstrap.servers": f"{host}:{port}", "logger": quiet})
md = admin.list_topics(timeout=2)
advertised = {(b.host, b.port) for b in md.brokers.values()}
if (host, port) not in advertised:
    sys.exit(f"broker advertises {sorted(advertised)}, expected {host}:{port}")
PY
}

tansu_start() {
    local storage
    storage="$(tansu_storage_url)"
    install -d -m 0750 -o ttlc -g ttlc "$TANSU_DIR"
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    log "starting tansu on $HOST:$BROKER_PORT with storage $storage (log: $TANSU_LOG)"
    printf '%s starting tansu: port=%s storage=%s\n' "$(date -u +%FT%TZ)" "$BROKER_PORT" "$storage" >>"$TANSU_LOG"
    # A clean environment: tansu reads CLUSTER_ID, LISTENER_URL, STORAGE_ENGINE, ... from the
    # environment and a .env file from its working directory; neither may leak in.
    (
        cd "$TANSU_DIR"
        exec env -i PATH=/usr/bin:/bin HOME="$TANSU_DIR" RUST_LOG="$BROKER_LOG" \
            setsid setpriv --reuid ttlc --regid ttlc --init-groups \
            "$TANSU_BIN" broker \
            --listener-url "tcp://$HOST:$BROKER_PORT" \
            --advertised-listener-url "tcp://$HOST:$BROKER_PORT" \
            --storage-engine "$storage"
    ) </dev/null >>"$TANSU_LOG" 2>&1 9>&- &
    printf '%s\n' "$!" >"$TANSU_PID"
    printf 'port=%s storage=%s\n' "$BROKER_PORT" "$storage" >"$TANSU_CONF"
}

tansu_up() {
    tansu_install
    ensure_user ttlc "$STATE_DIR"
    local want
    want="port=$BROKER_PORT storage=$(tansu_storage_url)"
    if pid_alive "$TANSU_PID" "$TANSU_BIN"; then
        if [[ $(cat "$TANSU_CONF" 2>/dev/null) == "$want" ]]; then
            log "tansu already running on $HOST:$BROKER_PORT (pid $(<"$TANSU_PID"))"
        else
            log "tansu runs with '$(cat "$TANSU_CONF" 2>/dev/null)', want '$want'; restarting it"
            stop_pid tansu "$TANSU_PID" "$TANSU_BIN"
            tansu_start
        fi
    elif port_open "$BROKER_PORT"; then
        broker_ready >/dev/null 2>&1 ||
            die "port $BROKER_PORT is taken by something that is not a working broker (see: ss -ltnp); set TTLC_BROKER_PORT"
        log "a broker not started by this script answers on $HOST:$BROKER_PORT; using it"
    else
        rm -f "$TANSU_PID"
        tansu_start
    fi
    wait_for "tansu" "$READY_TIMEOUT" broker_ready || {
        pid_alive "$TANSU_PID" "$TANSU_BIN" || log "tansu exited; last log lines:"
        tail -n 5 "$TANSU_LOG" >&2 || true
        die "tansu did not answer a metadata request on $HOST:$BROKER_PORT within ${READY_TIMEOUT}s; see $TANSU_LOG"
    }
}

tansu_status() {
    local detail
    if broker_ready >/dev/null 2>&1; then
        if pid_alive "$TANSU_PID" "$TANSU_BIN"; then
            detail="pid $(<"$TANSU_PID"), $(cat "$TANSU_CONF" 2>/dev/null)"
        else
            detail="not started by stack.sh"
        fi
        printf '%-11s up    %s:%s  (%s)\n' tansu "$HOST" "$BROKER_PORT" "$detail"
    else
        printf '%-11s down  %s:%s\n' tansu "$HOST" "$BROKER_PORT"
        return 1
    fi
}

tansu_stop() {
    if ! pid_alive "$TANSU_PID" "$TANSU_BIN" && port_open "$BROKER_PORT"; then
        log "the broker on $HOST:$BROKER_PORT was not started by this script; leaving it alone"
        return 0
    fi
    stop_pid tansu "$TANSU_PID" "$TANSU_BIN"
}

# --- commands -------------------------------------------------------------------------------

write_stack_env() {
    local tmp
    tmp="$(mktemp)"
    cat >"$tmp" <<EOF
export TTLC_BROKERS=$HOST:$BROKER_PORT
export TTLC_DATABASE_URL=postgres://ttlc:ttlc@$HOST:$PG_PORT/ttlc
export TTLC_CLICKHOUSE_URL=http://$HOST:$CH_HTTP_PORT/ttlc
export TTLC_PG_PORT=$PG_PORT
export TTLC_CH_HTTP_PORT=$CH_HTTP_PORT
export TTLC_CH_TCP_PORT=$CH_TCP_PORT
export TTLC_BROKER_PORT=$BROKER_PORT
export TTLC_BROKER_STORAGE=$BROKER_STORAGE
export TTLC_PYTHON=$VENV/bin/python
export TTLC_TANSU_BIN=$TANSU_BIN
EOF
    install -m 0644 "$tmp" "$STACK_ENV"
    rm -f "$tmp"
}

# One `up` or `stop` at a time; tests may call `up` concurrently. Daemons started while holding
# the lock get `9>&-`: a server that inherited fd 9 would hold the lock for its whole life.
take_lock() {
    mkdir -p "$RUN_DIR"
    exec 9>"$RUN_DIR/stack.lock"
    if ! flock -n 9; then
        log "another stack.sh up/stop is running; waiting for it"
        flock 9
    fi
}

cmd_up() {
    require_root
    take_lock
    local started=$SECONDS
    ensure_base_packages
    mkdir -p "$STATE_DIR" "$RUN_DIR" "$LOG_DIR"
    postgres_up
    clickhouse_up
    venv_up
    tansu_up
    write_stack_env
    log "stack is up in $((SECONDS - started))s (postgres $HOST:$PG_PORT, clickhouse $HOST:$CH_HTTP_PORT, broker $HOST:$BROKER_PORT); '$0 env' prints the settings"
}

cmd_status() {
    local rc=0
    postgres_status || rc=1
    clickhouse_status || rc=1
    if [[ -x $VENV/bin/python ]]; then
        tansu_status || rc=1
    else
        printf '%-11s down  %s:%s  (no venv at %s to probe it)\n' tansu "$HOST" "$BROKER_PORT" "$VENV"
        rc=1
    fi
    return "$rc"
}

cmd_stop() {
    require_root
    take_lock
    tansu_stop
    clickhouse_stop
    postgres_stop
    log "stopped"
}

cmd_env() {
    [[ -f $STACK_ENV ]] || die "no stack settings at $STACK_ENV; run '$0 up' first"
    cat "$STACK_ENV"
}

main() {
    validate_knobs
    case "${1:-up}" in
        up) cmd_up ;;
        status) cmd_status ;;
        stop) cmd_stop ;;
        env) cmd_env ;;
        -h | --help | help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
        *) die "unknown command '$1' (use: up | status | stop | env)" ;;
    esac
}

main "$@"
