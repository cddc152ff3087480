#!/usr/bin/env bash
# Creates the virtual environment with the pinned dependencies, the system packages
# (fonts for synthetic handwriting, Chromium for browser tests) when apt-get is available, and
# the handwriting fonts from npm (recognition/synth/npm-fonts) when npm is.
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

# Ten Debian hands are too few to learn handwriting from; Fontsource packages 124 more.
if command -v npm >/dev/null; then
  npm ci --prefix recognition/synth/npm-fonts --no-audit --no-fund --silent
else
  echo "== npm not found: synthetic handwriting uses the Debian fonts only" >&2
fi
touch "$venv/.installed"
