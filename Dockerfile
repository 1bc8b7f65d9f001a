FROM python:3.11-slim

# inside a container every interface is the container's own; publishing the port decides who reaches it
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 APP_HOST=0.0.0.0
WORKDIR /app

# requirements.txt without the embedded PostgreSQL and Redis: the image always
# runs against real servers (see docker-compose.yml)
COPY requirements.txt .
RUN grep -v -- '-r requirements-embedded.txt' requirements.txt > /tmp/requirements-image.txt \
    && pip install --no-cache-dir -r /tmp/requirements-image.txt && rm /tmp/requirements-image.txt
COPY requirements-embeddings.txt .
RUN pip install --no-cache-dir --no-deps -r requirements-embeddings.txt

COPY chatserver ./chatserver
COPY migrations ./migrations
COPY docs ./docs
COPY run.py config.toml ./

# the uploads folder exists in the image, owned by the app user, so a named
# volume mounted there starts with that owner (Docker copies it on first use)
RUN useradd --system --home /app chatserver \
    && mkdir -p /app/var/uploads && chown -R chatserver /app/var
USER chatserver

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["python", "run.py"]
