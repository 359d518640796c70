/** Small helpers for route definitions: the same response shapes across resources. */
import { z } from "@hono/zod-openapi";
import { PROBLEM_CONTENT_TYPE } from "../lib/problem.ts";

const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number(),
  detail: z.string(),
}).openapi("Problem");

/** `problem+json` responses for each status code. */
export const problemResponses = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [c, {
    description: "Problem",
    content: { [PROBLEM_CONTENT_TYPE]: { schema: Problem } },
  }]));

/** A JSON response of `schema`. */
export const jsonContent = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** A required JSON request body of `schema`. */
export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  body: { required: true, content: { "application/json": { schema } } },
});
