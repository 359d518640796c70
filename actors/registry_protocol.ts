/** RegistryActor messages and events. Types only. */
import type { CommonCalls } from "./common_protocol.ts";
import type { HealthOutcome, HealthTarget } from "./health_protocol.ts";
import type { Instance } from "../lib/registry/model.ts";
import type { RegistrationInput } from "../lib/registry/registration.ts";

type NoFields = Record<never, never>;

/** One registered instance, by name: its service and its instance id. */
export type InstanceRef = {
  service: string;
  id: string;
};

/** A registration request (the register endpoint validated its shape). */
export type RegisterInput = RegistrationInput;

export type Strategy = "round_robin" | "random" | "weighted";

export type RegistryCalls = CommonCalls & {
  /** Acknowledged once the record is durable and (with ZooKeeper) the znode exists. */
  register: { req: { input: RegisterInput }; res: { instance: Instance; created: boolean } };
  deregister: { req: InstanceRef; res: Instance };
  heartbeat: { req: InstanceRef; res: Instance };
  /** Every instance (durable view), by service. */
  all: { req: NoFields; res: Instance[] };
  /** Sends every registration and the leadership again (the HealthActor restarted). */
  reannounce: { req: NoFields; res: void };
  /** `{service_name, instances}` as JSON text (healthy ones only for discover); 404 unknown. */
  answer: { req: { service: string; healthy_only: boolean }; res: string };
  /** One service's instances; NotFoundError when it has none. */
  instances: { req: { service: string }; res: Instance[] };
  /** A healthy instance by the strategy; 404 unknown service, 503 none healthy. */
  pick: { req: { service: string; strategy?: Strategy }; res: Instance };
  /** A health check's outcome from the HealthActor; null when the instance is gone. */
  health_result: { req: HealthOutcome; res: Instance | null };
  /** Self-message: heartbeat TTL and deregister-after sweep. */
  sweep: { req: NoFields; res: void };
  /** Self-message: read the records again (the store was unreachable at start). */
  load: { req: NoFields; res: void };
  /** Self-message: read what other replicas wrote to the shared records (PostgreSQL). */
  sync: { req: NoFields; res: void };
};

/** RegistryActor events. */
export type RegistryEvent =
  /** Registrations added or updated (with what a health check needs), or removed. */
  | { type: "registry_changed"; added: HealthTarget[]; removed: InstanceRef[] }
  /** This replica gained or lost leadership of health checking. */
  | { type: "leadership"; leader: boolean }
  /** These services' instances or statuses changed (answers about them are stale). */
  | { type: "registry_services_changed"; services: string[] };
