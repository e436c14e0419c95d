import type { Page, Prediction, Training } from "@replicant/protocol";
import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { Link, navigate, useLocation } from "../router";
import { ErrorBox, Loading, PageTitle, StatusBadge, Time } from "../ui";

const STATUSES = ["starting", "processing", "succeeded", "failed", "canceled", "aborted"];

function dayStart(date: string): string | undefined {
  return date ? new Date(`${date}T00:00:00`).toISOString() : undefined;
}
function dayEnd(date: string): string | undefined {
  return date ? new Date(`${date}T23:59:59.999`).toISOString() : undefined;
}

/** Loads a list and its following pages on demand. */
function usePaged<T>(path: string) {
  const [items, setItems] = useState<T[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    setItems([]);
    api<Page<T>>(path, { signal: controller.signal }).then(
      (page) => {
        setItems(page.results);
        setNext(page.next);
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (controller.signal.aborted) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => controller.abort();
  }, [path]);
  const more = async () => {
    if (!next) return;
    setLoading(true);
    try {
      const page = await api<Page<T>>(next);
      setItems((list) => [...list, ...page.results]);
      setNext(page.next);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };
  return { items, next, error, loading, more };
}

function RunsTable({
  runs,
  label,
  kind,
}: {
  runs: (Prediction | Training)[];
  label: string;
  kind: "prediction" | "training";
}) {
  return (
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">{label}</caption>
        <thead>
          <tr>
            <th scope="col">ID</th>
            <th scope="col">Model</th>
            <th scope="col">Status</th>
            <th scope="col">Source</th>
            <th scope="col">Created</th>
            <th scope="col">Run time</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((p) => (
            <tr key={p.id}>
              <td>
                <Link href={kind === "training" ? `/p/${p.id}?kind=training` : `/p/${p.id}`}>
                  <code>{p.id}</code>
                </Link>
              </td>
              <td>
                {p.model}
                {"deployment" in p && p.deployment ? <span class="muted"> via {p.deployment}</span> : null}
              </td>
              <td>
                <StatusBadge status={p.status} />
              </td>
              <td>{p.source}</td>
              <td>
                <Time iso={p.created_at} />
              </td>
              <td>
                {typeof p.metrics?.predict_time === "number" ? `${p.metrics.predict_time.toFixed(2)} s` : "—"}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function PredictionsPage() {
  const { query } = useLocation();
  const status = query.get("status") ?? "";
  const model = query.get("model") ?? "";
  const after = query.get("after") ?? "";
  const before = query.get("before") ?? "";
  const params = new URLSearchParams();
  const createdAfter = dayStart(after);
  const createdBefore = dayEnd(before);
  if (createdAfter) params.set("created_after", createdAfter);
  if (createdBefore) params.set("created_before", createdBefore);
  const list = usePaged<Prediction>(`/v1/predictions${params.size ? `?${params}` : ""}`);
  const shown = list.items.filter(
    (p) =>
      (!status || p.status === status) && (!model || p.model.toLowerCase().includes(model.toLowerCase())),
  );

  const update = (name: string, value: string) => {
    const next = new URLSearchParams(location.search);
    if (value) next.set(name, value);
    else next.delete(name);
    navigate(`/predictions${next.size ? `?${next}` : ""}`, { replace: true });
  };

  return (
    <div>
      <PageTitle sub="Everything this account ran, newest first.">Predictions</PageTitle>
      <form class="filters" aria-label="Filter predictions" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="filter-status">Status</label>
          <select id="filter-status" value={status} onChange={(e) => update("status", e.currentTarget.value)}>
            <option value="">Any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="filter-model">Model</label>
          <input
            id="filter-model"
            type="search"
            placeholder="owner/name"
            value={model}
            onChange={(e) => update("model", e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="filter-after">From</label>
          <input
            id="filter-after"
            type="date"
            value={after}
            onChange={(e) => update("after", e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="filter-before">To</label>
          <input
            id="filter-before"
            type="date"
            value={before}
            onChange={(e) => update("before", e.currentTarget.value)}
          />
        </div>
      </form>
      <ErrorBox error={list.error} />
      {list.loading && list.items.length === 0 ? <Loading /> : null}
      {!list.loading && shown.length === 0 ? (
        <p>
          No predictions{status || model || after || before ? " match these filters" : " yet"}.{" "}
          <Link href="/">Run a model</Link>.
        </p>
      ) : null}
      {shown.length > 0 ? <RunsTable runs={shown} label="Predictions" kind="prediction" /> : null}
      {list.next ? (
        <button type="button" onClick={list.more} disabled={list.loading}>
          Load more
        </button>
      ) : null}
    </div>
  );
}

export function TrainingsPage() {
  const list = usePaged<Training>("/v1/trainings");
  return (
    <div>
      <PageTitle sub="Fine-tunes of trainable models; each one makes a new version of its destination model.">
        Trainings
      </PageTitle>
      <ErrorBox error={list.error} />
      {list.loading && list.items.length === 0 ? <Loading /> : null}
      {!list.loading && list.items.length === 0 ? (
        <p>
          No trainings yet. Start one from a trainable model's page, for example{" "}
          <Link href="/replicant/hello-trainable?tab=train">replicant/hello-trainable</Link>.
        </p>
      ) : null}
      {list.items.length > 0 ? <RunsTable runs={list.items} label="Trainings" kind="training" /> : null}
      {list.next ? (
        <button type="button" onClick={list.more} disabled={list.loading}>
          Load more
        </button>
      ) : null}
    </div>
  );
}
