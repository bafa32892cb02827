#!/usr/bin/env bash
# Install what tests/test_ui.py needs: Debian's Chromium and Playwright for Python in .venv.
# Idempotent: safe to run before every `make test`. Run from anywhere.
#
# Playwright drives the system browser (/usr/bin/chromium); `playwright install` is never run,
# since it downloads a browser of its own from a CDN that CI cannot reach.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PLAYWRIGHT_SPEC="${PLAYWRIGHT_SPEC:-playwright>=1.65,<2}"

if [ -x /usr/bin/chromium ]; then
    echo "install-browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
else
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-browser: not root and no sudo: cannot apt-get install chromium" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium
    echo "install-browser: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
fi

if [ ! -x "$VENV/bin/python" ]; then
    make setup VENV="$VENV"  # a clean clone: create the venv the way `make test` does
fi
if "$VENV/bin/python" -c "import playwright.sync_api" 2>/dev/null; then
    echo "install-browser: playwright $("$VENV/bin/python" -m pip show playwright 2>/dev/null \
        | sed -n 's/^Version: //p') already in $VENV"
else
    "$VENV/bin/python" -m pip install --quiet "$PLAYWRIGHT_SPEC"
    echo "install-browser: installed playwright into $VENV"
fi
