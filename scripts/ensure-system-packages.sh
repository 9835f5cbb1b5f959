#!/usr/bin/env bash
# Install the Debian packages Tattletale needs when their commands are missing.
# Usage: scripts/ensure-system-packages.sh COMMAND=PACKAGE [COMMAND=PACKAGE ...]
# A pair whose COMMAND is a path (starts with /) checks for that file instead, and one
# written import:MODULE checks that $PYTHON (default python3) can import MODULE.
set -euo pipefail

missing=()
for pair in "$@"; do
  cmd=${pair%%=*}
  pkg=${pair#*=}
  if [[ $cmd == /* ]]; then
    [[ -e $cmd ]] || missing+=("$pkg")
  elif [[ $cmd == import:* ]]; then
    "${PYTHON:-python3}" -c "import ${cmd#import:}" >/dev/null 2>&1 || missing+=("$pkg")
  else
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "Installing system packages: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  apt=(apt-get)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  apt=(sudo apt-get)
else
  echo "error: these packages are missing: ${missing[*]}" >&2
  echo "Install them with your system's package manager, e.g.:" >&2
  echo "  sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no apt-get here; install these packages yourself: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${apt[@]}" update -qq
"${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
