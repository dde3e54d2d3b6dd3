#!/usr/bin/env bash
# Build the real interLink virtual kubelet and interLink API from the Go module proxy,
# cached by version under $INTERTWIN_CACHE.
#
# `go install` refuses interLink (its go.mod replaces virtual-kubelet with superfly's fork),
# so a wrapper module repeats that replace. The proxy reachable here serves interLink only as
# the pseudo-version below (tag 0.5.2-pre2, 2025-07-22); newer tags answer 403.
set -euo pipefail
ILV=${INTERLINK_VERSION:-v0.0.0-20250722085031-9ed14a4e89d5}
VK_REPLACE=${VK_REPLACE:-github.com/superfly/virtual-kubelet@v0.0.0-20250426133649-339b787d1205}
CACHE=${INTERTWIN_CACHE:-$HOME/.cache/intertwin-hub}
OUT="$CACHE/interlink/$ILV"

if [ -x "$OUT/virtual-kubelet" ] && [ -x "$OUT/interlink" ]; then
  echo "interLink $ILV: cached in $OUT"; exit 0
fi
# --check: only say whether a build could run here
. "$(dirname "$0")/go-build.sh" "$@"
cd "$work"
echo "== building interLink $ILV into $OUT (cold: ~3-6 min on 2 cores)"
go mod init interlink-testbed-bins >/dev/null 2>&1
go mod edit -replace "github.com/virtual-kubelet/virtual-kubelet=$VK_REPLACE"
go get "github.com/interlink-hq/interlink@$ILV" >/dev/null
LDF="-s -w -X github.com/interlink-hq/interlink/pkg/virtualkubelet.KubeletVersion=$ILV"
for c in virtual-kubelet interlink; do
  echo "-- $c"
  go build -p 2 -trimpath -ldflags "$LDF" -o "$OUT/$c.tmp" "github.com/interlink-hq/interlink/cmd/$c"
  mv "$OUT/$c.tmp" "$OUT/$c"
done
echo "interLink $ILV: built in $OUT"
