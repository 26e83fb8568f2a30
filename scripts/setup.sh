#!/usr/bin/env bash
# Everything amcompanion needs on a fresh Debian/Ubuntu machine: promtool and amtool (the judges of the
# compiled output), Chromium (the history pages' tests), then amcompanion with its test dependencies in ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v amtool >/dev/null || need_apt+=(prometheus-alertmanager)
command -v chromium >/dev/null || need_apt+=(chromium fonts-liberation)  # the history pages are tested in it
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]} (Debian packages)"
    as_root apt-get update -qq
    # Never start the daemons these packages ship: amcompanion starts its own on loopback when it needs them.
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "setup: done ($(.venv/bin/amcompanion --version); $(promtool --version 2>&1 | head -1 | cut -d' ' -f1-3); $(amtool --version 2>&1 | head -1 | cut -d' ' -f1-3))"
