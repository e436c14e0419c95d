/** `AbortSignal.any` where available (it cleans up after itself), a listener otherwise. */
export function anySignal(signals: AbortSignal[]): AbortSignal {
  const withAny = AbortSignal as typeof AbortSignal & { any?: (signals: AbortSignal[]) => AbortSignal };
  if (typeof withAny.any === "function") return withAny.any(signals);
  const controller = new AbortController();
  for (const signal of signals) {
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
  }
  return controller.signal;
}
