/**
 * Input declarations. Each builder returns plain data (kind + options) that crosses process boundaries
 * unchanged, and carries phantom types so `predict`'s input type is inferred from the declaration.
 */

export type InputKind = "string" | "integer" | "number" | "boolean" | "file" | "secret" | "array";

/** Whether predict() always sees the value ("required", "default") or may see undefined ("optional"). */
export type Presence = "required" | "default" | "optional";

/** Cog's `Input(...)` options, plus `optional` (Cog's `Optional[T]` / `default=None`). */
export interface InputOptions {
  description?: string;
  default?: unknown;
  ge?: number;
  le?: number;
  min_length?: number;
  max_length?: number;
  regex?: string;
  choices?: readonly (string | number)[];
  deprecated?: boolean;
  optional?: boolean;
}

export interface InputSpec<T = unknown, P extends Presence = Presence> {
  readonly kind: InputKind;
  readonly options: InputOptions;
  /** Element declaration of an array input. */
  readonly items?: InputSpec;
  /** Phantom: the value predict() receives. Never set at runtime. */
  readonly __value?: T;
  /** Phantom: see Presence. Never set at runtime. */
  readonly __presence?: P;
}

export type InputDecls = Record<string, InputSpec>;

interface CommonOptions<T> {
  description?: string;
  /** `null` makes the input optional, like Cog's `default=None`. */
  default?: T | null;
  deprecated?: boolean;
  optional?: boolean;
}

export interface StringOptions extends CommonOptions<string> {
  min_length?: number;
  max_length?: number;
  regex?: string;
  choices?: readonly string[];
}

export interface IntegerOptions extends CommonOptions<number> {
  ge?: number;
  le?: number;
  choices?: readonly number[];
}

export interface NumberOptions extends CommonOptions<number> {
  ge?: number;
  le?: number;
}

export type BooleanOptions = CommonOptions<boolean>;
export type FileOptions = CommonOptions<string>;
export type SecretOptions = CommonOptions<string>;
export type ArrayOptions<T> = CommonOptions<readonly T[]>;

type NoOptions = Record<never, never>;

export type PresenceOf<O> = O extends { optional: true }
  ? "optional"
  : O extends { default: null }
    ? "optional"
    : O extends { default: unknown }
      ? "default"
      : "required";

type ChoiceOr<O, T> = O extends { choices: readonly (infer C)[] } ? C : T;

export type InputValue<S> = S extends InputSpec<infer T, Presence> ? T : never;
type PresenceOfSpec<S> = S extends InputSpec<unknown, infer P> ? P : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The object predict() receives for a set of input declarations. */
export type InferInput<D extends InputDecls> = Simplify<
  {
    [K in keyof D as PresenceOfSpec<D[K]> extends "optional" ? never : K]: InputValue<D[K]>;
  } & {
    [K in keyof D as PresenceOfSpec<D[K]> extends "optional" ? K : never]?: InputValue<D[K]> | undefined;
  }
>;

function spec<T, P extends Presence>(kind: InputKind, options: object | undefined, items?: InputSpec) {
  const result: { kind: InputKind; options: InputOptions; items?: InputSpec } = {
    kind,
    options: { ...(options as InputOptions | undefined) },
  };
  if (items) result.items = items;
  return result as InputSpec<T, P>;
}

export const input = {
  string<const O extends StringOptions = NoOptions>(
    options?: O,
  ): InputSpec<ChoiceOr<O, string>, PresenceOf<O>> {
    return spec("string", options);
  },
  integer<const O extends IntegerOptions = NoOptions>(
    options?: O,
  ): InputSpec<ChoiceOr<O, number>, PresenceOf<O>> {
    return spec("integer", options);
  },
  number<const O extends NumberOptions = NoOptions>(options?: O): InputSpec<number, PresenceOf<O>> {
    return spec("number", options);
  },
  boolean<const O extends BooleanOptions = NoOptions>(options?: O): InputSpec<boolean, PresenceOf<O>> {
    return spec("boolean", options);
  },
  /** A file: an absolute local path inside the runner (the server downloads URLs first). */
  file<const O extends FileOptions = NoOptions>(options?: O): InputSpec<string, PresenceOf<O>> {
    return spec("file", options);
  },
  /** A secret string: masked in echoed inputs and marked `x-cog-secret` in the schema. */
  secret<const O extends SecretOptions = NoOptions>(options?: O): InputSpec<string, PresenceOf<O>> {
    return spec("secret", options);
  },
  array<S extends InputSpec, const O extends ArrayOptions<InputValue<S>> = NoOptions>(
    items: S,
    options?: O,
  ): InputSpec<InputValue<S>[], PresenceOf<O>> {
    return spec("array", options, {
      kind: items.kind,
      options: items.options,
      ...(items.items ? { items: items.items } : {}),
    });
  },
};

/** True when predict() may receive undefined for this input. */
export function isOptionalInput(spec: InputSpec): boolean {
  return spec.options.optional === true || spec.options.default === null;
}

export function hasDefault(spec: InputSpec): boolean {
  return spec.options.default !== undefined && spec.options.default !== null;
}
