#!/usr/bin/env bash
# Installs the system packages the end-to-end suite needs, only those missing.
#   cmake autoconf automake libtool g++ make: aws-lambda-ric@3.3.0 (npm) compiles native code
#   zip unzip: handy for building function packages by hand
#   python3-venv: /usr/bin/python3 -m venv for the test virtualenv
# Uses sudo only when not root. Safe to run repeatedly.
set -euo pipefail

log() { printf '[setup-deps] %s\n' "$*"; }

want=(cmake autoconf automake libtool g++ make zip unzip python3-venv ca-certificates)
missing=()
for pkg in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    log "all system packages present"
else
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi

for tool in cargo node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        log "warning: $tool not found on PATH (expected on this machine kind)"
    fi
done
log "done"
