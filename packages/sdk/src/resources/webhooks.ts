import type { WebhookSecret } from "@replicant/protocol";
import type { RequestControl } from "../client.js";
import { APIResource } from "./resource.js";

/** `webhooks.default.secret.get`: the signing secret of your webhooks (cache it). */
export class Webhooks extends APIResource {
  readonly default = {
    secret: {
      get: (options: RequestControl = {}): Promise<WebhookSecret> =>
        this.client.get<WebhookSecret>("/webhooks/default/secret", options),
    },
  };
}
