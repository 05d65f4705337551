#!/usr/bin/env bash
# Makes sure the real servers and tools the test suite uses are installed:
# PostgreSQL server binaries (initdb, pg_ctl, postgres), Redis (redis-server)
# and Prometheus's promtool (Debian package prometheus; tests/deploy checks the
# rules and runs their unit tests with it). Installs them with apt-get when
# missing and we are root; otherwise fails loudly. Never leaves anything
# running: the tests start their own throwaway servers on free loopback ports
# (Debian's redis package starts one on 6379, its prometheus package may start
# one on 9090; both are stopped).
set -euo pipefail

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

need=()
pg_bin >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v promtool >/dev/null || need+=(prometheus)

if [ ${#need[@]} -gt 0 ]; then
  echo "Installing the Debian packages the tests need: ${need[*]}..." >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "FATAL: ${need[*]} required by the tests and I am not root: apt-get install ${need[*]}" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian's postinst may start system instances (PostgreSQL on 5432, Redis on
  # 6379, Prometheus on 9090); the tests never use them. Stop Redis and
  # Prometheus so nothing listens.
  if [[ " ${need[*]} " == *" redis-server "* ]]; then
    redis-cli -p 6379 shutdown nosave >/dev/null 2>&1 || true
  fi
  if [[ " ${need[*]} " == *" prometheus "* ]]; then
    if [ -d /run/systemd/system ]; then
      systemctl stop prometheus >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/prometheus ]; then
      /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    fi
  fi
fi
dir=$(pg_bin) || { echo "FATAL: PostgreSQL install failed: no initdb/pg_ctl under /usr/lib/postgresql" >&2; exit 2; }
id postgres >/dev/null 2>&1 || { echo "FATAL: the 'postgres' system user is missing" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "FATAL: Redis install failed: no redis-server" >&2; exit 2; }
command -v promtool >/dev/null || { echo "FATAL: Prometheus install failed: no promtool" >&2; exit 2; }
echo "PostgreSQL: $("$dir/postgres" --version)"
echo "Redis: $(redis-server --version)"
echo "promtool: $(promtool --version 2>&1 | head -n 1)"
