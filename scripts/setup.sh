#!/usr/bin/env bash
# Sets up a fresh machine: system packages where we can install them, and the virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian 12's own perl dies on bpi(2000) (a Math::BigInt::Calc bug); Debian's
# libmath-bigint-perl fixes it. The Jobs documentation's pi example needs it.
if ! perl -Mbignum=bpi -e 'bpi(50)' >/dev/null 2>&1 || ! dpkg -s libmath-bigint-perl >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q libmath-bigint-perl >/dev/null 2>&1 || \
      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libmath-bigint-perl >/dev/null 2>&1) || \
      echo "warning: could not install libmath-bigint-perl; the pi example needs it (apt-get install libmath-bigint-perl)" >&2
  else
    echo "note: install Debian's libmath-bigint-perl (sudo apt-get install libmath-bigint-perl) for the pi example" >&2
  fi
fi

# bubblewrap: the per-pod sandbox (mount, PID and UTS namespaces). Without it pods run as plain
# host processes and the agent says so.
if ! command -v bwrap >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q bubblewrap >/dev/null 2>&1 || \
      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null 2>&1) || \
      echo "warning: could not install bubblewrap; pods will run without a sandbox (apt-get install bubblewrap)" >&2
  else
    echo "note: install Debian's bubblewrap (sudo apt-get install bubblewrap) for the pod sandbox" >&2
  fi
fi

# ping (iputils-ping) and ip (iproute2): the documentation's pod-to-pod example pings the
# other pods; its two-host e2e test makes hosts as network namespaces.
if ! command -v ping >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q iputils-ping iproute2 >/dev/null 2>&1 || \
      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q iputils-ping iproute2 >/dev/null 2>&1) || \
      echo "warning: could not install iputils-ping/iproute2; the pod-to-pod e2e tests are skipped" >&2
  fi
fi

# Podman (with runc; Debian's busybox-static builds the test images): the image runtime,
# `--runtime podman`. Its e2e tests are skipped where podman cannot run a container.
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || [ ! -x /bin/busybox ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q podman runc busybox-static >/dev/null 2>&1 || \
      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q podman runc busybox-static >/dev/null 2>&1) || \
      echo "warning: could not install podman; the image runtime's tests will be skipped (apt-get install podman runc)" >&2
  else
    echo "note: install Debian's podman and runc (sudo apt-get install podman runc) for the image runtime" >&2
  fi
fi

# Debian's docker-registry (distribution 2.8) and python3-redis: the Redis work-queue task's e2e
# test serves its images from a local registry and builds its worker image from the host's python3
# with python3-redis (the image runtime's redis test is skipped without them).
if ! command -v docker-registry >/dev/null 2>&1 || ! dpkg -s python3-redis >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q docker-registry python3-redis >/dev/null 2>&1 || \
      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q docker-registry python3-redis >/dev/null 2>&1) || \
      echo "warning: could not install docker-registry and python3-redis; the Redis work-queue e2e test will be skipped" >&2
  else
    echo "note: install Debian's docker-registry and python3-redis for the Redis work-queue e2e test" >&2
  fi
fi

# Debian's Chromium and its driver: the dashboard's browser tests and bench/bench_dashboard.py.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1) || \
      echo "warning: could not install chromium and chromium-driver; the dashboard's browser tests will be skipped" >&2
  else
    echo "note: install Debian's chromium and chromium-driver for the dashboard's browser tests" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install -q -e ".[test]"
