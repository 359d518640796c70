/**
 * config-service entry point: loads settings, starts the actors, mounts the routes, serves,
 * and drains on SIGTERM/SIGINT. Wiring only.
 */
import { startActors } from "./actors/mod.ts";
import { log } from "./lib/log.ts";
import { backendKinds, loadSettings, type Settings, SettingsError } from "./lib/settings.ts";
import { buildApp } from "./routes/app.ts";
import { type ApiToken, loadTokens, TokenConfigError } from "./lib/auth.ts";
import { SERVICE_VERSION } from "./routes/meta.ts";
import { WatchHub } from "./lib/config/watch_hub.ts";
import { serve } from "./lib/http/h2c.ts";

async function main(): Promise<void> {
  let settings: Settings;
  try {
    settings = loadSettings(Deno.env.toObject());
  } catch (err) {
    if (err instanceof SettingsError) {
      console.error(`config-service: ${err.message}`);
      Deno.exit(2);
    }
    throw err;
  }
  let tokens: ApiToken[];
  try {
    tokens = loadTokens(settings);
  } catch (err) {
    if (err instanceof TokenConfigError) {
      console.error(`config-service: ${err.message}`);
      Deno.exit(2);
    }
    throw err;
  }
  log.setLevel(settings.LOG_LEVEL);
  const startedAt = Date.now();
  const hub = new WatchHub();
  const actors = await startActors(settings, hub);

  if (tokens.length === 0) {
    log.warn(
      "AUTHENTICATION IS OFF: no API_TOKENS or API_TOKENS_FILE configured; anyone who can " +
        "reach this port can read and change configuration",
    );
  }

  const app = buildApp({
    settings,
    actors,
    startedAt,
    config: actors.config,
    hub,
    registry: actors.registry,
    health: actors.health,
    flags: actors.flags,
    tokens,
  });
  // Deno.serve alone refuses h2c upgrade requests with a body (lib/http/h2c.ts).
  const server = (settings.HTTP_H2C_COMPAT ? serve : Deno.serve)({
    hostname: settings.SERVICE_HOST,
    port: settings.SERVICE_PORT,
    onListen: ({ hostname, port }) =>
      log.lifecycle("config-service listening", {
        host: hostname,
        port,
        instance_id: settings.SERVICE_INSTANCE_ID,
        backends: backendKinds(settings),
        data_dir: settings.DATA_DIR,
      }),
  }, app.fetch);

  // The service registers itself, as Consul agents and Eureka clients do.
  const self = { service: settings.SERVICE_NAME, id: settings.SERVICE_INSTANCE_ID };
  if (settings.SERVICE_REGISTRY_ENABLED) {
    const port = (server.addr as Deno.NetAddr).port;
    const host = ["0.0.0.0", "::", ""].includes(settings.SERVICE_HOST)
      ? Deno.hostname()
      : settings.SERVICE_HOST;
    const url = settings.SERVICE_ADVERTISE_URL ?? `http://${host}:${port}`;
    actors.registry.register({
      input: {
        service_name: self.service,
        service_url: url,
        metadata: { instance_id: self.id, version: SERVICE_VERSION },
      },
    }).then(
      () => log.info("registered this instance", { service: self.service, url }),
      (err) => log.warn("could not register this instance", { error: String(err) }),
    );
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.lifecycle("shutting down", { signal });
    const deadline = settings.SHUTDOWN_TIMEOUT * 1000;
    const hardStop = setTimeout(() => {
      log.error("shutdown did not finish in time; exiting", {
        timeout_s: settings.SHUTDOWN_TIMEOUT,
      });
      Deno.exit(1);
    }, deadline);
    // Stop accepting, end watch streams and long polls, let in-flight requests finish,
    // then close the actors' sessions.
    const drained = server.shutdown();
    hub.close();
    await drained;
    if (settings.SERVICE_REGISTRY_ENABLED) {
      await actors.registry.deregister(self).catch(() => {});
    }
    await Promise.all(Object.values(actors).map((a) => a.stop(Math.max(1_000, deadline / 2))));
    log.lifecycle("stopped");
    // `unload` would write what is left synchronously; awaiting also waits for a write in
    // flight, so the last lines cannot interleave with it. Under the deadline: a stdout nobody
    // reads must not hold the exit.
    await log.flush();
    clearTimeout(hardStop);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => void stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => void stop("SIGINT"));
  await server.finished;
}

if (import.meta.main) await main();
