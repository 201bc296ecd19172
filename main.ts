/** Wiring only: read config, build the app, serve. */
import { createApp } from "./app.ts";
import { shutdownOnSignals } from "./runtime/shutdown.ts";

export interface Config {
  host: string;
  port: number;
}

export function readConfig(env: { get(key: string): string | undefined } = Deno.env): Config {
  return { host: env.get("HOST") ?? "127.0.0.1", port: Number(env.get("PORT") ?? 8000) };
}

if (import.meta.main) {
  const config = readConfig();
  const log = (line: string) => console.log(line);
  const app = createApp({ log });
  shutdownOnSignals(() => server, { log });
  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: ({ hostname, port }) =>
      log(
        JSON.stringify({
          time: new Date().toISOString(),
          level: "info",
          msg: "listening",
          hostname,
          port,
        }),
      ),
  }, app.fetch);
}
