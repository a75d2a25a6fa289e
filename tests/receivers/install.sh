#!/usr/bin/env bash
# Installs the libraries the README's Node and Go receivers use, at the versions pinned here
# (package-lock.json, go.sum), for tests/unit/security/test_readme_receivers.py: the npm packages
# into $REPO/.tools/receivers/node_modules, the Go modules into the module cache (GOPATH and
# GOCACHE default to .cache/go, as for deploy/tools/install.sh), compiled once so that each
# test's build only compiles the README's snippets. Idempotent: a stamp records what was
# installed, so a warm run takes well under a second. Node 20+, npm and Go are required; without
# them it fails, naming what is missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TARGET="$REPO/.tools/receivers"
STAMP="$TARGET/.installed"

export GOPATH="${GOPATH:-$REPO/.cache/go}"
export GOCACHE="${GOCACHE:-$REPO/.cache/go/build}"
export GOMODCACHE="${GOMODCACHE:-$GOPATH/pkg/mod}"
export GOFLAGS="${GOFLAGS:--buildvcs=false} -mod=readonly"
export GOWORK=off
export CGO_ENABLED=0

log() { printf 'receivers: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

require() {
    command -v node >/dev/null ||
        die "node is required (Node.js 20 or newer): the README's Node receivers run under it"
    command -v npm >/dev/null || die "npm is required to install the README's Node libraries"
    command -v go >/dev/null || die "go is required to build the README's Go receivers"
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    [[ "$major" -ge 20 ]] || die "node $(node --version) is too old: jose 6 needs Node.js 20+"
}

# The pins an install was made from (the test compares it with the files it finds).
fingerprint() {
    cat "$HERE/package.json" "$HERE/package-lock.json" "$HERE/go.mod" "$HERE/go.sum" |
        sha256sum | cut -c1-16
}

require
stamp="$(fingerprint)"
if [[ "$(cat "$STAMP" 2>/dev/null)" == "$stamp" ]]; then
    exit 0
fi
start=$SECONDS
rm -rf "$TARGET" && mkdir -p "$TARGET"
cp "$HERE/package.json" "$HERE/package-lock.json" "$HERE/.npmrc" "$TARGET/"
log "installing the npm packages of tests/receivers/package-lock.json"
(cd "$TARGET" && npm ci --silent)
log "downloading and compiling the Go modules of tests/receivers/go.sum"
(
    cd "$HERE"
    go mod download
    go build github.com/go-jose/go-jose/v4 github.com/standard-webhooks/standard-webhooks/libraries/go
)
echo "$stamp" >"$STAMP"
log "installed in $((SECONDS - start))s"
