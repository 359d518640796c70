/**
 * Secret values at rest: AES-256-GCM (WebCrypto), stored as `enc:v1:<iv b64>:<ciphertext b64>`.
 */
import { log } from "../log.ts";
import type { Settings } from "../settings.ts";

const PREFIX = "enc:v1:";

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Decodes a base64 key and checks it is 32 bytes. @throws {Error} otherwise. */
export function decodeKey(text: string): Uint8Array<ArrayBuffer> {
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = unb64(text.trim());
  } catch {
    throw new Error("CONFIG_ENCRYPTION_KEY must be base64");
  }
  if (raw.length !== 32) {
    throw new Error(`CONFIG_ENCRYPTION_KEY must be 32 bytes of base64 (got ${raw.length})`);
  }
  return raw;
}

export class SecretBox {
  readonly #key: CryptoKey;
  private constructor(key: CryptoKey) {
    this.#key = key;
  }

  static async fromRaw(raw: Uint8Array<ArrayBuffer>): Promise<SecretBox> {
    const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, [
      "encrypt",
      "decrypt",
    ]);
    return new SecretBox(key);
  }

  async encrypt(plain: string): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv },
      this.#key,
      new TextEncoder().encode(plain),
    );
    return `${PREFIX}${b64(iv)}:${b64(new Uint8Array(ct))}`;
  }

  /** @throws {Error} when the text was not made by this key. */
  async decrypt(text: string): Promise<string> {
    if (!text.startsWith(PREFIX)) throw new Error("not an encrypted value");
    const [iv, ct] = text.slice(PREFIX.length).split(":");
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: unb64(iv) },
      this.#key,
      unb64(ct),
    );
    return new TextDecoder().decode(plain);
  }
}

/**
 * The key for secret entries: `CONFIG_ENCRYPTION_KEY`; in embedded mode without it, a key
 * generated once into `DATA_DIR/encryption.key` (mode 0600). With PostgreSQL and no key,
 * null: secrets cannot be written (a key on one replica's disk would strand the others).
 */
export async function loadSecretBox(s: Settings): Promise<SecretBox | null> {
  if (s.CONFIG_ENCRYPTION_KEY) return await SecretBox.fromRaw(decodeKey(s.CONFIG_ENCRYPTION_KEY));
  if (s.DATABASE_URL) return null;
  const path = `${s.DATA_DIR}/encryption.key`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    await Deno.mkdir(s.DATA_DIR, { recursive: true });
    text = b64(crypto.getRandomValues(new Uint8Array(32)));
    await Deno.writeTextFile(path, text + "\n", { mode: 0o600, createNew: true });
    log.warn("CONFIG_ENCRYPTION_KEY is not set: generated a key for secret entries", { path });
  }
  return await SecretBox.fromRaw(decodeKey(text));
}
