/**
 * A short name for the store (or source) behind what we keep outside it (Redis keys, the
 * config snapshot file), so deployments and test databases sharing one Redis or one directory
 * never read each other's entries: host, port and database of a PostgreSQL URL (never the
 * credentials), or the SQLite path; any other string as is. Driver-free, so the embedded
 * defaults can name their store without loading ioredis.
 */
export function storeNamespace(what: string): string {
  let id = what;
  try {
    const u = new URL(what.replace(/^postgresql\+asyncpg:/, "postgresql:"));
    if (u.protocol.startsWith("postgres")) id = `pg:${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch { /* a path */ }
  // FNV-1a, 32 bits: a namespace, not a secret.
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(36);
}
