# Container recipe for the Deno server (docs/deployment.md, "Container"). UNTESTED here: these
# machines have the docker client but no engine. Build: docker build -t mobilenet-edge .
# Run: docker run -p 8000:8000 mobilenet-edge
FROM denoland/deno:2.9.6

WORKDIR /app
# Dependencies first, so that code changes reuse the cached layer.
COPY deno.json deno.lock ./
COPY . .
# Fetch exactly what the server imports (npm packages into ./node_modules), checked against the
# lock file; nothing is fetched at run time.
RUN deno cache --frozen main.ts runtime/worker.ts && chown -R deno:deno /app

ENV HOST=0.0.0.0 \
    PORT=8000
EXPOSE 8000
USER deno
# The limits to set per replica (see docs/deployment.md, "Scaling out"):
# ENV MAX_BODY_BYTES=10485760 MAX_PIXELS=40000000 MAX_QUEUE=128 WORKERS=2
HEALTHCHECK --interval=10s --timeout=2s CMD deno eval "const r = await fetch('http://127.0.0.1:8000/healthz'); Deno.exit(r.ok ? 0 : 1)"
CMD ["deno", "run", "--allow-net", "--allow-read", "--allow-env", "--allow-sys", "main.ts"]
