import type { Deployment, Hardware, Model, ModelVersion, Page } from "@replicant/protocol";
import { useEffect, useState } from "preact/hooks";
import { api, useApi } from "../api";
import { Link, navigate } from "../router";
import { ErrorBox, Loading, PageTitle, Time } from "../ui";
import { Playground } from "./models";

export function DeploymentsPage() {
  const list = useApi<Page<Deployment>>("/v1/deployments");
  return (
    <div>
      <PageTitle sub="A deployment pins a model version with its own instances and a stable name.">
        Deployments
      </PageTitle>
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Loading /> : null}
      {list.data && list.data.results.length === 0 ? <p>No deployments yet.</p> : null}
      {list.data && list.data.results.length > 0 ? (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Deployments</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Model</th>
                <th scope="col">Release</th>
                <th scope="col">Hardware</th>
                <th scope="col">Instances</th>
              </tr>
            </thead>
            <tbody>
              {list.data.results.map((d) => (
                <tr key={`${d.owner}/${d.name}`}>
                  <td>
                    <Link href={`/deployments/${d.owner}/${d.name}`}>
                      {d.owner}/{d.name}
                    </Link>
                  </td>
                  <td>{d.current_release.model}</td>
                  <td>#{d.current_release.number}</td>
                  <td>{d.current_release.configuration.hardware}</td>
                  <td>
                    {d.current_release.configuration.min_instances}–
                    {d.current_release.configuration.max_instances}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <CreateDeployment onCreated={(d) => navigate(`/deployments/${d.owner}/${d.name}`)} />
    </div>
  );
}

function CreateDeployment({ onCreated }: { onCreated: (d: Deployment) => void }) {
  const models = useApi<Page<Model>>("/v1/models");
  const hardware = useApi<Hardware[]>("/v1/hardware");
  const [name, setName] = useState("");
  const [model, setModel] = useState("");
  const [versions, setVersions] = useState<ModelVersion[]>([]);
  const [version, setVersion] = useState("");
  const [sku, setSku] = useState("cpu");
  const [min, setMin] = useState("0");
  const [max, setMax] = useState("1");
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);

  const runnable = (models.data?.results ?? []).filter((m) => m.latest_version);
  useEffect(() => {
    if (!model && runnable[0]) setModel(`${runnable[0].owner}/${runnable[0].name}`);
  }, [model, runnable]);
  useEffect(() => {
    if (!model) return;
    const controller = new AbortController();
    api<Page<ModelVersion>>(`/v1/models/${model}/versions`, { signal: controller.signal }).then(
      (page) => {
        setVersions(page.results);
        setVersion(page.results[0]?.id ?? "");
      },
      () => setVersions([]),
    );
    return () => controller.abort();
  }, [model]);

  const submit = async () => {
    setError(undefined);
    setBusy(true);
    try {
      const created = await api<Deployment>("/v1/deployments", {
        method: "POST",
        body: {
          name,
          model,
          version,
          hardware: sku,
          min_instances: Number(min),
          max_instances: Number(max),
        },
      });
      onCreated(created);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  return (
    <section class="panel" aria-labelledby="create-deployment-heading">
      <h2 id="create-deployment-heading">Create a deployment</h2>
      <form
        class="grid-form"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <div class="field">
          <label for="deployment-name">Name</label>
          <input
            id="deployment-name"
            required
            pattern="[a-z0-9][a-z0-9_.\-]*"
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
            aria-describedby="deployment-name-hint"
          />
          <p id="deployment-name-hint" class="hint">
            Lowercase letters, digits, dashes.
          </p>
        </div>
        <div class="field">
          <label for="deployment-model">Model</label>
          <select id="deployment-model" value={model} onChange={(e) => setModel(e.currentTarget.value)}>
            {runnable.map((m) => (
              <option key={`${m.owner}/${m.name}`} value={`${m.owner}/${m.name}`}>
                {m.owner}/{m.name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="deployment-version">Version</label>
          <select id="deployment-version" value={version} onChange={(e) => setVersion(e.currentTarget.value)}>
            {versions.map((v, i) => (
              <option key={v.id} value={v.id}>
                {v.id.slice(0, 12)}
                {i === 0 ? " (latest)" : ""}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="deployment-hardware">Hardware</label>
          <select id="deployment-hardware" value={sku} onChange={(e) => setSku(e.currentTarget.value)}>
            {(hardware.data ?? [{ name: "CPU", sku: "cpu" }]).map((h) => (
              <option key={h.sku} value={h.sku}>
                {h.name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="deployment-min">Min instances</label>
          <input
            id="deployment-min"
            type="number"
            min={0}
            max={20}
            value={min}
            onInput={(e) => setMin(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="deployment-max">Max instances</label>
          <input
            id="deployment-max"
            type="number"
            min={1}
            max={20}
            value={max}
            onInput={(e) => setMax(e.currentTarget.value)}
          />
        </div>
        <div class="form-actions">
          <button type="submit" class="primary" disabled={busy || !name || !version}>
            {busy ? "Creating…" : "Create deployment"}
          </button>
        </div>
      </form>
      <ErrorBox error={error} title="Could not create the deployment" />
    </section>
  );
}

export function DeploymentPage({ owner, name }: { owner: string; name: string }) {
  const deployment = useApi<Deployment>(
    `/v1/deployments/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`,
  );
  const release = deployment.data?.current_release;
  const version = useApi<ModelVersion>(
    release ? `/v1/models/${release.model}/versions/${release.version}` : null,
    [release?.version],
  );
  if (deployment.error) {
    return (
      <div>
        <PageTitle>
          {owner}/{name}
        </PageTitle>
        <ErrorBox error={deployment.error} />
      </div>
    );
  }
  if (!release) return <Loading />;
  const [modelOwner, modelName] = release.model.split("/");
  return (
    <div>
      <PageTitle
        sub={
          <>
            Deployment of <Link href={`/${release.model}`}>{release.model}</Link>
          </>
        }
      >
        {owner}/{name}
      </PageTitle>
      <dl class="metrics">
        <div>
          <dt>Release</dt>
          <dd>
            #{release.number}, <Time iso={release.created_at} /> by {release.created_by.username}
          </dd>
        </div>
        <div>
          <dt>Version</dt>
          <dd>
            <code title={release.version}>{release.version.slice(0, 12)}</code>
          </dd>
        </div>
        <div>
          <dt>Hardware</dt>
          <dd>{release.configuration.hardware}</dd>
        </div>
        <div>
          <dt>Instances</dt>
          <dd>
            {release.configuration.min_instances} to {release.configuration.max_instances}
          </dd>
        </div>
      </dl>
      {version.data && modelOwner && modelName ? (
        <Playground
          owner={modelOwner}
          name={modelName}
          version={version.data}
          isLatest={true}
          deployment={{ owner, name }}
        />
      ) : (
        <ErrorBox error={version.error} />
      )}
    </div>
  );
}
