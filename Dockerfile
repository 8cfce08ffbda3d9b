# One image for every service of the mesh; docker-compose.yml picks the module.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
ENV PYTHONPATH=/app:/app/build/gen/python PYTHONUNBUFFERED=1
# The same build steps as `make build`, without the virtual environment.
RUN python -m services.mesh.codegen && python -m services.mesh.openapi && python setup.py -q build_ext --inplace
# Not root: a service that is broken into holds only what this user may touch.
RUN useradd --system --uid 10001 --home-dir /app pictor \
    && mkdir -p /var/lib/pictor /etc/pictor/keys /etc/pictor/signing && chown pictor /var/lib/pictor /etc/pictor/keys /etc/pictor/signing
USER pictor
