#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/browser); Playwright drives it at /usr/bin/chromium.
# Idempotent: does nothing when /usr/bin/chromium exists. Exits non-zero with a message when it cannot install.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

fail() {
    echo "install_browser.sh: cannot install Chromium: $1" >&2
    echo "install_browser.sh: install it by hand (Debian/Ubuntu: apt-get install -y --no-install-recommends chromium);" \
        "the browser tests in tests/browser need $CHROMIUM and fail without it." >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "apt-get is not available (not a Debian-based system)"

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    fail "installing packages needs root, and passwordless sudo is not available"
fi

echo "install_browser.sh: installing chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq || fail "apt-get update failed"
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium || fail "apt-get install chromium failed"

[ -x "$CHROMIUM" ] || fail "apt-get finished but $CHROMIUM is missing"
echo "install_browser.sh: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed" >&2
