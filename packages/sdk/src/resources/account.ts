import type { Account as AccountObject } from "@replicant/protocol";
import type { RequestControl } from "../client.js";
import { APIResource } from "./resource.js";

/** `account.get`: the user or organization that owns the token. */
export class Account extends APIResource {
  get = (options: RequestControl = {}): Promise<AccountObject> =>
    this.client.get<AccountObject>("/account", options);
}
