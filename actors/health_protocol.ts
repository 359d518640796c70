/** HealthActor messages. Types only. */
import type { CommonCalls } from "./common_protocol.ts";

export type HealthCalls = CommonCalls;
