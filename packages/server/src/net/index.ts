export {
  AddressPolicy,
  embeddedIpv4,
  isLocalhostName,
  type PrivateAddressPolicy,
  parseIpLiteral,
} from "./address-policy.js";
export {
  createGuardedConnector,
  createGuardedFetch,
  type GuardedFetch,
  type GuardedFetchOptions,
  type GuardedRequestInit,
  GuardedResponse,
  type OutboundFailure,
  OutboundRequestError,
} from "./guarded-fetch.js";
export {
  checkOutboundUrl,
  checkOutboundUrlResolved,
  describeUrl,
  type HostResolver,
  type OutboundUrlOptions,
  parseOutboundUrl,
  type ResolvedAddress,
  systemResolver,
  UrlRefusedError,
} from "./url-guard.js";
