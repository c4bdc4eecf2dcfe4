# CareDesk web app and worker image (docker-compose.yml uses it for both).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /app

# Dependencies first, in their own layer, so a code change does not reinstall
# numpy/scipy/scikit-learn. Versions are pinned by constraints.txt.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The application itself, plus the data it ships (NLU training data, FAQ, demo).
COPY . .
RUN pip install -c constraints.txt . \
    && rm -rf build *.egg-info

# Run as an unprivileged user; var/ (trained models, uploads) is the only place
# it writes, and docker-compose.yml mounts a named volume there.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin caredesk \
    && mkdir -p /app/var \
    && chown caredesk:caredesk /app/var
USER caredesk

EXPOSE 8000
CMD ["caredesk", "serve", "--host", "0.0.0.0", "--port", "8000"]
