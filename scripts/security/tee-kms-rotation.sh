#!/usr/bin/env bash
# TEE and KMS key rotation (runbook SEC-008) - drop-in wrapper around playbooks/rotate.yml.
#
# Keeps the runbook script's interface: the same actions, flags and environment variables.
# The rotation itself, its checks, the automatic rollback and the evidence bundle are done by
# the alfred.tee_kms collection; see docs/runbook.md.
set -euo pipefail

PROG=${0##*/}

usage() {
  cat <<EOF
Usage: $PROG <preflight|stage|validate|rollback|all> --env <staging|production> [options] [-- ANSIBLE-PLAYBOOK-ARGS...]

Actions:
  preflight   validate inputs, key state, lock, health and live attestation; record the snapshot
  stage       preflight, then create, prove and promote the next key version (rolls back on failure)
  validate    check the rotated key, attestation, enforcement probes, health and the validate hook
  rollback    restore the pre-rotation snapshot kept with the key (works in a later, separate run)
  all         preflight -> stage -> validate, rolling back automatically on failure

Options:
  --env <staging|production>  target environment (required; must equal ALFRED_ENV when that is set)
  --dry-run                   rehearsal: ansible-playbook --check --diff (nothing changes)
  --evidence-dir PATH         where the evidence bundle is written (default artifacts/security/rotation)
  --confirm-production        required for any production run
  --show-commands             let hook command text appear in output and evidence (hidden by default)
  -h, --help                  show this help and exit
  -- ARGS...                  pass the remaining arguments to ansible-playbook (e.g. -i INVENTORY -v); they may not
                              set what this script sets or shows (env, rotation_action, action, confirm_production,
                              evidence_dir, show_commands, kms_provider, kms_key_id, the rotation_*_cmd hooks, --check):
                              use the options and environment variables above

Environment:
  KMS_KEY_ID, KMS_KEY_VERSION, NEXT_KMS_KEY_VERSION, KMS_ALLOWED_MEASUREMENTS (comma-separated)
  ALFRED_ROTATION_PREFLIGHT_CMD, ALFRED_ROTATION_STAGE_CMD, ALFRED_ROTATION_VALIDATE_CMD,
  ALFRED_ROTATION_ROLLBACK_CMD (hook commands, run by the playbook; their text is a secret)
  ALFRED_ROTATION_API_HEALTHCHECK_URL, ALFRED_ROTATION_ENCLAVE_HEALTHCHECK_URL
  ALFRED_ENV (when set, must equal --env), ALFRED_KMS_PROVIDER (local|aws|vault|command, default local),
  ALFRED_TEE_KMS_STORE (store file of the local provider)

Exit status: 0 success, 1 invalid input, otherwise ansible-playbook's status (2 = a task failed,
after the automatic rollback when stage or validate failed).
EOF
}

die() {
  printf '%s: error: %s\n' "$PROG" "$1" >&2
  printf "Run '%s --help' for usage.\n" "$PROG" >&2
  exit 1
}

# True when option $1 is followed by a value (not empty, not another option).
need_value() {
  [[ $# -ge 2 && -n $2 && $2 != -* ]]
}

# JSON string literal for an -e extra var (paths may hold spaces or quotes).
json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\n'/\\n}
  printf '"%s"' "$s"
}

action=""
env_name=""
env_given=false
dry_run=false
evidence_dir=""
confirm_production=false
show_commands=false
passthrough=()

while (($# > 0)); do
  case $1 in
    -h | --help)
      usage
      exit 0
      ;;
    --env)
      need_value "$@" || die "--env needs a value: staging or production"
      env_name=$2
      env_given=true
      shift 2
      ;;
    --env=*)
      env_name=${1#--env=}
      env_given=true
      shift
      ;;
    --evidence-dir)
      need_value "$@" || die "--evidence-dir needs a path"
      evidence_dir=$2
      shift 2
      ;;
    --evidence-dir=*)
      evidence_dir=${1#--evidence-dir=}
      [[ -n $evidence_dir ]] || die "--evidence-dir needs a path"
      shift
      ;;
    --dry-run)
      dry_run=true
      shift
      ;;
    --confirm-production)
      confirm_production=true
      shift
      ;;
    --show-commands)
      show_commands=true
      shift
      ;;
    --)
      shift
      passthrough=("$@")
      break
      ;;
    -*)
      die "unknown option '$1'"
      ;;
    *)
      [[ -z $action ]] || die "only one action may be given (got '$action' and '$1')"
      case $1 in
        preflight | stage | validate | rollback | all) action=$1 ;;
        *) die "unknown action '$1' (expected preflight, stage, validate, rollback or all)" ;;
      esac
      shift
      ;;
  esac
done

[[ -n $action ]] || die "missing action (preflight, stage, validate, rollback or all)"
$env_given || die "missing --env <staging|production>"
case $env_name in
  staging | production) ;;
  *) die "invalid --env '$env_name' (expected staging or production)" ;;
esac
if [[ $env_name == production ]] && ! $confirm_production; then
  die "production runs require --confirm-production"
fi
if [[ -n ${ALFRED_ENV:-} && ${ALFRED_ENV} != "$env_name" ]]; then
  die "ALFRED_ENV is '${ALFRED_ENV}' but --env is '$env_name'; refusing to run against the wrong environment"
fi
provider=${ALFRED_KMS_PROVIDER:-local}
case $provider in
  local | aws | vault | command) ;;
  *) die "invalid ALFRED_KMS_PROVIDER '$provider' (expected local, aws, vault or command)" ;;
esac

# The repository (collection) root is two levels above this script (symlinks resolved),
# whatever the caller's working directory.
script_path=$(readlink -f -- "${BASH_SOURCE[0]}" 2>/dev/null) || script_path=${BASH_SOURCE[0]}
script_dir=$(cd -- "$(dirname -- "$script_path")" && pwd -P)
repo_root=$(cd -- "$script_dir/../.." && pwd -P)
# A checkout runs with its own ansible.cfg. An installed copy (<path>/ansible_collections/alfred/
# tee_kms, no ansible.cfg) runs with the caller's configuration, its own <path> first among the
# collection paths so that the playbook's alfred.tee_kms names are this copy's.
if [[ -f $repo_root/ansible.cfg ]]; then
  export ANSIBLE_CONFIG="$repo_root/ansible.cfg"
elif [[ $(basename -- "$(dirname -- "$(dirname -- "$repo_root")")") == ansible_collections ]]; then
  installed_path=$(dirname -- "$(dirname -- "$(dirname -- "$repo_root")")")
  export ANSIBLE_COLLECTIONS_PATH="$installed_path${ANSIBLE_COLLECTIONS_PATH:+:$ANSIBLE_COLLECTIONS_PATH}"
fi

if [[ -x $repo_root/.venv/bin/ansible-playbook ]]; then
  ansible_playbook=$repo_root/.venv/bin/ansible-playbook
elif command -v ansible-playbook >/dev/null 2>&1; then
  ansible_playbook=$(command -v ansible-playbook)
else
  printf '%s: error: ansible-playbook not found (run make setup, or install ansible-core)\n' "$PROG" >&2
  exit 1
fi

# What this script sets, validates or shows in its banner, by the option or variable to use instead. Pass-through
# arguments that set one (in any spelling Ansible accepts) would make the banner describe another run.
declare -A owned=([env]="--env" [rotation_action]="the action argument" [action]="the action argument"
  [confirm_production]="--confirm-production" [evidence_dir]="--evidence-dir" [show_commands]="--show-commands"
  [kms_provider]="ALFRED_KMS_PROVIDER" [kms_key_id]="KMS_KEY_ID" [rotation_preflight_cmd]="ALFRED_ROTATION_PREFLIGHT_CMD"
  [rotation_stage_cmd]="ALFRED_ROTATION_STAGE_CMD" [rotation_validate_cmd]="ALFRED_ROTATION_VALIDATE_CMD"
  [rotation_rollback_cmd]="ALFRED_ROTATION_ROLLBACK_CMD")
if ((${#passthrough[@]} > 0)); then
  # Read with ansible-core's own parser (scripts/security/passthrough_vars.py), by the Python of ansible-playbook.
  read -r shebang <"$ansible_playbook" || shebang=""
  read -r -a python <<<"${shebang#\#!}"
  ((${#python[@]} > 0)) || die "could not find the Python of $ansible_playbook"
  names=$(IFS=,; echo "${!owned[*]}")
  findings=$("${python[@]}" "$script_dir/passthrough_vars.py" "$names" "${passthrough[@]}") ||
    die "could not read the ansible-playbook arguments after -- with $ansible_playbook's Python"
  set_vars=()
  while read -r kind detail; do
    case $kind in
      error) die "could not read the ansible-playbook arguments after --: $detail" ;;
      check) $dry_run || die "the ansible-playbook arguments after -- ask for check mode (--check); use --dry-run" ;;
      var) set_vars+=("$detail (${owned[$detail]})") ;;
    esac
  done <<<"$findings"
  if ((${#set_vars[@]} > 0)); then
    joined=$(printf '%s, ' "${set_vars[@]}")
    die "the ansible-playbook arguments after -- set ${joined%, }, which this script sets from its own options and environment; use those instead"
  fi
fi

cmd=("$ansible_playbook" "$repo_root/playbooks/rotate.yml"
  -e "rotation_action=$action" -e "env=$env_name")
# Only a provider the operator set is passed: an extra var outranks every inventory var, so passing
# the default would override each key's own kms_provider in a many-key inventory (group kms_keys).
[[ -n ${ALFRED_KMS_PROVIDER:-} ]] && cmd+=(-e "kms_provider=$provider")
$confirm_production && cmd+=(-e confirm_production=true)
$show_commands && cmd+=(-e show_commands=true)
[[ -n $evidence_dir ]] && cmd+=(-e "{\"evidence_dir\": $(json_string "$evidence_dir")}")
$dry_run && cmd+=(--check --diff)
shown=("${cmd[@]}")
# Pass-through arguments are not echoed: they may carry credentials (-e token=..).
((${#passthrough[@]} > 0)) && cmd+=("${passthrough[@]}") && shown+=("[${#passthrough[@]} pass-through argument(s)]")

mode="live run"
$dry_run && mode="dry run (check mode, nothing changes)"
key_shown=${KMS_KEY_ID:-"<KMS_KEY_ID unset: the keys of the inventory group kms_keys, if any>"}
provider_shown=$provider
[[ -z ${ALFRED_KMS_PROVIDER:-} ]] && provider_shown="$provider (default; a key's own kms_provider in the inventory wins)"
printf '%s: %s of key %s in %s, provider %s - %s\n' "$PROG" "$action" "$key_shown" "$env_name" "$provider_shown" "$mode"
for hook in PREFLIGHT STAGE VALIDATE ROLLBACK; do
  var=ALFRED_ROTATION_${hook}_CMD
  if [[ -z ${!var:-} ]]; then
    printf '%s:   %s hook: not set\n' "$PROG" "${hook,,}"
  elif $show_commands; then
    printf '%s:   %s hook: %s\n' "$PROG" "${hook,,}" "${!var}"
  else
    printf '%s:   %s hook: set (command text hidden; --show-commands shows it)\n' "$PROG" "${hook,,}"
  fi
done
printf '%s: running %s\n' "$PROG" "${shown[*]}"

exec "${cmd[@]}"
