/**
 * `GET /`: the page for people (drop an image, pick alpha and beta, see the top-k and the
 * accuracy/cost chart). The page is static; everything it shows it fetches from the API.
 */
import { Hono } from "hono";
import { INDEX_HTML } from "../public/index_html.ts";

export function pageRoutes(): Hono {
  const app = new Hono();
  app.get("/", (c) => c.html(INDEX_HTML));
  // Browsers ask for it on every visit; an empty answer keeps 404s out of the logs.
  app.get("/favicon.ico", (c) => c.body(null, 204));
  return app;
}
