# syntax=docker/dockerfile:1
# Sluice container: build with the dev toolchain, run on a slim image as a non-root user.
# Config is read from /etc/sluice/sluice.yaml (mount your own over it); job data lives in
# /var/lib/sluice (mount a volume there so queued jobs survive a restart).

FROM node:26-slim AS build
WORKDIR /app
# better-sqlite3 compiles its native addon when no prebuilt binary is available.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY bench ./bench
# `npm ci` runs the `prepare` script, which compiles TypeScript into dist/.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:26-slim
ENV NODE_ENV=production \
    SLUICE_JOBS_PATH=/var/lib/sluice/sluice-jobs.db
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config/sluice.yaml /etc/sluice/sluice.yaml
RUN mkdir -p /var/lib/sluice && chown node:node /var/lib/sluice
USER node
EXPOSE 8080
VOLUME ["/var/lib/sluice"]
# The admin server listens on loopback inside the container; readiness is false while draining.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.SLUICE_ADMIN_PORT||9090)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["start", "--config", "/etc/sluice/sluice.yaml"]
