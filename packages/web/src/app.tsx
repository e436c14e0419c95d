import { useEffect, useRef, useState } from "preact/hooks";
import { errorText, restoreSession, useSession } from "./api";
import { AccountPage, SignInPage } from "./pages/account";
import { DeploymentPage, DeploymentsPage } from "./pages/deployments";
import { PredictionsPage, TrainingsPage } from "./pages/history";
import { ModelPage, ModelsPage } from "./pages/models";
import { PredictionPage } from "./pages/prediction";
import { Link, match, navigate, useLocation } from "./router";
import { Loading, PageTitle } from "./ui";

const NAV = [
  { href: "/", label: "Models" },
  { href: "/predictions", label: "Predictions" },
  { href: "/trainings", label: "Trainings" },
  { href: "/deployments", label: "Deployments" },
  { href: "/account", label: "Account" },
];

function Page({ path }: { path: string }) {
  if (path === "/" || path === "") return <ModelsPage />;
  if (path === "/predictions") return <PredictionsPage />;
  if (path === "/trainings") return <TrainingsPage />;
  if (path === "/deployments") return <DeploymentsPage />;
  if (path === "/account") return <AccountPage />;
  const prediction = match("/p/:id", path);
  if (prediction) return <PredictionPage id={prediction.id ?? ""} />;
  const deployment = match("/deployments/:owner/:name", path);
  if (deployment) return <DeploymentPage owner={deployment.owner ?? ""} name={deployment.name ?? ""} />;
  const model = match("/:owner/:name", path);
  if (model) return <ModelPage owner={model.owner ?? ""} name={model.name ?? ""} />;
  return (
    <div>
      <PageTitle>Not found</PageTitle>
      <p>
        There is no page at <code>{path}</code>. <Link href="/">See the models</Link>.
      </p>
    </div>
  );
}

export function App() {
  const session = useSession();
  const { path } = useLocation();
  const [ready, setReady] = useState(false);
  const [loginError, setLoginError] = useState<string | null>(null);
  const [startError, setStartError] = useState<string | null>(null);
  const main = useRef<HTMLElement>(null);

  useEffect(() => {
    restoreSession().then(
      (result) => {
        setLoginError(result.loginError);
        setReady(true);
      },
      (error: unknown) => {
        setStartError(errorText(error));
        setReady(true);
      },
    );
  }, []);

  // Signed out (or the token stopped working): go to the sign-in page, and come back afterwards.
  useEffect(() => {
    if (!ready) return;
    if (!session && path !== "/sign-in") {
      navigate(`/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    } else if (session && path === "/sign-in") navigate("/", { replace: true });
  }, [ready, session, path]);

  // After a navigation, move focus to the new page's heading so screen readers announce it.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const heading = main.current?.querySelector<HTMLElement>("h1");
    heading?.focus({ preventScroll: true });
  }, [path]);

  useEffect(() => {
    const heading = main.current?.querySelector("h1")?.textContent;
    document.title = heading ? `${heading} · Replicant` : "Replicant";
  });

  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="site-header">
        <Link href="/" class="brand" aria-label="Replicant home">
          <span aria-hidden="true" class="logo">
            R
          </span>{" "}
          Replicant
        </Link>
        {session ? (
          <nav aria-label="Main">
            <ul>
              {NAV.map((item) => {
                const active = item.href === "/" ? path === "/" : path.startsWith(item.href);
                return (
                  <li key={item.href}>
                    <Link href={item.href} aria-current={active ? "page" : undefined}>
                      {item.label}
                    </Link>
                  </li>
                );
              })}
            </ul>
          </nav>
        ) : null}
        {session ? (
          <span class="who" data-testid="signed-in-as">
            {session.username}
          </span>
        ) : null}
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        {startError ? (
          <p role="alert" class="error-box">
            Could not reach the server: {startError}
          </p>
        ) : null}
        {!ready ? (
          <Loading label="Connecting…" />
        ) : !session || path === "/sign-in" ? (
          <SignInPage loginError={loginError} />
        ) : (
          <Page path={path} />
        )}
      </main>
    </>
  );
}
