/**
 * Domain errors. Each has a stable `name`, an HTTP status and readonly fields, and
 * survives the worker boundary through {@link serializeError} / {@link deserializeError}
 * (structured clone drops an Error's class and own fields, comlink #385).
 */

/** Base class: `status` is the HTTP status the error maps to. */
export class DomainError extends Error {
  readonly status: number = 500;
  readonly title: string = "Internal Server Error";
  /** Extra problem+json members (e.g. `errors` for validation). */
  readonly extra: Record<string, unknown> = {};
}

/** One failing input field of a validation error. */
export interface FieldError {
  /** Dotted path of the field, e.g. `body.environment` or `query.limit`. */
  field: string;
  /** Where the field was: body, query, path or header. */
  in?: string;
  message: string;
}

export class ValidationError extends DomainError {
  override readonly name = "ValidationError";
  override readonly status = 400;
  override readonly title = "Bad Request";
  readonly errors: FieldError[];
  constructor(errors: FieldError[], message?: string) {
    super(message ?? `Invalid ${errors.map((e) => e.field).join(", ")}`);
    this.errors = errors;
    this.extra.errors = errors;
  }
}

export class NotFoundError extends DomainError {
  override readonly name = "NotFoundError";
  override readonly status = 404;
  override readonly title = "Not Found";
}

export class ConflictError extends DomainError {
  override readonly name = "ConflictError";
  override readonly status = 409;
  override readonly title = "Conflict";
}

export class PreconditionFailedError extends DomainError {
  override readonly name = "PreconditionFailedError";
  override readonly status = 412;
  override readonly title = "Precondition Failed";
}

/** A request part is larger than allowed (413); names the field. */
export class PayloadTooLargeError extends DomainError {
  override readonly name = "PayloadTooLargeError";
  override readonly status = 413;
  override readonly title = "Content Too Large";
  readonly errors: FieldError[];
  constructor(errors: FieldError[], message?: string) {
    super(message ?? errors.map((e) => `${e.field} ${e.message}`).join("; "));
    this.errors = errors;
    this.extra.errors = errors;
  }
}

export class ForbiddenError extends DomainError {
  override readonly name = "ForbiddenError";
  override readonly status = 403;
  override readonly title = "Forbidden";
}

/**
 * The caller of an actor call went away before the answer (its signal aborted). Mapped to
 * 499, nginx's "client closed request", which no client reads; not an actor failure, and
 * not logged as an error.
 */
export class CallCancelledError extends DomainError {
  override readonly name = "CallCancelledError";
  override readonly status = 499;
  override readonly title = "Client Closed Request";
  readonly actor: string;
  constructor(actor: string, type: string) {
    super(`Call ${type} to actor ${actor} cancelled: its caller went away`);
    this.actor = actor;
  }
}

/** A backend (database, ZooKeeper, …) or a whole actor cannot serve right now. */
export class BackendUnavailableError extends DomainError {
  override readonly name = "BackendUnavailableError";
  override readonly status = 503;
  override readonly title = "Service Unavailable";
  readonly backend: string;
  constructor(backend: string, message: string) {
    super(message);
    this.backend = backend;
    this.extra.backend = backend;
  }
}

/** An actor did not answer within its per-call timeout. */
export class ActorTimeoutError extends DomainError {
  override readonly name = "ActorTimeoutError";
  override readonly status = 504;
  override readonly title = "Gateway Timeout";
  readonly actor: string;
  readonly timeoutMs: number;
  constructor(actor: string, timeoutMs: number, message?: string) {
    super(message ?? `Actor ${actor} did not answer within ${timeoutMs} ms`);
    this.actor = actor;
    this.timeoutMs = timeoutMs;
  }
}

/** The plain-data form of an error that crosses postMessage. */
export interface SerializedError {
  name: string;
  message: string;
  /** Constructor fields needed to rebuild the class on the other side. */
  fields?: Record<string, unknown>;
}

/** Turns any thrown value into plain data that keeps the domain class and fields. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof ValidationError || err instanceof PayloadTooLargeError) {
    return { name: err.name, message: err.message, fields: { errors: err.errors } };
  }
  if (err instanceof BackendUnavailableError) {
    return { name: err.name, message: err.message, fields: { backend: err.backend } };
  }
  if (err instanceof ActorTimeoutError) {
    return {
      name: err.name,
      message: err.message,
      fields: { actor: err.actor, timeoutMs: err.timeoutMs },
    };
  }
  if (err instanceof NotFoundError && err.extra.stale === true) {
    return { name: err.name, message: err.message, fields: { stale: true } };
  }
  if (err instanceof DomainError) return { name: err.name, message: err.message };
  if (err instanceof Error) return { name: "Error", message: err.message };
  return { name: "Error", message: String(err) };
}

/** Rebuilds the domain error that {@link serializeError} flattened. */
export function deserializeError(e: SerializedError): Error {
  const f = e.fields ?? {};
  switch (e.name) {
    case "ValidationError":
      return new ValidationError(f.errors as FieldError[], e.message);
    case "NotFoundError": {
      const nf = new NotFoundError(e.message);
      if (f.stale === true) nf.extra.stale = true;
      return nf;
    }
    case "ConflictError":
      return new ConflictError(e.message);
    case "PreconditionFailedError":
      return new PreconditionFailedError(e.message);
    case "ForbiddenError":
      return new ForbiddenError(e.message);
    case "PayloadTooLargeError":
      return new PayloadTooLargeError(f.errors as FieldError[], e.message);
    case "BackendUnavailableError":
      return new BackendUnavailableError(String(f.backend ?? "unknown"), e.message);
    case "ActorTimeoutError":
      return new ActorTimeoutError(String(f.actor), Number(f.timeoutMs), e.message);
    default:
      return new Error(e.message);
  }
}

/**
 * A zod issue's message as this service words it: a missing field "is required" (zod says
 * "Invalid input: expected string, received undefined"), anything else as zod says it.
 */
export function issueMessage(i: { code: string; message: string }): string {
  return i.code === "invalid_type" && /received undefined$/.test(i.message)
    ? "is required"
    : i.message;
}
