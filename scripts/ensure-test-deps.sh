#!/usr/bin/env bash
# The test suite starts its own PostgreSQL (embedded-postgres, from npm) and its own redis-server processes; Redis
# comes from Debian, and so do DCMTK's storescu/echoscu, the real DICOM peers of the DIMSE tests. Install them when
# missing and we are allowed to (root with apt-get).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v storescu >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing redis-server and dcmtk (Debian) for the test suite" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server dcmtk >/dev/null
  # Debian's package may start a system instance; the tests start their own on free ports.
  exit 0
fi
echo "redis-server and dcmtk are required for the tests: install them (Debian: apt-get install redis-server dcmtk)" >&2
exit 1
