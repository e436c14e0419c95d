/** One entry of `invalid_fields` on a 422 "Input validation failed" problem. */
export interface InvalidField {
  type: string;
  field: string;
  description: string;
}

/** RFC 7807 problem details, as Replicate sends them (`application/problem+json`). */
export interface Problem {
  type?: string;
  title: string;
  detail: string;
  status: number;
  instance?: string;
  invalid_fields?: InvalidField[];
}

export const PROBLEM_CONTENT_TYPE = "application/problem+json";
