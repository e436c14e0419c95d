export type { BullmqJobQueueOptions, ExpiredJob } from "./bullmq-queue.js";
export * from "./fs-blob-store.js";
export * from "./kysely-store.js";
export * from "./memory-event-bus.js";
export type { PostgresStoreOptions } from "./postgres.js";
export type { RedisEventBusOptions } from "./redis-event-bus.js";
export type { S3BlobStoreOptions } from "./s3-blob-store.js";
// Scale-out: the opener loads pg, BullMQ and the AWS SDK only when called; the classes live in
// postgres.js, bullmq-queue.js, redis-event-bus.js and s3-blob-store.js.
export * from "./scale-out.js";
export * from "./sqlite.js";
export * from "./sqlite-checkpointer.js";
export * from "./sqlite-queue.js";
export type * from "./types.js";
