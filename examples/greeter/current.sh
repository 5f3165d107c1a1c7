#!/usr/bin/env bash
# Prints what runs on one greeter target (the commit in its VERSION file); nothing when nothing runs there.
# handsoff runs it before its first change to a target, so that a rollback past its first deploy knows
# what ran before (HANDSOFF_PREVIOUS_CURRENT) and removes the target only when nothing ran there.
set -euo pipefail

: "${GREETER_FLEET_DIR:?GREETER_FLEET_DIR is not set: the folder that stands for the fleet}"
: "${HANDSOFF_PIPELINE:?}" "${HANDSOFF_TARGET:?}"
version="${GREETER_FLEET_DIR}/${HANDSOFF_PIPELINE}/${HANDSOFF_TARGET}/VERSION"
if [[ -f "${version}" ]]; then
  cat "${version}"
fi
