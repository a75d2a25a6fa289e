#!/usr/bin/env bash
# Installs the benchmark's system tools from Debian's packages: nginx (with the echo module,
# for the delayed endpoint), wrk, and a JDK with Maven; then builds the Apache Camel peer
# (bench/camel, a Spring Boot jar) with Maven. A no-op when all of it is there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

build_camel() {
    local jar="$here/camel/target/camel-peer.jar"
    if [ -e "$jar" ] && [ -z "$(find "$here/camel/pom.xml" "$here/camel/src" -newer "$jar" -type f)" ]; then
        return 0
    fi
    echo "bench: building the Apache Camel peer (bench/camel, Maven)" >&2
    mvn -q -B -f "$here/camel/pom.xml" package -DskipTests
}

missing=()
command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v nginx >/dev/null || missing+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ] || missing+=(libnginx-mod-http-echo)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -eq 0 ]; then
    build_camel
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "bench: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
# The packaged nginx service must not start (it would listen on port 80 of every address): the
# benchmark runs its own nginx on 127.0.0.1, configured in a temporary directory. A policy-rc.d
# that says "no" (exit 101) keeps services from starting during the install.
added_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    added_policy=1
fi
trap '[ -z "$added_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
build_camel
