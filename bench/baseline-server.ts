/**
 * The baseline for bench/api.ts: the least a Node service can do for POST /messages on the
 * same stack — a bare Hono app on @hono/node-server that parses the JSON body and inserts one
 * row with postgres.js (pool of 10, as Postline), then answers 202 {"id"}. No auth, no
 * validation, no logging, no transaction. Env: DATABASE_URL, PORT, HOST.
 */
import { randomUUID } from "node:crypto";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import postgres from "postgres";

const sql = postgres(process.env.DATABASE_URL!, { max: 10, onnotice: () => {} });
await sql`create table if not exists messages (
  id text primary key,
  body jsonb not null,
  created_at timestamptz not null default now()
)`;

const app = new Hono();
app.get("/readyz", (c) => c.json({ status: "ready" }));
app.post("/messages", async (c) => {
  const body = await c.req.json<Record<string, unknown>>();
  const id = randomUUID();
  await sql`insert into messages (id, body) values (${id}, ${sql.json(body as postgres.JSONValue)})`;
  return c.json({ id }, 202);
});

const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3001), hostname: process.env.HOST ?? "127.0.0.1" });

const stop = () => {
  const timer = setTimeout(() => process.exit(1), 5_000).unref();
  server.close(() => void sql.end({ timeout: 2 }).then(() => (clearTimeout(timer), process.exit(0))));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
