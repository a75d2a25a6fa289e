#!/usr/bin/env bash
# A single-node Kafka broker (KRaft, broker+controller in one JVM) on 127.0.0.1, for tests,
# the demo and the benchmark. Needs only Java 17+ and Maven.
#
#   kafka.sh fetch           fetch the broker's jars into the cache once (then a no-op)
#   kafka.sh start DIR       start a broker whose config, data and logs live in DIR;
#                            prints its bootstrap address, 127.0.0.1:PORT
#   kafka.sh stop DIR        stop it (SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT); idempotent
#   kafka.sh restart DIR     stop, then start on the same ports and data
#   kafka.sh status DIR      print the bootstrap address and exit 0 if it runs, else exit 1
#
# Environment: KAFKA_CACHE (the jar directory, default $REPO/.cache/kafka/libs), JAVA_HOME,
# KAFKA_HEAP_OPTS, KAFKA_JVM_OPTS, KAFKA_START_TIMEOUT (s, default 60), KAFKA_STOP_TIMEOUT
# (s, default 30), KAFKA_OWNER_PID (stop the broker when that process ends), KAFKA_CDS=0
# (neither record nor use the class-data archive).
#
# Start-up time: `fetch` also records a class-data-sharing archive of a broker's start
# (Java's AppCDS), which cuts a start from about 5 s to about 2 s on two cores.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
REPO="$(cd "$HERE/../.." && pwd)"
POM="$HERE/pom.xml"
LIBS="${KAFKA_CACHE:-$REPO/.cache/kafka/libs}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms64m -Xmx512m}"
# C1 only and the serial collector: a test broker starts faster and never needs C2's peak.
JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto -Djava.awt.headless=true}"

die() {
    echo "kafka.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '4,10s/^# \{0,1\}//p' "$SELF" >&2
    exit 2
}

find_java() {
    local java version
    if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
        java="$JAVA_HOME/bin/java"
    else
        java="$(command -v java)" || die "no java: set JAVA_HOME or put Java 17+ on PATH"
    fi
    version="$("$java" -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n1)"
    [[ "${version:-0}" -ge 17 ]] || die "$java is Java ${version:-unknown}; Kafka 4 needs Java 17+"
    echo "$java"
}

# The class path, spelled out in a fixed order: a CDS archive is only used with the same one.
class_path() {
    find "$LIBS" -maxdepth 1 -name '*.jar' | LC_ALL=C sort | paste -sd:
}

# The CDS archive for this JVM and these jars.
cds_archive() {
    local java="$1" stamp
    stamp="$({ echo "$java"; "$java" -version 2>&1; sha256sum <"$POM"; } | sha256sum | cut -c1-16)"
    echo "$LIBS/kafka-$stamp.jsa"
}

cmd_fetch() {
    local marker java="" archive=""
    marker="$LIBS/.fetched-$(sha256sum "$POM" | cut -c1-16)"
    if [[ "${KAFKA_CDS:-1}" != 0 ]] && java="$(find_java 2>/dev/null)"; then
        archive="$(cds_archive "$java")"
    fi
    [[ -f "$marker" && -d "$LIBS/kraft-data" && (-z "$archive" || -f "$archive") ]] && return 0
    mkdir -p "$(dirname "$LIBS")"
    # Several test sessions may fetch at once: one fetches, the others wait and reuse it.
    exec 9>"$LIBS.lock"
    flock 9
    if [[ ! -f "$marker" ]]; then
        command -v mvn >/dev/null || die "no mvn on PATH: Maven fetches the broker's jars once"
        local tmp="$LIBS.tmp.$$" log="$LIBS.fetch.log"
        rm -rf "$tmp"
        if ! mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
            -DoutputDirectory="$tmp" >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            rm -rf "$tmp"
            die "fetching the Kafka jars failed (log: $log)"
        fi
        rm -rf "$LIBS"
        mv "$tmp" "$LIBS"
        touch "$marker"
        echo "kafka.sh: $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS" >&2
    fi
    if [[ -n "$java" && ! -d "$LIBS/kraft-data" ]]; then
        make_template "$java" || die "formatting a KRaft data directory failed"
    fi
    if [[ -n "$archive" && ! -f "$archive" ]]; then
        record_cds "$java" "$archive" || echo "kafka.sh: no CDS archive; brokers start slower" >&2
    fi
    exec 9>&-
}

# A formatted, empty KRaft data directory that a new broker copies instead of starting a JVM
# to format its own. Every such broker has the same cluster id, which no test minds.
make_template() {
    local java="$1" dir port cport
    dir="$(mktemp -d)"
    read -r port cport < <(free_ports)
    write_config "$dir" "$port" "$cport"
    if format "$java" "$dir" ""; then
        rm -rf "$LIBS/kraft-data.tmp"
        cp -a "$dir/data" "$LIBS/kraft-data.tmp"
        mv "$LIBS/kraft-data.tmp" "$LIBS/kraft-data"
    fi
    rm -rf "$dir"
    [[ -d "$LIBS/kraft-data" ]]
}

# Starts a throw-away broker with -XX:ArchiveClassesAtExit and stops it, which writes the archive.
record_cds() {
    local java="$1" archive="$2" dir port cport
    dir="$(mktemp -d)"
    read -r port cport < <(free_ports)
    write_config "$dir" "$port" "$cport"
    mkdir -p "$dir/data"
    cp -a "$LIBS/kraft-data/." "$dir/data/"
    # Stopping the JVM is what writes the archive.
    launch "$java" "$dir" "-XX:ArchiveClassesAtExit=$archive.tmp.$$ -Xlog:cds=off" >/dev/null
    cmd_stop "$dir"
    rm -rf "$dir"
    [[ -s "$archive.tmp.$$" ]] && mv "$archive.tmp.$$" "$archive"
}

# Prints "PORT CONTROLLER_PORT": two distinct free ports on 127.0.0.1.
free_ports() {
    python3 - <<'PY'
import socket

socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
PY
}

# A random cluster id, as `kafka-storage random-uuid` makes one: base64url of 16 random bytes,
# drawn again while it starts with "-" (1 in 64), which the format command would read as an
# option ("argument --cluster-id/-t: expected one argument").
cluster_id() {
    python3 - <<'PY'
import base64
import uuid

while (text := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
    pass
print(text)
PY
}

write_config() {
    local dir="$1" port="$2" cport="$3"
    cat >"$dir/server.properties" <<EOF
# Written by kafka.sh: a single-node KRaft broker for tests, on loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=2
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
# Let tests choose short session timeouts, so a killed worker's partitions move quickly.
group.min.session.timeout.ms=500
group.consumer.min.session.timeout.ms=1000
group.consumer.min.heartbeat.interval.ms=500
# Share groups (queue mode; on by default since Kafka 4.2): members join within a second, and
# tests may set a short record lock on their group.
group.share.heartbeat.interval.ms=1000
group.share.min.heartbeat.interval.ms=500
group.share.min.record.lock.duration.ms=1000
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=8388608
log.cleaner.backoff.ms=1000
# The controller's no-op record every 500 ms (each an append to the metadata log) was a quarter
# of an idle broker's CPU on two cores (0.35 -> 0.26 of a core on a slow day, 0.10 -> 0.07 on
# a fast one, with one every 5-10 s).
metadata.max.idle.interval.ms=5000
EOF
    cat >"$dir/log4j2.properties" <<EOF
status = warn
shutdownHook = disable
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
EOF
}

# format JAVA DIR CDS_OPTS: writes the KRaft metadata of a new node into DIR/data.
format() {
    local java="$1" dir="$2" cds="$3"
    mkdir -p "$dir/logs"
    # shellcheck disable=SC2086
    "$java" $JVM_OPTS $cds -Xmx256m -Dlog4j2.configurationFile="$dir/log4j2.properties" \
        -cp "$(class_path)" kafka.tools.StorageTool format -t "$(cluster_id)" \
        -c "$dir/server.properties" >"$dir/logs/format.log" 2>&1 ||
        { cat "$dir/logs/format.log" >&2; echo "kafka.sh: formatting $dir/data failed" >&2; return 1; }
}

# launch JAVA DIR EXTRA_OPTS: starts the broker of DIR and waits until it serves.
launch() {
    local java="$1" dir="$2" extra="$3" port log="$2/logs/server.log" offset pid
    port="$(sed -n 's/^advertised.listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$dir/server.properties")"
    [[ -n "$port" ]] || { echo "kafka.sh: no PLAINTEXT listener in $dir/server.properties" >&2; return 1; }
    mkdir -p "$dir/logs"
    # The log is kept across restarts; only what this start writes counts.
    offset="$(stat -c %s "$log" 2>/dev/null || echo 0)"
    # shellcheck disable=SC2086
    setsid "$java" $HEAP_OPTS $JVM_OPTS $extra \
        -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$dir/logs" \
        -cp "$(class_path)" kafka.Kafka "$dir/server.properties" \
        </dev/null >>"$dir/logs/stdout.log" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$dir/kafka.pid"
    echo "127.0.0.1:$port" >"$dir/bootstrap"
    local deadline=$((SECONDS + START_TIMEOUT))
    until tail -c +$((offset + 1)) "$log" 2>/dev/null | grep -q "Kafka Server started" &&
        port_open "$port"; do
        if ! alive "$pid"; then
            show_failure "$dir" "$offset"
            echo "kafka.sh: the broker in $dir exited while starting" >&2
            return 1
        fi
        if ((SECONDS >= deadline)); then
            show_failure "$dir" "$offset"
            echo "kafka.sh: the broker in $dir did not start within ${START_TIMEOUT}s" >&2
            return 1
        fi
        sleep 0.05
    done
    cat "$dir/bootstrap"
}

# show_failure DIR OFFSET: what went wrong in a start whose log begins at OFFSET.
show_failure() {
    local log="$1/logs/server.log"
    {
        echo "--- errors ($log):"
        tail -c +$(($2 + 1)) "$log" 2>/dev/null | grep -E '^\[[^]]*\] (ERROR|FATAL)|^[A-Za-z.$]+(Exception|Error): ' | tail -n 12
        echo "--- last lines:"
        tail -c +$(($2 + 1)) "$log" 2>/dev/null | tail -n 15
        tail -n 5 "$1/logs/stdout.log" 2>/dev/null
    } >&2
}

pid_of() {
    local dir="$1" pid
    [[ -f "$dir/kafka.pid" ]] || return 1
    pid="$(cat "$dir/kafka.pid")"
    # Only a broker started from this DIR: a recycled pid must never be signalled.
    [[ -n "$pid" ]] || return 1
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$dir/server.properties" || return 1
    echo "$pid"
}

# True while the process runs (an exited child not yet reaped, a zombie, does not count).
alive() {
    local state
    state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
    [[ -n "$state" && "$state" != Z ]]
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd_start() {
    local dir="$1" java archive cds="" port cport
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if pid_of "$dir" >/dev/null; then
        cat "$dir/bootstrap"
        return 0
    fi
    cmd_fetch
    java="$(find_java)"
    archive="$(cds_archive "$java")"
    [[ -f "$archive" && "${KAFKA_CDS:-1}" != 0 ]] && cds="-XX:SharedArchiveFile=$archive"
    if [[ ! -f "$dir/server.properties" ]]; then
        read -r port cport < <(free_ports)
        write_config "$dir" "$port" "$cport"
    fi
    if [[ ! -f "$dir/data/meta.properties" ]]; then
        if [[ -d "$LIBS/kraft-data" ]]; then
            mkdir -p "$dir/data"
            cp -a "$LIBS/kraft-data/." "$dir/data/"
        else
            format "$java" "$dir" "$cds" || exit 1
        fi
    fi
    if ! launch "$java" "$dir" "$cds"; then
        cmd_stop "$dir"
        exit 1
    fi
    if [[ -n "${KAFKA_OWNER_PID:-}" ]]; then
        # Stop the broker when its owner (a test session) dies without stopping it.
        # shellcheck disable=SC2016 # $1.. expand in the child shell
        setsid bash -c 'tail --pid="$1" -f /dev/null; bash "$2" stop "$3"' _ \
            "$KAFKA_OWNER_PID" "$SELF" "$dir" </dev/null >/dev/null 2>&1 &
    fi
}

cmd_stop() {
    local dir="$1" pid
    [[ -d "$dir" ]] || return 0
    dir="$(cd "$dir" && pwd)"
    if pid="$(pid_of "$dir")"; then
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + STOP_TIMEOUT))
        while alive "$pid" && ((SECONDS < deadline)); do
            sleep 0.05
        done
        if alive "$pid"; then
            echo "kafka.sh: the broker in $dir ignored SIGTERM for ${STOP_TIMEOUT}s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            while alive "$pid"; do sleep 0.05; done
        fi
    fi
    rm -f "$dir/kafka.pid"
}

cmd_status() {
    local dir="$1"
    dir="$(cd "$dir" 2>/dev/null && pwd)" || return 1
    pid_of "$dir" >/dev/null || return 1
    cat "$dir/bootstrap"
}

[[ $# -ge 1 ]] || usage
case "$1" in
fetch) cmd_fetch ;;
start) [[ $# -eq 2 ]] || usage; cmd_start "$2" ;;
stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
restart) [[ $# -eq 2 ]] || usage; cmd_stop "$2"; cmd_start "$2" ;;
status) [[ $# -eq 2 ]] || usage; cmd_status "$2" ;;
*) usage ;;
esac
