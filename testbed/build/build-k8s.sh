#!/usr/bin/env bash
# Build the Kubernetes control plane (kube-apiserver, kube-scheduler, kube-controller-manager)
# and etcd from the Go module proxy, cached by version under $INTERTWIN_CACHE.
#
# `go install k8s.io/kubernetes/cmd/...@v` cannot work (staging modules at v0.0.0 + replaces),
# so a throw-away wrapper module requires k8s.io/kubernetes and replaces every staging module
# with its published v0.Y.Z twin. See ../../README.md#testbed.
set -euo pipefail
KV=${K8S_VERSION:-1.34.4}
ETCDV=${ETCD_VERSION:-v3.5.21}
CACHE=${INTERTWIN_CACHE:-$HOME/.cache/intertwin-hub}
OUT="$CACHE/k8s/$KV-$ETCDV"
CMDS="kube-apiserver kube-scheduler kube-controller-manager"

have_all() { for c in $CMDS etcd; do [ -x "$OUT/$c" ] || return 1; done; }
if have_all; then echo "k8s $KV + etcd $ETCDV: cached in $OUT"; exit 0; fi
# --check: only say whether a build could run here
. "$(dirname "$0")/go-build.sh" "$@"

echo "== building Kubernetes v$KV control plane into $OUT (cold: ~15-30 min on 2 cores)"
mkdir "$work/k8s"; cd "$work/k8s"
go mod init k8s-testbed-bins >/dev/null 2>&1
gomod=$(go mod download -json "k8s.io/kubernetes@v$KV" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
SV="v0.${KV#1.}"
for m in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod"); do
  go mod edit -replace="$m=$m@$SV"
done
for c in $CMDS; do go get "k8s.io/kubernetes/cmd/$c@v$KV" >/dev/null; done
V=k8s.io/component-base/version
LDF="-s -w -X $V.gitVersion=v$KV -X $V.gitMajor=1 -X $V.gitMinor=$(echo "$KV" | cut -d. -f2) -X $V.gitTreeState=clean -X $V.buildDate=1970-01-01T00:00:00Z"
for c in $CMDS; do
  [ -x "$OUT/$c" ] && continue
  echo "-- $c"
  go build -p 2 -trimpath -ldflags "$LDF" -o "$OUT/$c.tmp" "k8s.io/kubernetes/cmd/$c"
  mv "$OUT/$c.tmp" "$OUT/$c"
done

if [ ! -x "$OUT/etcd" ]; then
  echo "-- etcd $ETCDV"
  mkdir "$work/etcd"; cd "$work/etcd"
  go mod init etcd-testbed-bin >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$ETCDV" >/dev/null
  go build -p 2 -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$OUT/etcd.tmp" "$OUT/etcd"
fi
echo "k8s $KV + etcd $ETCDV: built in $OUT"
