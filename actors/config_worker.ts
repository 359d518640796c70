/// <reference lib="deno.worker" />
/**
 * ConfigActor: owns the configuration store (SQLite or PostgreSQL), the Redis cache and the
 * Kafka producer. The only place those drivers are used for configuration.
 */
import { serveActor } from "./actor_host.ts";
import { BackendMonitor } from "./monitor.ts";
import type { ConfigCalls } from "./config_protocol.ts";
import type { BackendProbe } from "../lib/backend.ts";
import { disabledStatus } from "../lib/backend.ts";
import { openSqlite, sqliteProbe } from "../lib/backends/sqlite.ts";
import { createPostgres, postgresProbe, type Sql } from "../lib/backends/postgres.ts";
import { createRedis, redisProbe } from "../lib/backends/redis.ts";
import { createKafka, kafkaProbe } from "../lib/backends/kafka.ts";
import type { Redis } from "ioredis";
import type { Admin } from "kafkajs";
import type { DatabaseSync } from "node:sqlite";
import type { BackendStatus } from "./protocol.ts";

let monitor: BackendMonitor;
let sqlite: DatabaseSync | null = null;
let sql: Sql | null = null;
let redis: Redis | null = null;
let kafkaAdmin: Admin | null = null;

serveActor<ConfigCalls>({
  init(ctx) {
    const s = ctx.settings;
    const probes: BackendProbe[] = [];
    const fixed: BackendStatus[] = [];
    if (s.DATABASE_URL) {
      sql = createPostgres(s.DATABASE_URL, { max: s.DATABASE_POOL_SIZE });
      probes.push(postgresProbe(sql));
    } else {
      sqlite = openSqlite(s.DATA_DIR);
      probes.push(sqliteProbe(sqlite));
    }
    if (s.REDIS_HOST) {
      redis = createRedis(s);
      probes.push(redisProbe(redis));
    } else fixed.push(disabledStatus("cache", "none"));
    if (s.KAFKA_BOOTSTRAP_SERVERS) {
      kafkaAdmin = createKafka(s.KAFKA_BOOTSTRAP_SERVERS).admin();
      probes.push(kafkaProbe(kafkaAdmin));
    } else fixed.push(disabledStatus("events", "none"));
    monitor = new BackendMonitor(probes, fixed);
    ctx.after(0, { type: "probe" });
  },
  handle(msg, ctx) {
    switch (msg.type) {
      case "ping":
        return { actor: "config", ok: true };
      case "status":
        return monitor.check(ctx);
      case "probe":
        return monitor.tick(ctx);
      default: {
        const never: never = msg;
        throw new Error(`ConfigActor: unknown message ${JSON.stringify(never)}`);
      }
    }
  },
  async stop() {
    await Promise.allSettled([
      sql?.end({ timeout: 5 }),
      redis?.quit().catch(() => redis?.disconnect()),
      kafkaAdmin?.disconnect(),
    ]);
    sqlite?.close();
  },
});
