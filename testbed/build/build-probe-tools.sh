#!/usr/bin/env bash
# Build Prometheus and kube-state-metrics from the Go module proxy, cached by version under
# $INTERTWIN_CACHE/probe, for the manual comparison of our APEL records with the interTwin
# Kubernetes usage probe's (scripts/compare-with-probe.sh; docs/apel-probe-comparison.md).
# Neither is needed by the demo or the tests, so scripts/setup.sh does not run this.
#
# Both modules' go.mod have no replace directives, so `go install mod/cmd@version` builds them.
# Prometheus' web UI assets are not embedded (they need the `builtinassets` tag and an npm
# build, https://github.com/prometheus/prometheus/blob/main/Makefile); its HTTP API, which is
# all the probe uses, is there. The `remove_all_sd` tag leaves out every service discovery but
# static, file and HTTP (README, "Service discovery plugins":
# https://github.com/prometheus/prometheus/blob/main/README.md), which is most of the build:
# the comparison scrapes one static target.
set -euo pipefail
PROMV=${PROMETHEUS_VERSION:-v0.316.0}   # the Go module version of Prometheus 3.16.0
KSMV=${KSM_VERSION:-v2.19.1}
CACHE=${INTERTWIN_CACHE:-$HOME/.cache/intertwin-hub}
OUT="$CACHE/probe/prometheus-$PROMV-ksm-$KSMV"

if [ -x "$OUT/prometheus" ] && [ -x "$OUT/kube-state-metrics" ]; then
  echo "Prometheus $PROMV and kube-state-metrics $KSMV: cached in $OUT"; exit 0
fi
. "$(dirname "$0")/go-build.sh" "$@"
export GOBIN="$work/bin"
V=github.com/prometheus/common/version
if [ ! -x "$OUT/prometheus" ]; then
  echo "== building Prometheus $PROMV into $OUT"
  # Prometheus 3.x is published as Go module v0.3MM.P for release 3.MM.P
  m=${PROMV#v0.}; rel="${m:0:1}.${m:1}"
  go install -p 2 -trimpath -tags remove_all_sd -ldflags "-s -w -X $V.Version=$rel -X $V.Branch=module-proxy" \
    "github.com/prometheus/prometheus/cmd/prometheus@$PROMV"
  mv "$GOBIN/prometheus" "$OUT/prometheus"
fi
if [ ! -x "$OUT/kube-state-metrics" ]; then
  echo "== building kube-state-metrics $KSMV into $OUT"
  go install -p 2 -trimpath -tags remove_all_sd -ldflags "-s -w -X $V.Version=${KSMV#v} -X $V.Branch=module-proxy" \
    "k8s.io/kube-state-metrics/v2@$KSMV"
  mv "$GOBIN/kube-state-metrics" "$OUT/kube-state-metrics"
fi
echo "Prometheus $PROMV and kube-state-metrics $KSMV: built in $OUT"
