# The image of the example workers in docker-compose.yml: kafka-sagas installed from this
# checkout, plus the examples package that `sagas worker examples.order_saga:saga` imports.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# README* (a glob) so that the image also builds from a checkout without a README.
COPY pyproject.toml README* ./
COPY sagas/ sagas/
COPY compensations/ compensations/
COPY topics/ topics/
COPY schemas/ schemas/
COPY processors/ processors/
RUN pip install . && rm -rf /src

# The examples are a user's own code, so they live outside site-packages, on PYTHONPATH.
COPY examples/ /opt/sagas-app/examples/
ENV PYTHONPATH=/opt/sagas-app

RUN useradd --create-home --uid 10001 sagas
USER sagas
# The worker's home is writable, so local state (RocksDB) can live under the working directory.
WORKDIR /home/sagas

EXPOSE 9100
CMD ["sagas", "worker", "examples.order_saga:saga"]
