/** Output declarations: plain data describing what predict() returns, with phantom types for inference. */
import type { Readable } from "node:stream";
import type { FileValue } from "./runner-types.js";

export type OutputKind =
  | "string"
  | "integer"
  | "number"
  | "boolean"
  | "file"
  | "json"
  | "array"
  | "iterator"
  | "object";

export interface OutputSpec<T = unknown> {
  readonly kind: OutputKind;
  readonly items?: OutputSpec;
  readonly properties?: Readonly<Record<string, OutputSpec>>;
  /** Iterators: `concatenate` marks text pieces meant to be joined (Cog's ConcatenateIterator). */
  readonly display?: "concatenate";
  /** Objects: the schema component name (Cog's BaseModel class name). Defaults to `Output`. */
  readonly name?: string;
  /** Phantom: what predict() returns. Never set at runtime. */
  readonly __value?: T;
}

/**
 * What predict() may return for a file output: a local path, a FileValue, or the bytes themselves
 * (written to the scratch directory by the runner).
 */
export type FileLike = string | FileValue | Blob | Uint8Array | Readable | ReadableStream<Uint8Array>;

export type OutputValue<S> = S extends OutputSpec<infer T> ? T : never;

function spec<T>(fields: Omit<OutputSpec, "__value">): OutputSpec<T> {
  return fields as OutputSpec<T>;
}

export const output = {
  string: () => spec<string>({ kind: "string" }),
  integer: () => spec<number>({ kind: "integer" }),
  number: () => spec<number>({ kind: "number" }),
  boolean: () => spec<boolean>({ kind: "boolean" }),
  file: () => spec<FileLike>({ kind: "file" }),
  /** Any JSON value (Cog's `dict` / `Any`). */
  json: () => spec<unknown>({ kind: "json" }),
  array: <S extends OutputSpec>(items: S) => spec<OutputValue<S>[]>({ kind: "array", items }),
  /** Streamed item by item; predict returns an (async) iterable, e.g. an async generator. */
  iterator: <S extends OutputSpec>(items: S, options?: { display?: "concatenate" }) =>
    spec<AsyncIterable<OutputValue<S>> | Iterable<OutputValue<S>>>(
      options?.display ? { kind: "iterator", items, display: options.display } : { kind: "iterator", items },
    ),
  object: <P extends Record<string, OutputSpec>>(properties: P, options?: { name?: string }) =>
    spec<{ [K in keyof P]: OutputValue<P[K]> }>(
      options?.name ? { kind: "object", properties, name: options.name } : { kind: "object", properties },
    ),
};
