#!/usr/bin/env bash
# The GitOps steps for any CI (GitHub Actions, GitLab CI, Jenkins, a cron job); see docs/ci/README.md.
#
#   scripts/ci.sh plan [BASE]          on a pull/merge request: what the change does, and the policy verdict
#   scripts/ci.sh reconcile [BASE]     on the main branch: rebuild what is out of date, report it as JUnit
#
# Writes ci-out/ (or $VCOMP_CI_OUT): plan.md, plan.json, matrix.json and, for reconcile, junit.xml; appends
# plan.md to $GITHUB_STEP_SUMMARY when that is set. Exit status: 0 when vcomp said 0 (no changes) or 2 (changes),
# 3 for a policy violation, 1 for an error (and for anything else).
#
# BASE: the ref to compare with. Default for plan: origin/$GITHUB_BASE_REF (GitHub) or
# origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME (GitLab) when set, else vcomp's own default (the previous commit
# touching each profile). Environment: VCOMP_ACK (comma-separated call-outs to acknowledge, e.g. "kernel"),
# VCOMP_IMAGES (the images directory for reconcile), VCOMP_CI_SKIP_SETUP=1 (tools and .venv already there).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${VCOMP_CI_OUT:-ci-out}"
VCOMP=".venv/bin/vcomp"

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 1
}

log() { printf 'ci: %s\n' "$*" >&2; }

setup() {
  if [ "${VCOMP_CI_SKIP_SETUP:-}" = 1 ]; then
    log "set-up skipped (VCOMP_CI_SKIP_SETUP=1)"
  else
    bash scripts/setup.sh
  fi
  [ -x "$VCOMP" ] || { log "$VCOMP is missing after set-up"; exit 1; }
  mkdir -p "$OUT"
}

# vcomp with its exit status in $rc (set -e would stop at 2, which is not a failure here).
rc=0
vcomp() {
  rc=0
  "$VCOMP" "$@" || rc=$?
}

# The base ref: as given, else the target branch of the pull/merge request, else none (vcomp's default).
default_base() {
  if [ -n "${GITHUB_BASE_REF:-}" ]; then
    echo "origin/$GITHUB_BASE_REF"
  elif [ -n "${CI_MERGE_REQUEST_TARGET_BRANCH_NAME:-}" ]; then
    echo "origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
  fi
}

# A shallow clone may lack the base: fetch origin/BRANCH once, then give up with the fix.
ensure_ref() {
  local ref="$1"
  git rev-parse --verify --quiet "$ref^{commit}" >/dev/null && return 0
  case "$ref" in
    origin/*)
      log "fetching $ref (the clone does not have it)"
      git fetch --no-tags origin "+refs/heads/${ref#origin/}:refs/remotes/$ref" >&2 || true
      ;;
  esac
  git rev-parse --verify --quiet "$ref^{commit}" >/dev/null && return 0
  log "base '$ref' is not in this clone: check out the full history (GitHub: fetch-depth: 0; GitLab: GIT_DEPTH: 0)"
  return 1
}

# The arguments every plan of this run shares: --base and --ack.
plan_args=()
set_plan_args() {
  local base="$1" ack
  plan_args=()
  if [ -n "$base" ]; then
    ensure_ref "$base" || return 1
    plan_args+=(--base "$base")
  fi
  if [ -n "${VCOMP_ACK:-}" ]; then
    local IFS=,
    for ack in $VCOMP_ACK; do plan_args+=(--ack "$ack"); done
  fi
}

publish_summary() {
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -s "$OUT/plan.md" ]; then
    cat "$OUT/plan.md" >> "$GITHUB_STEP_SUMMARY"
  fi
}

# 0 no changes and 2 changes pass; 3 policy violation and 1 error (or anything else) fail.
verdict() {
  case "$1" in
    0) log "$2: no changes"; return 0 ;;
    2) log "$2: changes"; return 0 ;;
    3) log "$2: policy violation (exit 3): see $OUT/"; return 3 ;;
    *) log "$2: error (exit $1)"; return 1 ;;
  esac
}

# Writes plan.md, plan.json and matrix.json; the exit status is the JSON plan's (1 if any form failed).
write_plans() {
  local failed=0
  vcomp plan "${plan_args[@]}"                          # the table, for the log
  if [ "$rc" = 1 ]; then failed=1; fi
  vcomp plan "${plan_args[@]}" --format markdown > "$OUT/plan.md"
  if [ "$rc" = 1 ]; then failed=1; fi
  vcomp plan "${plan_args[@]}" --matrix > "$OUT/matrix.json"
  if [ "$rc" = 1 ]; then failed=1; fi
  vcomp plan "${plan_args[@]}" --format json --out "$OUT/plan.json" > /dev/null
  if [ "$failed" = 1 ]; then return 1; fi
  return "$rc"
}

cmd_plan() {
  local code=0
  set_plan_args "${1-$(default_base)}" || exit 1
  write_plans || code=$?
  publish_summary
  verdict "$code" plan
}

cmd_reconcile() {
  local code images=()
  if [ -n "${VCOMP_IMAGES:-}" ]; then images=(--images "$VCOMP_IMAGES"); fi
  vcomp reconcile "${images[@]}" --junit "$OUT/junit.xml"
  code="$rc"
  # What this push changed, for the summary; a failure here does not hide the reconcile's verdict.
  set_plan_args "${1-}" || set_plan_args ""
  write_plans || log "plan after reconcile: exit $?"
  publish_summary
  verdict "$code" reconcile
}

main() {
  [ $# -ge 1 ] || usage
  local verb="$1"
  shift
  case "$verb" in
    plan) [ $# -le 1 ] || usage; setup; cmd_plan "$@" ;;
    reconcile) [ $# -le 1 ] || usage; setup; cmd_reconcile "$@" ;;
    -h|--help|help) usage ;;
    *) log "unknown verb '$verb'"; usage ;;
  esac
}

main "$@"
