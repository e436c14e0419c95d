import type {
  Collection,
  CollectionSummary,
  Model,
  ModelVersion,
  Page,
  Prediction,
  SearchResponse,
} from "@replicant/protocol";
import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, api, errorText, useApi } from "../api";
import { CodePanel } from "../code";
import { SchemaForm } from "../form";
import { Markdown } from "../markdown";
import { Link, navigate, setQuery, useLocation } from "../router";
import { type FormValues, fieldsOf, initialValues, schemaPart, toInput } from "../schema";
import type { SnippetTarget } from "../snippets";
import { ErrorBox, Loading, PageTitle, StatusBadge, Tabs, Time } from "../ui";
import { TrainForm } from "./train";

export function ModelCard({ model }: { model: Model }) {
  const ref = `${model.owner}/${model.name}`;
  return (
    <li class="card model-card">
      <h3>
        <Link href={`/${ref}`}>{ref}</Link>
      </h3>
      <p>{model.description ?? <span class="muted">No description</span>}</p>
      <p class="muted small-text">
        {model.run_count} runs · {model.visibility}
        {model.latest_version ? ` · version ${model.latest_version.id.slice(0, 8)}` : " · no version"}
      </p>
    </li>
  );
}

export function ModelsPage() {
  const { query } = useLocation();
  const q = query.get("q") ?? "";
  const collection = query.get("collection");
  const [text, setText] = useState(q);
  useEffect(() => setText(q), [q]);

  const collections = useApi<Page<CollectionSummary>>("/v1/collections");
  const path = q
    ? `/v1/search?query=${encodeURIComponent(q)}&limit=50`
    : collection
      ? `/v1/collections/${encodeURIComponent(collection)}`
      : "/v1/models";
  const result = useApi<Page<Model> | SearchResponse | Collection>(path);

  let models: Model[] = [];
  const data = result.data;
  if (data && "results" in data) models = data.results;
  else if (data && "query" in data) models = data.models.map((m) => m.model);
  else if (data && "models" in data) models = data.models;

  return (
    <div>
      <PageTitle sub="Run a model from your browser, or copy the code that runs it.">Models</PageTitle>
      <form
        aria-label="Search models"
        class="search"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(text.trim() ? `/?q=${encodeURIComponent(text.trim())}` : "/");
        }}
      >
        <label for="model-search" class="visually-hidden">
          Search models
        </label>
        <input
          id="model-search"
          type="search"
          placeholder="Search models and collections"
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
        />
        <button type="submit">Search</button>
      </form>
      <nav aria-label="Collections" class="chips">
        <Link
          href="/"
          class={`chip${!q && !collection ? " active" : ""}`}
          aria-current={!q && !collection ? "page" : undefined}
        >
          All models
        </Link>
        {(collections.data?.results ?? []).map((c) => (
          <Link
            key={c.slug}
            href={`/?collection=${encodeURIComponent(c.slug)}`}
            class={`chip${collection === c.slug ? " active" : ""}`}
            aria-current={collection === c.slug ? "page" : undefined}
            title={c.description}
          >
            {c.name}
          </Link>
        ))}
      </nav>
      {data && "description" in data && "slug" in data ? <p class="muted">{data.description}</p> : null}
      {data && "query" in data && data.collections.length > 0 ? (
        <p class="muted">
          Collections:{" "}
          {data.collections.map((c) => (
            <Link key={c.slug} href={`/?collection=${encodeURIComponent(c.slug)}`} class="chip">
              {c.name}
            </Link>
          ))}
        </p>
      ) : null}
      <ErrorBox error={result.error} />
      {result.loading && !data ? <Loading /> : null}
      {!result.loading && data && models.length === 0 ? <p>No models found.</p> : null}
      <ul class="grid" aria-label="Models">
        {models.map((m) => (
          <ModelCard key={`${m.owner}/${m.name}`} model={m} />
        ))}
      </ul>
    </div>
  );
}

function parseInputParam(raw: string | null): Record<string, unknown> | undefined {
  if (!raw) return undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    return parsed && typeof parsed === "object" && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export function ModelPage({ owner, name }: { owner: string; name: string }) {
  const { query } = useLocation();
  const tab = query.get("tab") ?? "playground";
  const base = `/v1/models/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;
  const model = useApi<Model>(base);
  const versions = useApi<Page<ModelVersion>>(`${base}/versions`);
  const [readme, setReadme] = useState<string | null | undefined>(undefined);
  const examples = useApi<Page<Prediction>>(`${base}/examples`);

  useEffect(() => {
    setReadme(undefined);
    api<string>(`${base}/readme`, { text: true }).then(setReadme, () => setReadme(null));
  }, [base]);

  const latest = model.data?.latest_version ?? null;
  const versionId = query.get("version") ?? latest?.id ?? null;
  const version: ModelVersion | null =
    versions.data?.results.find((v) => v.id === versionId) ?? (latest?.id === versionId ? latest : null);

  if (model.error) {
    return (
      <div>
        <PageTitle>
          {owner}/{name}
        </PageTitle>
        <ErrorBox error={model.error} />
      </div>
    );
  }
  if (!model.data) return <Loading />;

  const tabs = [
    { id: "playground", label: "Playground" },
    { id: "readme", label: "README" },
    { id: "versions", label: `Versions (${versions.data?.results.length ?? "…"})` },
    { id: "examples", label: "Examples" },
  ];
  const trainable = version ? schemaPart(version.openapi_schema, "TrainingInput") !== undefined : false;
  if (trainable) tabs.push({ id: "train", label: "Train" });
  return (
    <div>
      <PageTitle sub={model.data.description ?? undefined}>
        <span class="muted">{owner}/</span>
        {name}
      </PageTitle>
      <p class="muted small-text">
        {model.data.run_count} runs · {model.data.visibility}
        {model.data.github_url ? (
          <>
            {" · "}
            <a href={model.data.github_url} rel="noopener noreferrer">
              GitHub
            </a>
          </>
        ) : null}
      </p>
      <Tabs
        label="Model"
        tabs={tabs}
        selected={tab}
        onSelect={(id) => setQuery("tab", id === "playground" ? null : id)}
      >
        {tab === "playground" ? (
          version ? (
            <Playground
              key={version.id}
              owner={owner}
              name={name}
              version={version}
              isLatest={version.id === latest?.id}
              initial={parseInputParam(query.get("input"))}
            />
          ) : latest === null ? (
            <p>This model has no version yet, so it cannot run.</p>
          ) : (
            <Loading />
          )
        ) : null}
        {tab === "readme" ? (
          readme === undefined ? (
            <Loading />
          ) : readme === null ? (
            <p class="muted">This model has no README.</p>
          ) : (
            <Markdown source={readme} />
          )
        ) : null}
        {tab === "versions" ? (
          <VersionsTable versions={versions.data?.results ?? []} latest={latest?.id} current={versionId} />
        ) : null}
        {tab === "train" && version && trainable ? (
          <TrainForm owner={owner} name={name} version={version} />
        ) : null}
        {tab === "examples" ? (
          <Examples owner={owner} name={name} examples={examples.data?.results ?? []} />
        ) : null}
      </Tabs>
    </div>
  );
}

function VersionsTable({
  versions,
  latest,
  current,
}: {
  versions: ModelVersion[];
  latest: string | undefined;
  current: string | null;
}) {
  if (versions.length === 0) return <p class="muted">No versions.</p>;
  return (
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">Versions</caption>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Created</th>
            <th scope="col">Cog</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {versions.map((v) => (
            <tr key={v.id}>
              <td>
                <code title={v.id}>{v.id.slice(0, 12)}</code>{" "}
                {v.id === latest ? <span class="tag">latest</span> : null}
              </td>
              <td>
                <Time iso={v.created_at} />
              </td>
              <td>{v.cog_version ?? "—"}</td>
              <td>
                {v.id === current ? (
                  <span class="muted">selected</span>
                ) : (
                  <button
                    type="button"
                    class="small"
                    onClick={() => {
                      const params = new URLSearchParams(location.search);
                      params.set("version", v.id);
                      params.delete("tab");
                      navigate(`${location.pathname}?${params}`);
                    }}
                  >
                    Run this version
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Examples({ owner, name, examples }: { owner: string; name: string; examples: Prediction[] }) {
  if (examples.length === 0) {
    return (
      <p class="muted">
        No examples yet. Run the model and it is easy to share the result: every run has a URL.
      </p>
    );
  }
  return (
    <ul class="list">
      {examples.map((p) => (
        <li key={p.id} class="card">
          <pre class="json">{JSON.stringify(p.input, null, 2)}</pre>
          <p>
            <StatusBadge status={p.status} /> <Link href={`/p/${p.id}`}>Open</Link> ·{" "}
            <Link href={`/${owner}/${name}?input=${encodeURIComponent(JSON.stringify(p.input))}`}>
              Try these inputs
            </Link>
          </p>
        </li>
      ))}
    </ul>
  );
}

export function Playground({
  owner,
  name,
  version,
  isLatest,
  initial,
  deployment,
}: {
  owner: string;
  name: string;
  version: ModelVersion;
  isLatest: boolean;
  initial?: Record<string, unknown> | undefined;
  /** Runs go to this deployment instead of the model. */
  deployment?: { owner: string; name: string };
}) {
  const fields = useMemo(() => fieldsOf(version.openapi_schema), [version]);
  const [values, setValues] = useState<FormValues>(() => initialValues(fields, initial));
  const [submitting, setSubmitting] = useState(false);
  const [error, setError] = useState<unknown>(undefined);

  let input: Record<string, unknown> = {};
  let inputError: string | undefined;
  try {
    input = toInput(fields, values);
  } catch (e) {
    inputError = errorText(e);
  }
  const target: SnippetTarget = deployment
    ? { kind: "deployment", owner: deployment.owner, name: deployment.name }
    : isLatest
      ? { kind: "model", owner, name }
      : { kind: "version", owner, name, version: version.id };

  const run = async () => {
    setError(undefined);
    if (inputError) {
      setError(new Error(inputError));
      return;
    }
    setSubmitting(true);
    try {
      let prediction: Prediction;
      if (deployment) {
        prediction = await api<Prediction>(
          `/v1/deployments/${encodeURIComponent(deployment.owner)}/${encodeURIComponent(deployment.name)}/predictions`,
          { method: "POST", body: { input } },
        );
      } else if (isLatest) {
        prediction = await api<Prediction>(
          `/v1/models/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/predictions`,
          { method: "POST", body: { input } },
        );
      } else {
        prediction = await api<Prediction>("/v1/predictions", {
          method: "POST",
          body: { version: version.id, input },
        });
      }
      navigate(`/p/${prediction.id}`);
    } catch (e) {
      setError(e);
      setSubmitting(false);
    }
  };

  return (
    <div class="playground">
      <section aria-labelledby="input-heading" class="panel">
        <h2 id="input-heading">Input</h2>
        <p class="muted small-text">
          Version <code title={version.id}>{version.id.slice(0, 12)}</code>
          {isLatest ? " (latest)" : ""}
        </p>
        <SchemaForm
          formLabel="Model input"
          fields={fields}
          values={values}
          onChange={setValues}
          onSubmit={run}
          submitting={submitting}
        />
        <ErrorBox error={error} title={error instanceof ApiError ? "Could not start" : "Error"} />
      </section>
      <CodePanel target={target} input={input} />
    </div>
  );
}
