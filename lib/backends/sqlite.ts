/** The embedded store: one SQLite file in `DATA_DIR`, WAL journal. */
import { DatabaseSync } from "node:sqlite";
import type { BackendProbe } from "../backend.ts";

/**
 * Opens (creating if needed) `${dataDir}/${file}` with WAL and a busy timeout, so several
 * workers of this process can share it.
 */
export function openSqlite(dataDir: string, file = "config-service.db"): DatabaseSync {
  Deno.mkdirSync(dataDir, { recursive: true });
  const db = new DatabaseSync(`${dataDir}/${file}`);
  // First: two actors opening a fresh file at once would otherwise collide on the WAL switch
  // ("database is locked" at start, 4 in 48 fresh starts).
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec("PRAGMA journal_mode = WAL");
  // FULL: an acknowledged write survives a power cut, not only a process kill.
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA foreign_keys = ON");
  return db;
}

export function sqliteProbe(db: DatabaseSync): BackendProbe {
  const stmt = db.prepare("SELECT 1 AS ok");
  return {
    name: "storage",
    kind: "sqlite",
    check() {
      stmt.get();
      return Promise.resolve();
    },
  };
}
