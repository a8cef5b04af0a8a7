# syntax=docker/dockerfile:1
# Sluice container: build with the dev toolchain, run on a slim image as a non-root user.
# Config is read from /etc/sluice/sluice.yaml (mount your own over it); job data lives in
# /var/lib/sluice (mount a volume there so queued jobs survive a restart).
# Set BACKEND_URL (and BACKEND_SLOTS): inside a container 127.0.0.1 is the container itself.
# Shutdown: the image drains for SLUICE_SHUTDOWN_GRACE (8s), inside `docker stop`'s default
# 10 s; raise both together (`docker stop -t`, compose `stop_grace_period`).

FROM node:26-slim AS build
WORKDIR /app
# better-sqlite3 compiles its native addon when no prebuilt binary can be downloaded.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# Manifests first: the install layer, native compile included, is reused until they change.
# --ignore-scripts because `prepare` (tsc) needs the sources, which come later; the one
# install script that matters, better-sqlite3's, is run by `npm rebuild`.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json ./
COPY src ./src
COPY bench ./bench
RUN npm run build && npm prune --omit=dev

FROM node:26-slim
ENV NODE_ENV=production \
    SLUICE_JOBS_PATH=/var/lib/sluice/sluice-jobs.db \
    SLUICE_SHUTDOWN_GRACE=8s
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config/sluice.yaml /etc/sluice/sluice.yaml
# No default backend in the image: without BACKEND_URL Sluice stops at start and names it,
# instead of proxying to 127.0.0.1, which here is the container itself.
RUN sed -i 's|${BACKEND_URL:-http://127.0.0.1:8000}|${BACKEND_URL}|' /etc/sluice/sluice.yaml \
 && grep -q 'url: ${BACKEND_URL}$' /etc/sluice/sluice.yaml \
 && mkdir -p /var/lib/sluice && chown node:node /var/lib/sluice
USER node
EXPOSE 8080
VOLUME ["/var/lib/sluice"]
# The admin server listens on loopback inside the container; readiness is false while draining.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.SLUICE_ADMIN_PORT||9090)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["start", "--config", "/etc/sluice/sluice.yaml"]
