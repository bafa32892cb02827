#!/usr/bin/env bash
# Install what the tracking-server tests need: Debian's PostgreSQL (initdb, pg_ctl, postgres).
# Idempotent: safe to run before every `make test`. The tests start their own throw-away
# cluster (tests/conftest.py, lrexp.tracking.localserver); the package's default cluster is not used.
set -euo pipefail

if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "install-postgres: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | head -1) already installed"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-postgres: not root and no sudo: cannot apt-get install postgresql" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends postgresql
echo "install-postgres: installed $(ls -d /usr/lib/postgresql/*/bin | head -1)"
