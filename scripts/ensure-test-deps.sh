#!/usr/bin/env bash
# The test suite starts its own PostgreSQL (embedded-postgres, from npm) and its own redis-server processes; Redis
# comes from Debian, and so do DCMTK's storescu/echoscu, the real DICOM peers of the DIMSE tests, and Chromium, the
# headless browser the web console's end-to-end tests drive (playwright-core never downloads one). Install them when
# missing and we are allowed to (root with apt-get).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v storescu >/dev/null 2>&1 && [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing redis-server, dcmtk and chromium (Debian) for the test suite" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server dcmtk chromium >/dev/null
  # Debian's package may start a system instance; the tests start their own on free ports.
  exit 0
fi
echo "redis-server, dcmtk and chromium are required for the tests: install them (Debian: apt-get install redis-server dcmtk chromium)" >&2
exit 1
