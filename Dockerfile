# One image for the web server and every worker; docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm

# /data is the container's own, no volume: SECRET_KEY must be given (a key made in var/ would
# be the container's alone), and uploads belong in OCRREVIEW_S3_BUCKET or a volume at /data.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    OCRREVIEW_VAR_DIR=/data/var MEDIA_ROOT=/data/media OCRREVIEW_MODELS_DIR=/data/models \
    OCRREVIEW_SECRET_KEY_IN_VAR=false

WORKDIR /app
COPY requirements-apt.txt ./
RUN apt-get update \
    && grep -vE '^\s*(#|$)' requirements-apt.txt | grep -vE '^chromium' \
       | xargs apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY . .
# The app runs as a user of its own, who may write its data and caches (/cache is compose's
# volume for them) but not its code.
RUN useradd --uid 1000 --user-group --create-home ocrreview \
    && DEBUG=false SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && mkdir -p /cache && chown -R ocrreview:ocrreview /data /cache
USER ocrreview

EXPOSE 8000
CMD ["gunicorn", "ocrreview.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]
