/** Content digests of flag documents and answers. */

/** The SHA-256 of `text` (UTF-8) as 64 lowercase hex characters. */
export async function sha256Hex(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}
