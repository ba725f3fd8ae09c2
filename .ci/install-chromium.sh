#!/usr/bin/env bash
# Installs Debian's Chromium for the headless rendering test of the HTML report
# (crates/report/src/html.rs, headless_chromium_renders_the_headings_and_three_charts).
# Idempotent: does nothing when `chromium` is already on PATH. Needs root (or sudo) and Debian's package archive.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "chromium already installed: $(chromium --version 2>/dev/null || echo '?')"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# With the recommended packages, as the test was run; WenQuanYi Micro Hei (5 MB) so that screenshots show Chinese.
$SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
echo "chromium installed: $(chromium --version 2>/dev/null || echo '?')"
