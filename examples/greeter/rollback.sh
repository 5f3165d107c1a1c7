#!/usr/bin/env bash
# Rolls one greeter target back to what it ran before this pipeline run, or removes it when nothing
# ran there before (HANDSOFF_PREVIOUS_ARTIFACT and HANDSOFF_PREVIOUS_CURRENT empty). A version that ran
# before handsoff (HANDSOFF_PREVIOUS_CURRENT, what current.sh printed) cannot be rebuilt here: refuse.
set -euo pipefail

: "${GREETER_FLEET_DIR:?GREETER_FLEET_DIR is not set: the folder that stands for the fleet}"
: "${HANDSOFF_PIPELINE:?}" "${HANDSOFF_TARGET:?}"
previous_artifact="${HANDSOFF_PREVIOUS_ARTIFACT:-}"
previous_commit="${HANDSOFF_PREVIOUS_COMMIT:-}"
previous_current="${HANDSOFF_PREVIOUS_CURRENT:-}"
if [[ -z "${previous_artifact}" && -n "${previous_current}" ]]; then
  echo "cannot restore ${previous_current}, which ran before handsoff: no artifact of it" >&2
  exit 3
fi

pipeline_dir="${GREETER_FLEET_DIR}/${HANDSOFF_PIPELINE}"
target_dir="${pipeline_dir}/${HANDSOFF_TARGET}"

mkdir -p "${pipeline_dir}"
rm -rf "${target_dir}"
if [[ -n "${previous_artifact}" ]]; then
  : "${previous_commit:?HANDSOFF_PREVIOUS_COMMIT is not set but HANDSOFF_PREVIOUS_ARTIFACT is}"
  mkdir -p "${target_dir}"
  cp "${previous_artifact}" "${target_dir}/"
  printf '%s\n' "${previous_commit}" > "${target_dir}/VERSION"
  printf 'rollback %s %s\n' "${HANDSOFF_TARGET}" "${previous_commit}" >> "${pipeline_dir}/deploys.log"
  echo "rolled ${target_dir} back to ${previous_commit}"
else
  printf 'rollback %s none\n' "${HANDSOFF_TARGET}" >> "${pipeline_dir}/deploys.log"
  echo "removed ${target_dir}: nothing was deployed there before"
fi
