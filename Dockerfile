# config-service: the Deno service on the official Deno image. Build: docker build -t config-service .
ARG DENO_VERSION=2.9.6
FROM denoland/deno:${DENO_VERSION}

WORKDIR /app
RUN chown deno:deno /app
USER deno

# Dependencies first, so source edits reuse this layer.
COPY --chown=deno:deno deno.json deno.lock ./
RUN deno install --frozen

COPY --chown=deno:deno . .
RUN deno cache main.ts actors/*_worker.ts && mkdir -p /app/data

ENV DATA_DIR=/app/data \
    SERVICE_HOST=0.0.0.0 \
    SERVICE_PORT=8082
VOLUME ["/app/data"]
EXPOSE 8082

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["deno", "eval", "const r = await fetch('http://127.0.0.1:8082/health'); Deno.exit(r.ok ? 0 : 1)"]

CMD ["run", "-A", "--v8-flags=--max-semi-space-size=4,--heap-growing-percent=10", "main.ts"]
