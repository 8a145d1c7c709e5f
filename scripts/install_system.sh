#!/usr/bin/env bash
# System packages mdrl uses. Each is optional at run time (the code degrades with a warning),
# but tests and CI want them all: bubblewrap (sandbox namespaces), chromium (report screenshot test).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends bubblewrap chromium >/dev/null
