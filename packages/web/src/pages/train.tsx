import type { Model, ModelVersion, Page, Training } from "@replicant/protocol";
import { useMemo, useState } from "preact/hooks";
import { api, errorText, useSession } from "../api";
import { SchemaForm } from "../form";
import { navigate } from "../router";
import { type FormValues, fieldsOf, initialValues, toInput } from "../schema";
import { ErrorBox } from "../ui";

/** The model page's Train tab: a form from `TrainingInput`, and a destination model (created if asked). */
export function TrainForm({ owner, name, version }: { owner: string; name: string; version: ModelVersion }) {
  const session = useSession();
  const fields = useMemo(() => fieldsOf(version.openapi_schema, "TrainingInput"), [version]);
  const [values, setValues] = useState<FormValues>(() => initialValues(fields));
  const [destination, setDestination] = useState(`${session?.username ?? "me"}/${name}-tuned`);
  const [create, setCreate] = useState(true);
  const [submitting, setSubmitting] = useState(false);
  const [error, setError] = useState<unknown>(undefined);

  const start = async () => {
    setError(undefined);
    setSubmitting(true);
    try {
      const input = toInput(fields, values);
      const [destOwner, destName] = destination.split("/");
      if (!destOwner || !destName) throw new Error("Destination must be owner/name");
      if (create && !(await ownsModel(destOwner, destName))) {
        await api("/v1/models", {
          method: "POST",
          body: { owner: destOwner, name: destName, visibility: "private", hardware: "cpu" },
        });
      }
      const training = await api<Training>(
        `/v1/models/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/versions/${version.id}/trainings`,
        { method: "POST", body: { destination, input } },
      );
      navigate(`/p/${training.id}?kind=training`);
    } catch (e) {
      setError(e);
      setSubmitting(false);
    }
  };

  return (
    <section class="panel" aria-labelledby="train-heading">
      <h2 id="train-heading">Train a new version</h2>
      <div class="field">
        <label for="train-destination">Destination model</label>
        <input
          id="train-destination"
          type="text"
          value={destination}
          aria-describedby="train-destination-hint"
          onInput={(e) => setDestination(e.currentTarget.value)}
        />
        <p id="train-destination-hint" class="hint">
          owner/name of a model you own; the training adds a version to it.
        </p>
      </div>
      <div class="field field-check">
        <input
          id="train-create"
          type="checkbox"
          checked={create}
          onChange={(e) => setCreate(e.currentTarget.checked)}
        />
        <label for="train-create">Create the destination model (private) if it does not exist</label>
      </div>
      <SchemaForm
        formLabel="Training input"
        fields={fields}
        values={values}
        onChange={setValues}
        onSubmit={start}
        submitting={submitting}
        submitLabel="Start training"
      />
      {error ? <ErrorBox error={error instanceof Error ? error : new Error(errorText(error))} /> : null}
    </section>
  );
}

/** Whether the model exists, from the model list (a GET of a missing model would log a 404 in the console). */
async function ownsModel(owner: string, name: string): Promise<boolean> {
  let next: string | null = "/v1/models?sort_by=model_created_at";
  while (next) {
    const page: Page<Model> = await api<Page<Model>>(next);
    if (page.results.some((m) => m.owner === owner && m.name === name)) return true;
    next = page.next;
  }
  return false;
}
