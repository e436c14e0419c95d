import type { Account } from "@replicant/protocol";
import { useState } from "preact/hooks";
import { api, errorText, setSession, signInWith, useApi } from "../api";
import { navigate } from "../router";
import { CopyButton, ErrorBox, Loading, PageTitle, Time } from "../ui";

interface TokenRow {
  id: string;
  prefix: string;
  name: string | null;
  created_at: string;
}

export function AccountPage() {
  const account = useApi<Account>("/v1/account");
  const tokens = useApi<{ results: TokenRow[] }>("/v1/replicant/tokens");
  const [secret, setSecret] = useState<string | null>(null);
  const [secretError, setSecretError] = useState<unknown>(undefined);
  const [newName, setNewName] = useState("");
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(undefined);

  const createToken = async () => {
    setError(undefined);
    try {
      const result = await api<{ token: string }>("/v1/replicant/tokens", {
        method: "POST",
        body: newName ? { name: newName } : {},
      });
      setCreated(result.token);
      setNewName("");
      tokens.reload();
    } catch (e) {
      setError(e);
    }
  };
  const revoke = async (row: TokenRow) => {
    if (
      !confirm(`Revoke the token ${row.prefix}… (${row.name ?? "unnamed"})? Programs using it stop working.`)
    )
      return;
    setError(undefined);
    try {
      await api(`/v1/replicant/tokens/${row.id}`, { method: "DELETE" });
      tokens.reload();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <div>
      <PageTitle
        sub={account.data ? `Signed in as ${account.data.username} (${account.data.type})` : undefined}
      >
        Account
      </PageTitle>
      <section class="panel" aria-labelledby="tokens-heading">
        <h2 id="tokens-heading">API tokens</h2>
        <p class="muted small-text">
          Programs send a token as <code>Authorization: Bearer …</code>. A token is shown once, when it is
          created.
        </p>
        {tokens.loading && !tokens.data ? <Loading /> : null}
        <ErrorBox error={tokens.error ?? error} />
        {tokens.data ? (
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">API tokens</caption>
              <thead>
                <tr>
                  <th scope="col">Token</th>
                  <th scope="col">Name</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {tokens.data.results.map((t) => (
                  <tr key={t.id}>
                    <td>
                      <code>{t.prefix}…</code>
                    </td>
                    <td>{t.name ?? <span class="muted">unnamed</span>}</td>
                    <td>
                      <Time iso={t.created_at} />
                    </td>
                    <td>
                      <button type="button" class="small danger" onClick={() => revoke(t)}>
                        Revoke<span class="visually-hidden"> {t.prefix}</span>
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            void createToken();
          }}
        >
          <label for="token-name">New token name</label>
          <input
            id="token-name"
            value={newName}
            placeholder="e.g. laptop"
            onInput={(e) => setNewName(e.currentTarget.value)}
          />
          <button type="submit">Create token</button>
        </form>
        {created ? (
          <div class="notice" role="status">
            <p>Your new token (copy it now, it is not shown again):</p>
            <div class="secret-row">
              <input type="text" readOnly aria-label="New token" value={created} data-testid="new-token" />
              <CopyButton text={created} />
            </div>
          </div>
        ) : null}
      </section>
      <section class="panel" aria-labelledby="webhook-heading">
        <h2 id="webhook-heading">Webhook signing secret</h2>
        <p class="muted small-text">
          Webhooks are signed with this secret (Standard Webhooks); verify them with{" "}
          <code>verifyWebhook</code>.
        </p>
        {secret ? (
          <div class="secret-row">
            <input type="text" readOnly aria-label="Webhook signing secret" value={secret} />
            <CopyButton text={secret} />
            <button type="button" class="small" onClick={() => setSecret(null)}>
              Hide
            </button>
          </div>
        ) : (
          <button
            type="button"
            onClick={async () => {
              try {
                setSecret((await api<{ key: string }>("/v1/webhooks/default/secret")).key);
              } catch (e) {
                setSecretError(e);
              }
            }}
          >
            Reveal secret
          </button>
        )}
        <ErrorBox error={secretError} />
      </section>
      <section class="panel" aria-labelledby="session-heading">
        <h2 id="session-heading">This browser</h2>
        <p class="muted small-text">The token you signed in with is kept in this browser's local storage.</p>
        <button
          type="button"
          onClick={() => {
            setSession(null);
            navigate("/sign-in");
          }}
        >
          Sign out
        </button>
      </section>
    </div>
  );
}

/** `loginError`: why the sign-in link this page was opened with did not sign in. */
export function SignInPage({ loginError }: { loginError: string | null }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(loginError);
  const [busy, setBusy] = useState(false);
  const next = new URLSearchParams(location.search).get("next");
  const done = () =>
    navigate(next?.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });

  return (
    <div class="sign-in">
      <PageTitle sub="Use an API token of this server.">Sign in to Replicant</PageTitle>
      <form
        class="panel"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            await signInWith(token.trim());
            done();
          } catch (err) {
            setError(errorText(err));
            setBusy(false);
          }
        }}
      >
        <div class="field">
          <label for="sign-in-token">API token</label>
          <input
            id="sign-in-token"
            type="password"
            autoComplete="current-password"
            required
            value={token}
            aria-describedby="sign-in-hint"
            onInput={(e) => setToken(e.currentTarget.value)}
          />
          <p id="sign-in-hint" class="hint">
            Or open a sign-in link: <code>replicant serve</code> prints one at start and{" "}
            <code>replicant open</code> a new one. The default account's token is printed on the first start
            and kept in the data directory's <code>admin-token</code> file.
          </p>
        </div>
        <div class="form-actions">
          <button type="submit" class="primary" disabled={busy || !token.trim()}>
            {busy ? "Signing in…" : "Sign in"}
          </button>
        </div>
        {error ? (
          <p role="alert" class="error-text">
            {error}
          </p>
        ) : null}
      </form>
    </div>
  );
}
