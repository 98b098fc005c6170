#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for tools/check_html.py and the browser tests.
#
# Idempotent: does nothing when Chromium is already there (at $CHROMIUM, /usr/bin/chromium, or
# on PATH). Otherwise installs the Debian package `chromium`, running `apt-get update` only when
# the package lists are missing or stale (the first install attempt fails). Needs root, or sudo
# without a password. Quiet on success; prints apt's output only when something goes wrong.
set -uo pipefail

target="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$target" ] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "install_chromium: Chromium is missing and installing it needs root (or passwordless sudo);" \
       "run: apt-get install chromium" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: no apt-get on this machine; install Chromium by hand and set CHROMIUM=/path" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  # fonts-liberation: metric-compatible Arial/Times/Courier, so pages and screenshots do not fall
  # back to whatever single font happens to be installed.
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-liberation >>"$log" 2>&1
}

if ! apt_install; then
  # On a fresh machine the package lists are empty (or stale); refresh them once and retry.
  if ! { "${as_root[@]}" apt-get update -qq >>"$log" 2>&1 && apt_install; }; then
    echo "install_chromium: apt-get could not install chromium; its output:" >&2
    cat "$log" >&2
    exit 1
  fi
fi

if ! [ -x "$target" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "install_chromium: the chromium package installed, but there is no chromium at $target or on PATH" >&2
  exit 1
fi
