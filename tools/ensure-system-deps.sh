#!/usr/bin/env bash
# Makes sure the real servers the test suite starts are installed: PostgreSQL
# server binaries (initdb, pg_ctl, postgres). Installs them with apt-get when
# missing and we are root; otherwise fails loudly. Never starts anything: the
# tests start their own throwaway servers on free loopback ports.
set -euo pipefail

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

if ! pg_bin >/dev/null; then
  echo "PostgreSQL server binaries not found; installing the Debian package 'postgresql'..." >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "FATAL: PostgreSQL is required by the tests and I am not root: apt-get install postgresql" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  # Debian's package may start a system cluster on 5432; the tests never use it.
fi
dir=$(pg_bin) || { echo "FATAL: PostgreSQL install failed: no initdb/pg_ctl under /usr/lib/postgresql" >&2; exit 2; }
id postgres >/dev/null 2>&1 || { echo "FATAL: the 'postgres' system user is missing" >&2; exit 2; }
echo "PostgreSQL: $("$dir/postgres" --version)"
