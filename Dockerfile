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
RUN pip install --no-cache-dir . && useradd --system --uid 10001 smartfarm
USER smartfarm
ENTRYPOINT ["smartfarm"]
CMD ["--help"]
