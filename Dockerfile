FROM python:3.11-slim

# inside a container every interface is the container's own; publishing the port decides who reaches it
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 APP_HOST=0.0.0.0
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY chatserver ./chatserver
COPY migrations ./migrations
COPY run.py config.toml ./

RUN useradd --system --home /app chatserver && mkdir -p /app/var && chown chatserver /app/var
USER chatserver

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["python", "run.py"]
