#!/usr/bin/env bash
# Installs the benchmark's system tools from Debian's packages: nginx (with the echo module,
# for the delayed endpoint) and wrk. A no-op when they are already there.
set -euo pipefail

missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
[ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ] || missing+=(libnginx-mod-http-echo)
command -v wrk >/dev/null || missing+=(wrk)
[ ${#missing[@]} -eq 0 ] && exit 0

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
