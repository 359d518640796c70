/** The embedded flag source: a file in Unleash client-API format. */
import type { Settings } from "../settings.ts";
import type { BackendProbe } from "../backend.ts";

/** `FLAGS_FILE`, else `${DATA_DIR}/flags.json`. */
export function flagsFilePath(s: Settings): string {
  return s.FLAGS_FILE ?? `${s.DATA_DIR}/flags.json`;
}

/** Creates an empty flags document at `path` when none exists, so a fresh start works. */
export function ensureFlagsFile(path: string): void {
  try {
    Deno.statSync(path);
  } catch {
    const dir = path.replace(/\/[^/]*$/, "");
    if (dir && dir !== path) Deno.mkdirSync(dir, { recursive: true });
    Deno.writeTextFileSync(
      path,
      JSON.stringify({ version: 2, features: [], segments: [] }, null, 2) + "\n",
    );
  }
}

export function flagsFileProbe(path: string): BackendProbe {
  return {
    name: "flags",
    kind: "file",
    async check() {
      ensureFlagsFile(path);
      const doc = JSON.parse(await Deno.readTextFile(path));
      if (
        typeof doc !== "object" || doc === null ||
        (!Array.isArray(doc.features) && !doc.environments)
      ) {
        throw new Error(`${path} is not an Unleash client-API document`);
      }
    },
  };
}
