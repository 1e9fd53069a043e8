#!/usr/bin/env bash
# Install bubblewrap (`bwrap`), the sandbox every contributor task runs in (docs/security.md).
# Used by `make test`; quick when it is already there. It installs with the system's package
# manager when it can (as root, or with passwordless sudo) and otherwise says how, without
# failing: the runner then refuses untrusted tasks (unless --no-sandbox) and the sandbox tests
# fail with the same instructions.
set -euo pipefail

if command -v bwrap >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "install_bwrap: bubblewrap is not installed and this user cannot install packages." >&2
  echo "  Install it yourself: sudo apt-get install bubblewrap (Debian/Ubuntu)," >&2
  echo "  sudo dnf install bubblewrap (Fedora), sudo pacman -S bubblewrap (Arch)." >&2
  exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -q bubblewrap >/dev/null 2>&1 || {
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q bubblewrap >/dev/null
  }
elif command -v dnf >/dev/null 2>&1; then
  "${sudo[@]}" dnf install -y -q bubblewrap
elif command -v pacman >/dev/null 2>&1; then
  "${sudo[@]}" pacman -S --noconfirm bubblewrap
elif command -v apk >/dev/null 2>&1; then
  "${sudo[@]}" apk add -q bubblewrap
else
  echo "install_bwrap: no known package manager; install bubblewrap (bwrap) yourself." >&2
  exit 0
fi
command -v bwrap >/dev/null 2>&1 && echo "install_bwrap: installed $(bwrap --version)"
