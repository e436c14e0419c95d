import type { Hardware } from "@replicant/protocol";
import { addRoute } from "../http.js";
import type { RouteDeps } from "./deps.js";

/** This server runs models on its CPU; GPUs are listed only where present (none are, yet). */
export const HARDWARE: readonly Hardware[] = [{ name: "CPU", sku: "cpu" }];

export function registerHardwareRoutes({ app, table }: RouteDeps): void {
  addRoute(app, table, "GET", "/v1/hardware", async () => HARDWARE);
}
