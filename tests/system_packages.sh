#!/usr/bin/env bash
# The system parts the tests need beyond pip: PostgreSQL (the shared-study tests of `compress tune`
# start a throwaway server), OpenSSH's server (the board tests start a loopback board) and an
# emulated aarch64 Python (tests/boards/arm64_root.sh). Installed with apt where this runs as root;
# elsewhere it says what is missing, and the tests that need it fail naming it (or skip them:
# pytest -m "not slow and not emulated" leaves out the database and the emulated board).
set -uo pipefail
cd "$(dirname "$0")/.."
need=()
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  [ ${#need[@]} -eq 0 ] || echo "note: the tests also need ${need[*]} (not root, or no apt here: install them yourself)" >&2
  exit 0
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} for the tests (once)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null || exit 1
fi
bash tests/boards/arm64_root.sh
