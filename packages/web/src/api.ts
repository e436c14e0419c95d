import { useEffect, useState } from "preact/hooks";

/** Where the API token lives in the browser. */
export const TOKEN_KEY = "replicant.token";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly body: unknown,
  ) {
    super(detail || title || `HTTP ${status}`);
    this.name = "ApiError";
  }
}

// ---- auth state -------------------------------------------------------------------------------

export interface Session {
  token: string;
  username: string;
}

type Listener = () => void;
const listeners = new Set<Listener>();
let session: Session | null = null;

function readStoredToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function getSession(): Session | null {
  return session;
}

export function setSession(next: Session | null): void {
  session = next;
  try {
    if (next) localStorage.setItem(TOKEN_KEY, next.token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the session lasts as long as the page
  }
  for (const listener of listeners) listener();
}

export function useSession(): Session | null {
  const [value, setValue] = useState(session);
  useEffect(() => {
    const listener = () => setValue(session);
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }, []);
  return value;
}

/** Checks a token against `GET /v1/account`; returns the session it opens. */
export async function signInWith(token: string): Promise<Session> {
  const account = await api<{ username: string }>("/v1/account", { token });
  const next = { token, username: account.username };
  setSession(next);
  return next;
}

/**
 * Takes a sign-in link's code (`/?login=CODE`, printed by `replicant serve` and `replicant open`) out of
 * the address bar as the app starts, so that it stays in no history entry, bookmark or Referer.
 */
export function takeLoginCode(): string | null {
  const params = new URLSearchParams(location.search);
  const code = params.get("login");
  if (code === null) return null;
  params.delete("login");
  const search = params.toString();
  history.replaceState(
    history.state,
    "",
    `${location.pathname}${search ? `?${search}` : ""}${location.hash}`,
  );
  return code;
}

/** Trades a sign-in link's one-time code for its token, then signs in with it as a typed token would. */
export async function signInWithLink(code: string): Promise<Session> {
  // No Authorization header: the code alone is the credential.
  const answer = await api<{ token: string }>("/replicant/session", {
    method: "POST",
    body: { code },
    token: "",
  });
  return signInWith(answer.token);
}

/**
 * Signs in with a sign-in link's code when the URL has one, else restores the stored token. Returns why a
 * link did not sign in, for the sign-in page.
 */
export async function restoreSession(): Promise<{ loginError: string | null }> {
  const code = takeLoginCode();
  let loginError: string | null = null;
  if (code !== null) {
    try {
      await signInWithLink(code);
      return { loginError };
    } catch (error) {
      loginError = error instanceof ApiError ? error.detail || error.title : errorText(error);
    }
  }
  const stored = readStoredToken();
  if (stored) {
    try {
      await signInWith(stored);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) throw error;
      setSession(null);
    }
  }
  return { loginError };
}

// ---- requests ---------------------------------------------------------------------------------

export interface RequestOptions {
  method?: string;
  /** JSON-encoded unless it is FormData. */
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Defaults to the session's token. */
  token?: string;
  /** Return the body as text. */
  text?: boolean;
}

/** Calls the API on this origin (`/v1/...`, or an absolute URL the API returned) and parses the answer. */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json", ...options.headers };
  const token = options.token ?? session?.token;
  if (token) headers.authorization = `Bearer ${token}`;
  let body: BodyInit | undefined;
  if (options.body instanceof FormData) body = options.body;
  else if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  const init: RequestInit = { method: options.method ?? "GET", headers };
  if (body !== undefined) init.body = body;
  if (options.signal) init.signal = options.signal;
  const response = await fetch(localUrl(path), init);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  if (!response.ok) {
    let parsed: unknown = text;
    let title = response.statusText;
    let detail = text.slice(0, 300);
    try {
      parsed = JSON.parse(text);
      const problem = parsed as { title?: unknown; detail?: unknown };
      if (typeof problem.title === "string") title = problem.title;
      if (typeof problem.detail === "string") detail = problem.detail;
    } catch {
      // not JSON
    }
    if (response.status === 401 && session && !options.token) setSession(null);
    throw new ApiError(response.status, title, detail, parsed);
  }
  if (options.text) return text as T;
  return (text ? JSON.parse(text) : undefined) as T;
}

/**
 * The API hands out absolute URLs built from the server's public URL. The page may be open under another
 * name of the same server (localhost vs 127.0.0.1), so this server's `/v1/...` URLs are fetched on this
 * origin: same-origin, no CORS, and allowed by the UI's CSP.
 */
export function localUrl(url: string): string {
  if (url.startsWith("/")) return url;
  try {
    const parsed = new URL(url);
    if (parsed.pathname.startsWith("/v1/") && (parsed.protocol === "http:" || parsed.protocol === "https:")) {
      return parsed.pathname + parsed.search;
    }
  } catch {
    return url;
  }
  return url;
}

/** The API's base URL as this page sees it, for code snippets. */
export function apiBaseUrl(): string {
  return `${location.origin}/v1`;
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.detail ? `${error.title}: ${error.detail}` : error.title;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Loads data for a component; reloads when a key changes. */
export function useApi<T>(
  path: string | null,
  deps: readonly unknown[] = [],
): {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
} {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: path !== null,
  });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (path === null) return;
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    api<T>(path, { signal: controller.signal }).then(
      (data) => setState({ data, error: undefined, loading: false }),
      (error: unknown) => {
        if (controller.signal.aborted) return;
        setState({ data: undefined, error, loading: false });
      },
    );
    return () => controller.abort();
  }, [path, tick, ...deps]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}
