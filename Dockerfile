# The SmartFarm Python services (bridge, agents, simulator) in one image; the command picks the component.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY smartfarm smartfarm
COPY edge edge
COPY stream stream
COPY storage storage
COPY ml ml
COPY cli cli
# /var/lib/smartfarm holds what compose keeps in named volumes (the broker's credentials, the model registry):
# created here so that a fresh volume takes the service user as its owner.
RUN pip install --no-cache-dir . && useradd --system --uid 10001 smartfarm \
    && mkdir -p /var/lib/smartfarm/broker /var/lib/smartfarm/models && chown -R smartfarm /var/lib/smartfarm
USER smartfarm
ENTRYPOINT ["smartfarm"]
CMD ["--help"]
