#!/usr/bin/env bash
# Creates the virtual environment with the pinned dependencies, and the system packages
# (fonts for synthetic handwriting, Chromium for browser tests) when apt-get is available.
set -euo pipefail
venv=${1:-.venv}
cd "$(dirname "$0")/.."

if [ -f requirements-apt.txt ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=$(grep -vE '^\s*(#|$)' requirements-apt.txt | while read -r pkg; do
    dpkg -s "$pkg" >/dev/null 2>&1 || echo "$pkg"; done)
  if [ -n "$missing" ]; then
    echo "== Installing system packages: $missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
fi

[ -x "$venv/bin/python" ] || python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# torch is pinned to 2.14.0 because kraken 7.1.1 requires torch<=2.14.
"$venv/bin/python" -m pip install -q -r requirements.lock
touch "$venv/.installed"
