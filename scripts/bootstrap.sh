#!/usr/bin/env bash
# System prerequisites of the local runtime: Python >= 3.11, Java 17+ (the Kafka broker)
# and Maven (fetches the broker's jars from Maven Central once). Installs what is
# missing with apt-get when run as root on Debian/Ubuntu; otherwise says what to do.
set -euo pipefail

need=()
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "moodpipe needs Python 3.11 or newer (python3 is $(python3 --version 2>&1))" >&2; exit 1; }
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1 || true)
if [ -z "${java_major}" ] || [ "${java_major}" -lt 17 ]; then need+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null || need+=(maven)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "please install: ${need[*]}" >&2
    exit 1
  fi
fi
