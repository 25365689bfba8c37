#!/usr/bin/env bash
# Resolve the pinned Kafka jars (deploy/local/kafka/pom.xml) into var/kafka/libs with Maven.
# Cached: does nothing when var/kafka/libs was filled from the same pom.xml (sha256 stamp).
# Maven's own cache (~/.m2) makes a re-resolve after a pom change cheap.
# Usage: deploy/local/kafka-libs.sh [--force]
# Environment: LADDER_MVN_ARGS, extra mvn arguments (e.g. "-s my-settings.xml" for a mirror).
set -euo pipefail
LOG_PREFIX="kafka-libs"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

POM="$DEPLOY_LOCAL/kafka/pom.xml"
KAFKA_DIR="$VAR_DIR/kafka"
LIBS="$KAFKA_DIR/libs"
STAMP="$LIBS/.pom.sha256"

[[ -f "$POM" ]] || die "missing $POM"
mkdir -p "$KAFKA_DIR"
exec 8>"$KAFKA_DIR/.libs.lock"
flock -w 600 8 || die "could not lock $KAFKA_DIR/.libs.lock"

want="$(sha256sum "$POM" | cut -d' ' -f1)"
if [[ "${1:-}" != "--force" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] &&
  compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null; then
  exit 0
fi

require_cmd mvn "install Maven (apt-get install maven) or run deploy/local/install.sh"
require_cmd java "install Java 17 (apt-get install openjdk-17-jre-headless) or run deploy/local/install.sh"

say "resolving Kafka jars from Maven Central into ${LIBS#"$LADDER_ROOT"/} ..."
tmp="$KAFKA_DIR/libs.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
# The plugin is named in full (not "dependency:"), so that with an empty ~/.m2 and no network
# mvn reports the failed download rather than "No plugin found for prefix 'dependency'".
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# shellcheck disable=SC2086  # LADDER_MVN_ARGS is a list of arguments
if ! out="$(mvn -q -B -Dstyle.color=never ${LADDER_MVN_ARGS:-} -f "$POM" "$DEP_PLUGIN:copy-dependencies" \
  -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1)"; then
  out="$(sed -E 's/\x1b\[[0-9;]*m//g' <<<"$out")"
  printf '%s\n' "$out" >&2
  die "mvn could not resolve the Kafka jars from Maven Central: $(grep -m1 -E '^\[ERROR\] +[^ ]' <<<"$out" | sed -E 's/^\[ERROR\] +//' || echo "see mvn output above")"
fi
compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "mvn succeeded but no kafka_2.13 jar landed in $tmp"
echo "$want" >"$tmp/.pom.sha256"
rm -rf "$LIBS"
mv "$tmp" "$LIBS"
trap - EXIT
say "$(find "$LIBS" -name '*.jar' | wc -l) jars in ${LIBS#"$LADDER_ROOT"/}"
