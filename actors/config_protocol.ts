/** ConfigActor messages. Types only. */
import type { CommonCalls } from "./common_protocol.ts";

export type ConfigCalls = CommonCalls;
