/** RegistryActor messages. Types only. */
import type { CommonCalls } from "./common_protocol.ts";
import type { Instance } from "../lib/registry/model.ts";

type NoFields = Record<never, never>;

export interface RegisterInput {
  service_name: string;
  service_url: string;
  health_check_url?: string;
  metadata: Record<string, string>;
  ttl_seconds?: number | null;
}

export type Strategy = "round_robin" | "random" | "weighted";

export type RegistryCalls = CommonCalls & {
  /** Acknowledged once the record is durable and (with ZooKeeper) the znode exists. */
  register: { req: { input: RegisterInput }; res: { instance: Instance; created: boolean } };
  deregister: { req: { service: string; id: string }; res: Instance };
  heartbeat: { req: { service: string; id: string }; res: Instance };
  /** Every instance (durable view), by service. */
  all: { req: NoFields; res: Instance[] };
  /** `{service_name, instances}` as JSON text (healthy ones only for discover); 404 unknown. */
  answer: { req: { service: string; healthy_only: boolean }; res: string };
  /** One service's instances; NotFoundError when it has none. */
  instances: { req: { service: string }; res: Instance[] };
  /** A healthy instance by the strategy; 404 unknown service, 503 none healthy. */
  pick: { req: { service: string; strategy?: Strategy }; res: Instance };
  /** A health check's outcome from the HealthActor. */
  health_result: {
    req: { service: string; id: string; healthy: boolean; checked_at: string; reason?: string };
    res: Instance | null;
  };
  /** Self-message: heartbeat TTL and deregister-after sweep. */
  sweep: { req: NoFields; res: void };
};
