import type { Hardware as HardwareObject } from "@replicant/protocol";
import type { RequestControl } from "../client.js";
import { APIResource } from "./resource.js";

/** `hardware.list`: the hardware SKUs models and deployments can run on (a plain array, not paginated). */
export class Hardware extends APIResource {
  list = (options: RequestControl = {}): Promise<HardwareObject[]> =>
    this.client.get<HardwareObject[]>("/hardware", options);
}
