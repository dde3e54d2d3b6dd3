#!/usr/bin/env bash
# Exit with a sentence naming what to install when `go` is missing or older than the builds
# need (Kubernetes 1.34 and interLink's go.mod ask for Go >= 1.24; GOTOOLCHAIN=local forbids
# Go from downloading a newer toolchain by itself).
set -euo pipefail
NEED_MAJOR=1 NEED_MINOR=24
if ! command -v go >/dev/null; then
  echo "Go ${NEED_MAJOR}.${NEED_MINOR} or newer is needed to build the testbed's Kubernetes and interLink," \
       "and 'go' is not on PATH: install it from https://go.dev/dl/ (Debian's golang package is" \
       "older) and put its bin/ folder on PATH." >&2
  exit 1
fi
ver=$(go env GOVERSION 2>/dev/null || true)
[ -n "$ver" ] || ver=$(go version | awk '{print $3}')
if [[ ! $ver =~ ^go([0-9]+)\.([0-9]+) ]] \
   || (( BASH_REMATCH[1] < NEED_MAJOR || (BASH_REMATCH[1] == NEED_MAJOR && BASH_REMATCH[2] < NEED_MINOR) )); then
  echo "Go ${NEED_MAJOR}.${NEED_MINOR} or newer is needed to build the testbed's Kubernetes and interLink," \
       "and 'go' on PATH is $ver ($(command -v go)): install a newer Go from https://go.dev/dl/" \
       "and put it first on PATH." >&2
  exit 1
fi
