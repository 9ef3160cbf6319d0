# syntax=docker/dockerfile:1
# Build stage: a wheelhouse for analysisd and its dependencies (every dependency ships
# manylinux wheels, so no compiler is needed in either stage).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY analysisd ./analysisd
COPY providers ./providers
# The same install step CI uses (`pip install .[postgres]`), into a wheelhouse.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres]'

# Final stage: no compilers, non-root, read-only friendly.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ANALYSISD_HOST=0.0.0.0 \
    ANALYSISD_PORT=8080 \
    ANALYSISD_STORE=sqlite:////var/lib/analysisd/analysisd.db
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels 'analysisd[postgres]==0.1.0' \
 && rm -rf /wheels \
 && groupadd --system --gid 10001 analysisd \
 && useradd --system --uid 10001 --gid analysisd --home-dir /var/lib/analysisd --create-home analysisd
USER 10001:10001
WORKDIR /var/lib/analysisd
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ANALYSISD_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["analysisd"]
CMD ["serve"]
