# rostermatch as a container: Node 24 runs the TypeScript sources directly (type stripping), so
# there is no build step; the embedded database and every output live on the /data volume.
FROM node:24-slim

# A heap limit makes V8 collect before RSS outgrows the live set (a million-patient index with a
# million-row file stays near 1 GB); raise it for indexes of several million patients.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-old-space-size=1536 \
    ROSTERMATCH_DATA=/data \
    NPM_CONFIG_UPDATE_NOTIFIER=false

WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the `node` devDependency is omitted anyway; nothing at runtime needs a script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

COPY src ./src
COPY pipelines ./pipelines
COPY samples ./samples

RUN groupadd --system rostermatch && useradd --system --gid rostermatch --home-dir /app --no-create-home rostermatch \
 && mkdir -p /data && chown rostermatch:rostermatch /data
USER rostermatch
VOLUME ["/data"]
EXPOSE 8080
# Meaningful for `serve` (the health endpoint); one-shot commands exit before it first runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"

ENTRYPOINT ["node", "/app/src/cli/main.ts"]
CMD ["--help"]
