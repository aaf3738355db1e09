#!/usr/bin/env bash
# Deploy a tagged image of the studio with docker compose, then wait for /health.
#
#   scripts/deploy.sh [--build] [--pull] [--workers N] [--no-backup] [--no-rollback] TAG
#
# --build     build $DEPLOY_IMAGE:TAG from this checkout (BASE_IMAGE, TORCH_INDEX_URL apply)
# --pull      pull $DEPLOY_IMAGE:TAG from its registry (DEPLOY_IMAGE=registry/name)
# --workers N run N worker containers (production file only)
# Before switching, the running studio writes a backup to /data/backups/pre-deploy-<time>
# (or $DEPLOY_BACKUP_DEST). If the new version does not turn healthy, the previous tag is
# started again. Environment: COMPOSE_FILE (default docker-compose.prod.yml; use
# docker-compose.yml for one machine), COMPOSE_PROJECT_NAME (studio), DEPLOY_IMAGE,
# DEPLOY_PORT, DEPLOY_HEALTH_URL, DEPLOY_HEALTH_TIMEOUT, DEPLOY_STATE_DIR.
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

build=0
pull=0
backup=1
rollback=1
workers=""
tag=""
while (($#)); do
    case "$1" in
        --build) build=1 ;;
        --pull) pull=1 ;;
        --no-backup) backup=0 ;;
        --no-rollback) rollback=0 ;;
        --workers)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--workers needs a number"
            workers="$2"
            shift
            ;;
        -h | --help) usage 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *)
            [[ -z "$tag" ]] || die "one tag only"
            tag="$1"
            ;;
    esac
    shift
done
[[ -n "$tag" ]] || usage 2
valid_tag "$tag" || die "bad tag '$tag': use letters, digits, '.', '_' or '-'"
[[ "$tag" != "latest" ]] || die "deploy a real version tag, not 'latest' (rollback needs it)"
cd "$ROOT"
if [[ "$COMPOSE_FILE" == "docker-compose.prod.yml" && ! -f .env ]]; then
    die "no .env: cp .env.example .env and set MINIO_ROOT_PASSWORD, GRAFANA_ADMIN_PASSWORD"
fi

image="$DEPLOY_IMAGE:$tag"
if ((build)); then
    log "building $image"
    docker build -t "$image" \
        --build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}" \
        --build-arg "TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}" \
        "$ROOT"
elif ((pull)); then
    log "pulling $image"
    docker pull "$image"
fi
docker image inspect "$image" >/dev/null 2>&1 || die "no image $image (use --build or --pull)"

current="$(read_state current)"
app_service="app"
[[ "$COMPOSE_FILE" == "docker-compose.yml" ]] && app_service="studio"

if ((backup)) && [[ -n "$current" ]]; then
    dest="${DEPLOY_BACKUP_DEST:-/data/backups/pre-deploy-$(date -u +%Y%m%dT%H%M%SZ)}"
    log "backing up the running studio ($current) to $dest"
    compose exec -T "$app_service" python -m app.backup create "$dest" ||
        die "backup failed; nothing was changed (use --no-backup to skip)"
fi

scale=()
if [[ -n "$workers" ]]; then
    scale=(--scale "worker=$workers")
fi
log "starting $image (was: ${current:-nothing})"
compose_up "$tag" "${scale[@]}"

if wait_healthy; then
    if [[ -n "$current" && "$current" != "$tag" ]]; then
        write_state previous "$current"
    fi
    write_state current "$tag"
    log "deployed $image"
    exit 0
fi

log "the new version did not turn healthy"
compose logs --tail 50 "$app_service" >&2 || true
if ((rollback)) && [[ -n "$current" && "$current" != "$tag" ]]; then
    log "rolling back to $current"
    compose_up "$current" "${scale[@]}"
    wait_healthy || die "rollback to $current is not healthy either: look at the logs"
    die "deploy of $tag failed; $current is running again"
fi
die "deploy of $tag failed"
