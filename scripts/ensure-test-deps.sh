#!/usr/bin/env bash
# The test suite starts its own PostgreSQL (embedded-postgres, from npm) and its own redis-server processes; Redis
# comes from Debian. Install it when it is missing and we are allowed to (root with apt-get).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing redis-server (Debian) for the test suite" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server >/dev/null
  # Debian's package may start a system instance; the tests start their own on free ports.
  exit 0
fi
echo "redis-server is required for the tests: install it (Debian: apt-get install redis-server)" >&2
exit 1
