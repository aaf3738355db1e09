# shellcheck shell=bash
# Shared by scripts/deploy.sh and scripts/rollback.sh: settings, compose command, state, health.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPOSE_FILE="${COMPOSE_FILE:-docker-compose.prod.yml}"
PROJECT="${COMPOSE_PROJECT_NAME:-studio}"
DEPLOY_IMAGE="${DEPLOY_IMAGE:-video-message-studio}"
DEPLOY_PORT="${DEPLOY_PORT:-7860}"
HEALTH_URL="${DEPLOY_HEALTH_URL:-http://127.0.0.1:${DEPLOY_PORT}/health}"
HEALTH_TIMEOUT="${DEPLOY_HEALTH_TIMEOUT:-300}"
STATE_DIR="${DEPLOY_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/video-message-studio}"
TAG_PATTERN='^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

valid_tag() { [[ "$1" =~ $TAG_PATTERN ]]; }

# docker compose (v2 plugin) when present, else docker-compose (v1).
compose() {
    if docker compose version >/dev/null 2>&1; then
        docker compose -f "$ROOT/$COMPOSE_FILE" -p "$PROJECT" "$@"
    elif command -v docker-compose >/dev/null 2>&1; then
        docker-compose -f "$ROOT/$COMPOSE_FILE" -p "$PROJECT" "$@"
    else
        die "neither 'docker compose' nor 'docker-compose' is installed"
    fi
}

# State per compose file and project: the tag running now and the one before it.
state_file() {
    local name="$1"
    mkdir -p "$STATE_DIR"
    printf '%s/%s.%s.%s' "$STATE_DIR" "$PROJECT" "${COMPOSE_FILE//\//_}" "$name"
}
read_state() {
    local file
    file="$(state_file "$1")"
    if [[ -f "$file" ]]; then cat "$file"; fi
}
write_state() { printf '%s\n' "$2" >"$(state_file "$1")"; }

# Start (or move) every service to image tag $1.
compose_up() {
    local tag="$1"
    shift
    DEPLOY_TAG="$tag" DEPLOY_IMAGE="$DEPLOY_IMAGE" compose up -d --remove-orphans "$@"
}

# Wait until /health answers 200, or fail after HEALTH_TIMEOUT seconds.
wait_healthy() {
    local deadline=$((SECONDS + HEALTH_TIMEOUT))
    log "waiting for $HEALTH_URL (up to ${HEALTH_TIMEOUT}s)"
    until curl -fsS --max-time 5 -o /dev/null "$HEALTH_URL"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 2
    done
    log "healthy"
}
