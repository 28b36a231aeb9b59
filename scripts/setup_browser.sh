#!/usr/bin/env bash
# Install headless Chromium from Debian for the browser test (tests/test_browser.py,
# scripts/browser_check.py), if it is missing: apt-get install chromium chromium-driver.
# Needs root (or sudo without a password) on a Debian-based machine; elsewhere it says so and
# exits 0, and the browser test skips with that reason.
#
# Usage: bash scripts/setup_browser.sh        (also: make test's set-up, make browser)
set -euo pipefail
log() { echo "setup_browser: $*"; }

if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [[ -n "${CHROMIUM:-}" ]]; then
  log "Chromium present, skipped"; exit 0
fi
if ! command -v apt-get >/dev/null; then
  log "NOTE: no apt-get here; install Chromium yourself (or set CHROMIUM); the browser test skips"; exit 0
fi
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    log "NOTE: installing Chromium needs root: sudo apt-get install chromium chromium-driver;"
    log "      until then the browser test skips"; exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
log "apt-get install chromium chromium-driver"
if ! $SUDO apt-get install -y -q -o DPkg::Lock::Timeout=300 chromium chromium-driver >/dev/null; then
  log "package not found in the apt lists; running apt-get update first"
  if ! { $SUDO apt-get update -q >/dev/null &&
         $SUDO apt-get install -y -q -o DPkg::Lock::Timeout=300 chromium chromium-driver >/dev/null; }; then
    log "NOTE: apt-get could not install Chromium (no registry?); the browser test skips"; exit 0
  fi
fi
log "done: $(chromium --version 2>/dev/null || true)"
