#!/usr/bin/env bash
# Go back to the previously deployed image tag (or to TAG), then wait for /health.
#
#   scripts/rollback.sh [TAG]
#
# Only the containers change: data is kept. To also bring data back, restore the backup that
# deploy.sh made before the switch:  python -m app.backup restore /data/backups/pre-deploy-...
# Same environment as scripts/deploy.sh.
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

case "${1:-}" in
    -h | --help)
        sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac
[[ $# -le 1 ]] || die "usage: scripts/rollback.sh [TAG]"
cd "$ROOT"

current="$(read_state current)"
target="${1:-$(read_state previous)}"
[[ -n "$target" ]] || die "no previous deploy recorded in $STATE_DIR: name a tag"
valid_tag "$target" || die "bad tag '$target'"
[[ "$target" != "$current" ]] || die "$target is already running"
docker image inspect "$DEPLOY_IMAGE:$target" >/dev/null 2>&1 ||
    die "no image $DEPLOY_IMAGE:$target here (docker pull it first)"

log "rolling back from ${current:-unknown} to $target"
compose_up "$target"
wait_healthy || die "$target did not turn healthy: look at 'docker compose logs'"
write_state current "$target"
if [[ -n "$current" ]]; then
    write_state previous "$current"
fi
log "running $DEPLOY_IMAGE:$target"
