# The fleetcare backend image: one image, one command per service (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLEETCARE_DATA_DIR=/var/lib/fleetcare

WORKDIR /src
COPY pyproject.toml README.md* ./
COPY fleetcare ./fleetcare
COPY device_sdk ./device_sdk
COPY gateway ./gateway
COPY backend ./backend
COPY models ./models
COPY firmware_sim ./firmware_sim
COPY dashboards ./dashboards
RUN pip install . && rm -rf /src

RUN useradd --system --create-home --home-dir /home/fleetcare --shell /usr/sbin/nologin fleetcare \
    && mkdir -p /var/lib/fleetcare \
    && chown fleetcare:fleetcare /var/lib/fleetcare
USER fleetcare
WORKDIR /home/fleetcare
VOLUME ["/var/lib/fleetcare"]

CMD ["fleetcare", "--help"]
