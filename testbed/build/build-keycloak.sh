#!/usr/bin/env bash
# Keycloak for the testbed (the server EGI Check-in runs on), as published on Maven Central
# (org.keycloak:keycloak-quarkus-dist, the same tarball as the keycloak.org download), fetched
# with Maven, unpacked into $INTERTWIN_CACHE/keycloak/<version> and built once with the
# testbed's build-time options (`kc.sh build`,
# https://www.keycloak.org/server/configuration#_optimize_the_keycloak_startup), so each start
# is `kc.sh start --optimized`: about 20 s instead of start-dev's 60-75 s on 2 busy cores.
# It runs on a Java >= 21 (https://www.keycloak.org/server/installation); --find-java prints the
# one testbed/keycloak.py uses. --check: only say whether what this script needs is installed.
set -euo pipefail
KEYCLOAK_VERSION=${KEYCLOAK_VERSION:-26.5.6}
CACHE=${INTERTWIN_CACHE:-$HOME/.cache/intertwin-hub}
OUT="$CACHE/keycloak/$KEYCLOAK_VERSION"
NEED_JAVA=21
# build-time options: an in-memory H2 database (each start begins from the realm the testbed
# creates), a local cache (no cluster discovery), health endpoints, Check-in's /auth prefix
BUILD_OPTS=(--db=dev-mem --cache=local --health-enabled=true --http-relative-path=/auth)

# A java binary of version >= NEED_JAVA: $KEYCLOAK_JAVA_HOME, $JAVA_HOME, the Temurin 25 JDK
# of this kind of machine, then `java` on PATH.
java_major() { "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p'; }
find_java() {
  local j
  for j in ${KEYCLOAK_JAVA_HOME:+"$KEYCLOAK_JAVA_HOME/bin/java"} ${JAVA_HOME:+"$JAVA_HOME/bin/java"} \
           /usr/lib/jvm/temurin-25-jdk-amd64/bin/java "$(command -v java || true)"; do
    [ -x "$j" ] || continue
    local v; v=$(java_major "$j")
    if [ -n "$v" ] && [ "$v" -ge "$NEED_JAVA" ]; then echo "$j"; return 0; fi
  done
  return 1
}
if ! JAVA=$(find_java); then
  echo "Java $NEED_JAVA or newer is needed to run the testbed's Keycloak and none was found" \
       "(looked at \$KEYCLOAK_JAVA_HOME, \$JAVA_HOME, /usr/lib/jvm/temurin-25-jdk-amd64 and java on PATH):" \
       "install one (Debian: apt-get install openjdk-21-jre-headless, or Temurin from https://adoptium.net)." >&2
  exit 1
fi
[ "${1:-}" = --find-java ] && { echo "$JAVA"; exit 0; }
if [ ! -f "$OUT/.complete" ] && ! command -v mvn >/dev/null; then
  echo "Maven (mvn) is needed once to fetch Keycloak $KEYCLOAK_VERSION from Maven Central" \
       "(Debian: apt-get install maven)." >&2
  exit 1
fi
[ "${1:-}" = --check ] && exit 0

# .complete: the unpacked tarball; .built: the build options it was built with. Each marker is
# written last, so a half-done step is redone
done_already() { [ -f "$OUT/.complete" ] && [ "$(cat "$OUT/.built" 2>/dev/null)" = "${BUILD_OPTS[*]}" ]; }
if done_already; then
  echo "Keycloak $KEYCLOAK_VERSION: cached in $OUT"; exit 0
fi
mkdir -p "$CACHE/keycloak"
# concurrent setups wait for one fetch instead of deleting each other's
exec 9>"$CACHE/keycloak/.build.lock"
flock 9
if done_already; then
  echo "Keycloak $KEYCLOAK_VERSION: cached in $OUT"; exit 0
fi
if [ ! -f "$OUT/.complete" ]; then
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  echo "== fetching Keycloak $KEYCLOAK_VERSION from Maven Central (~160 MB)"
  mvn -q -B -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:tar.gz" \
    -DoutputDirectory="$work" >&2
  rm -rf "$OUT"; mkdir -p "$OUT"
  # the tarball holds one folder keycloak-<version>/ with bin/kc.sh, lib/, conf/...
  tar -xzf "$work/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz" -C "$OUT" --strip-components=1
  [ -x "$OUT/bin/kc.sh" ] || { echo "no bin/kc.sh in the Keycloak $KEYCLOAK_VERSION tarball" >&2; exit 1; }
  touch "$OUT/.complete"
fi
echo "== building Keycloak $KEYCLOAK_VERSION for the testbed (${BUILD_OPTS[*]}; ~15-40 s)"
rm -f "$OUT/.built"
JAVA="$JAVA" JAVA_OPTS_KC_HEAP="-Xmx384m" "$OUT/bin/kc.sh" build "${BUILD_OPTS[@]}" >&2
echo "${BUILD_OPTS[*]}" > "$OUT/.built"
echo "Keycloak $KEYCLOAK_VERSION: installed in $OUT"
