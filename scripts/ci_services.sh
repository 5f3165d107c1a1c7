#!/usr/bin/env bash
# What the scale-out checks need from Debian, and the compose file's check. Starts no service: the slow
# test tests/test_celery_topology.py starts private PostgreSQL and Redis instances of its own.
#
#   scripts/ci_services.sh install         install PostgreSQL, Redis, docker-compose 1.29 and Chromium with
#                                          its chromedriver (the browser test) if missing
#   scripts/ci_services.sh compose-config  validate docker-compose.yaml (docker-compose config -q)
#
# .ci/run runs both; `make services` and `make compose-config` too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# apt package → a program it installs
declare -A PROGRAMS=(
  [postgresql]=pg_ctl [redis-server]=redis-server [docker-compose]=docker-compose
  [chromium]=chromium [chromium-driver]=chromedriver
)

have() {
  case "$1" in
    # Debian keeps the server programs off the PATH, in /usr/lib/postgresql/<version>/bin
    pg_ctl) command -v pg_ctl >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null ;;
    *) command -v "$1" >/dev/null ;;
  esac
}

install() {
  local missing=()
  for package in postgresql redis-server docker-compose chromium chromium-driver; do
    have "${PROGRAMS[${package}]}" || missing+=("${package}")
  done
  if ((${#missing[@]} == 0)); then
    echo "ci_services: postgresql, redis-server, docker-compose, chromium and chromium-driver are installed"
    return 0
  fi
  echo "ci_services: installing ${missing[*]}"
  if ! command -v apt-get >/dev/null; then
    echo "ci_services: apt-get is not available; install ${missing[*]} by hand (Debian/Ubuntu packages)" >&2
    return 1
  fi
  local sudo=()
  if ((EUID != 0)); then
    if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
      echo "ci_services: installing ${missing[*]} needs root (or password-less sudo)" >&2
      return 1
    fi
    sudo=(sudo -n)
  fi
  # --no-install-recommends: docker-compose recommends docker.io, an engine nobody here starts
  if ! "${sudo[@]}" apt-get update -qq \
    || ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}"; then
    echo "ci_services: apt-get could not install ${missing[*]} (no package mirror reachable?)" >&2
    return 1
  fi
  for package in "${missing[@]}"; do
    if ! have "${PROGRAMS[${package}]}"; then
      echo "ci_services: ${package} installed but ${PROGRAMS[${package}]} is still missing" >&2
      return 1
    fi
  done
}

compose_config() {
  if ! command -v docker-compose >/dev/null; then
    echo "ci_services: docker-compose is missing: run scripts/ci_services.sh install" >&2
    return 1
  fi
  docker-compose --file docker-compose.yaml config -q
  docker-compose --file docker-compose.yaml --profile aws-local config -q
  echo "ci_services: docker-compose.yaml is valid ($(docker-compose version --short))"
}

case "${1:-}" in
  install) install ;;
  compose-config) compose_config ;;
  *)
    sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
