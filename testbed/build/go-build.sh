# Sourced by the build scripts, with their arguments, once they found their binaries missing
# from $OUT: check that Go can build here (--check stops there: scripts/setup.sh asks before
# any step), then prepare a static build into $OUT from a throw-away folder $work, removed on
# exit.
"$(dirname "${BASH_SOURCE[0]}")/require-go.sh"
[ "${1:-}" = --check ] && exit 0
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
mkdir -p "$OUT"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
