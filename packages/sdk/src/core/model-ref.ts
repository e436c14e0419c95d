declare const modelTypes: unique symbol;

/**
 * A model reference string that carries its input and output types, so that `run()`, `use()`, `stream()` and
 * `runMany()` type-check inputs and infer outputs. Build one with {@link modelRef}, or generate one with
 * `generateModelTypes(schema, { name, ref })`.
 */
export type ModelRef<TInput = Record<string, unknown>, TOutput = unknown> = string & {
  // Type-only brand: never present at runtime; it makes typed refs distinct from plain strings.
  readonly [modelTypes]: { input: TInput; output: TOutput };
};

/** `R`, unless it is a typed {@link ModelRef} (those must match the typed overloads). */
export type UntypedRef<R> = R extends ModelRef<unknown, unknown> ? never : R;

/** `const hello = modelRef<{ text: string }, string>("replicate/hello-world")`. */
export function modelRef<TInput = Record<string, unknown>, TOutput = unknown>(
  ref: string,
): ModelRef<TInput, TOutput> {
  return ref as ModelRef<TInput, TOutput>;
}
