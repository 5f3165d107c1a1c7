#!/usr/bin/env bash
# Deploys the build artifact to one greeter target: a folder in the local "fleet".
# handsoff runs it with HANDSOFF_PIPELINE, HANDSOFF_TARGET, HANDSOFF_COMMIT, HANDSOFF_ARTIFACT set.
set -euo pipefail

: "${GREETER_FLEET_DIR:?GREETER_FLEET_DIR is not set: the folder that stands for the fleet}"
: "${HANDSOFF_PIPELINE:?}" "${HANDSOFF_TARGET:?}" "${HANDSOFF_COMMIT:?}" "${HANDSOFF_ARTIFACT:?}"

pipeline_dir="${GREETER_FLEET_DIR}/${HANDSOFF_PIPELINE}"
target_dir="${pipeline_dir}/${HANDSOFF_TARGET}"

rm -rf "${target_dir}"
mkdir -p "${target_dir}"
cp "${HANDSOFF_ARTIFACT}" "${target_dir}/"
printf '%s\n' "${HANDSOFF_COMMIT}" > "${target_dir}/VERSION"
printf 'deploy %s %s\n' "${HANDSOFF_TARGET}" "${HANDSOFF_COMMIT}" >> "${pipeline_dir}/deploys.log"
echo "deployed ${HANDSOFF_COMMIT} to ${target_dir}"
