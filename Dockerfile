# Collector and processor image. Untested here (no Docker engine on the build machines);
# kept small and consistent with the Makefile.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GUNICORN_BIND=0.0.0.0:8000

RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 app && useradd --uid 10001 --gid app --create-home app
WORKDIR /app

COPY requirements.txt setup.py /app/
RUN pip install -r requirements.txt

COPY . /app
RUN pip install --no-deps -e . \
    && bin/fetch_stackwalker.sh \
    && mkdir -p /app/data && chown -R app:app /app/data /app/.cache

USER app
EXPOSE 8000
CMD ["bin/run_web.sh"]
