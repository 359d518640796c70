/**
 * Request schemas of the flag endpoints. The routes document them (OpenAPI); the FlagActor
 * validates bodies with them, so the HTTP thread only reads text and forwards it.
 */
import { z } from "@hono/zod-openapi";
import { type FieldError, issueMessage, ValidationError } from "../errors.ts";
import type { FlagType } from "./provider.ts";
import { MAX_JSON_DEPTH, nestedDeeperThan } from "../json.ts";

/** Flag names: what Unleash accepts (URL-friendly, UTF-8 allowed), at most 255 characters. */
export const FlagName = z.string().min(1, "must not be empty").max(255).openapi({
  example: "new-ui-enabled",
});

const ContextValue = z.union([z.string().max(1024), z.number(), z.boolean(), z.null()]);
export const EvalContext = z.record(z.string().max(128), ContextValue)
  .refine((o) => Object.keys(o).length <= 64, "at most 64 fields")
  .openapi({
    description: "Unleash context: sessionId, remoteAddress, appName, currentTime and userId " +
      "by name, any other field as a custom property. Values are strings, numbers or booleans.",
    example: { region: "us-west" },
  });

export const FlagTypeName = z.enum(["boolean", "string", "number", "integer", "float", "object"]);

const UserId = z.union([z.string().max(256), z.number()]).transform(String).openapi({
  type: "string",
  example: "user-123",
});

const Environment = z.string().max(64).openapi({ example: "development" });

export const EvaluateBody = z.object({
  flag_name: FlagName,
  user_id: UserId.optional(),
  context: EvalContext.optional(),
  default_value: z.unknown().optional().openapi({
    description: "Answered on error; its JSON type is the flag type unless `type` is given",
    example: false,
  }),
  type: FlagTypeName.optional(),
  environment: Environment.optional(),
}).openapi("FlagEvaluation");

export const BooleanBody = z.object({
  flag_name: FlagName,
  user_id: UserId.optional(),
  context: EvalContext.optional(),
  default_value: z.boolean().optional(),
  environment: Environment.optional(),
}).openapi("BooleanFlagEvaluation");

export const BulkBody = z.object({
  flags: z.array(z.object({
    flag_name: FlagName,
    default_value: z.unknown().optional(),
    type: FlagTypeName.optional(),
  })).min(1, "must name at least one flag").max(200, "at most 200 flags"),
  user_id: UserId.optional(),
  context: EvalContext.optional(),
  environment: Environment.optional(),
}).openapi("BulkFlagEvaluation");

export const OfrepBody = z.object({
  context: z.record(z.string(), z.unknown()).optional(),
}).openapi("OfrepEvaluationRequest");

/** `zod` issues → our field errors (body fields). */
export function bodyErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((i) => ({
    field: i.path.length > 0 ? i.path.join(".") : "body",
    in: "body",
    message: issueMessage(i),
  }));
}

/** Parses JSON text (nested at most {@link MAX_JSON_DEPTH} deep) or throws a ValidationError
 * naming the body. */
export function parseJsonBody(text: string): unknown {
  return checkJsonDepth(parseJsonText(text));
}

/** Parses JSON text or throws a ValidationError naming the body (depth unchecked). */
export function parseJsonText(text: string): unknown {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // An empty body is told from a malformed one only once it does not parse.
    if (text.trim() === "") {
      throw new ValidationError([{ field: "body", in: "body", message: "is required" }]);
    }
    throw new ValidationError([{ field: "body", in: "body", message: "is not valid JSON" }]);
  }
  return doc;
}

/** `doc`, or a ValidationError naming the body when it nests deeper than MAX_JSON_DEPTH. */
export function checkJsonDepth(doc: unknown): unknown {
  // A deeply nested default_value overflowed the stack inside evaluation (500).
  if (nestedDeeperThan(doc)) {
    throw new ValidationError([{
      field: "body",
      in: "body",
      message: `nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`,
    }]);
  }
  return doc;
}

const TYPE_CHECK: Record<FlagType, (v: unknown) => boolean> = {
  boolean: (v) => typeof v === "boolean",
  string: (v) => typeof v === "string",
  number: (v) => typeof v === "number" && Number.isFinite(v),
  float: (v) => typeof v === "number" && Number.isFinite(v),
  integer: (v) => Number.isInteger(v),
  object: (v) => typeof v === "object" && v !== null,
};

/**
 * The flag type and default of one evaluation: `type` if given (the default must match it),
 * else the default's JSON type; no default means a boolean defaulting to false.
 * @returns the type and default, or a field error.
 */
export function typeAndDefault(
  type: FlagType | undefined,
  def: unknown,
  field: string,
): { type: FlagType; def: unknown } | FieldError {
  if (type) {
    if (def === undefined) {
      return type === "boolean"
        ? { type, def: false }
        : { field, in: "body", message: `is required for type ${type}` };
    }
    return TYPE_CHECK[type](def)
      ? { type, def }
      : { field, in: "body", message: `must be a ${type} (type is ${type})` };
  }
  if (def === undefined) return { type: "boolean", def: false };
  if (typeof def === "boolean") return { type: "boolean", def };
  if (typeof def === "string") return { type: "string", def };
  if (typeof def === "number" && Number.isFinite(def)) return { type: "number", def };
  if (typeof def === "object" && def !== null) return { type: "object", def };
  return {
    field,
    in: "body",
    message: "must be a boolean, string, number or object (or give type)",
  };
}

/** The environments flags are kept for: `UNLEASH_SYNC_ENVIRONMENTS`, else all supported. */
export function flagEnvironments(
  s: { UNLEASH_SYNC_ENVIRONMENTS: string[]; SUPPORTED_ENVIRONMENTS: string[] },
): string[] {
  return s.UNLEASH_SYNC_ENVIRONMENTS.length > 0
    ? s.UNLEASH_SYNC_ENVIRONMENTS
    : s.SUPPORTED_ENVIRONMENTS;
}

/** Where an evaluation without `environment` goes: `UNLEASH_ENVIRONMENT`, else the default. */
export function defaultFlagEnvironment(
  s: {
    UNLEASH_SYNC_ENVIRONMENTS: string[];
    SUPPORTED_ENVIRONMENTS: string[];
    UNLEASH_ENVIRONMENT?: string;
    DEFAULT_ENVIRONMENT: string;
  },
): string {
  const envs = flagEnvironments(s);
  if (s.UNLEASH_ENVIRONMENT && envs.includes(s.UNLEASH_ENVIRONMENT)) return s.UNLEASH_ENVIRONMENT;
  return envs.includes(s.DEFAULT_ENVIRONMENT) ? s.DEFAULT_ENVIRONMENT : envs[0];
}
