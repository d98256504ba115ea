# syntax=docker/dockerfile:1
# The HTTP service as a container image (see docs/deploy.md). Two stages: the first compiles
# the wheel (g++, with CMake, pybind11 and Eigen from PyPI as build requirements); the second
# is a slim Python with only that wheel and its [api,redis] extras, run as a non-root user.
#   docker build -t anomaly-detection .
#   docker run -p 8000:8000 -e ANOMALY_API_KEYS=change-me anomaly-detection
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml CMakeLists.txt README.md LICENSE ./
COPY cpp ./cpp
COPY python ./python
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir "$(ls /tmp/dist/*.whl)[api,redis]" \
 && rm -rf /tmp/dist \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin anomaly
USER anomaly
# The service binds every interface of the container; `serve` refuses that without write keys,
# so the container needs ANOMALY_API_KEYS (comma-separated) at run time.
ENV ANOMALY_API_HOST=0.0.0.0 \
    ANOMALY_API_PORT=8000 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
CMD ["anomaly-detection", "serve", "--host", "0.0.0.0", "--port", "8000"]
