import type { FileObject } from "@replicant/protocol";
import { useState } from "preact/hooks";
import { api, errorText } from "./api";
import type { Field, FormValue, FormValues } from "./schema";

/** An input form generated from a version's schema: one labelled control per property. */
export function SchemaForm({
  fields,
  values,
  onChange,
  onSubmit,
  submitting,
  submitLabel = "Run",
  formLabel,
}: {
  fields: Field[];
  values: FormValues;
  onChange: (values: FormValues) => void;
  onSubmit: () => void;
  submitting: boolean;
  submitLabel?: string;
  formLabel: string;
}) {
  const set = (name: string, value: FormValue) => onChange({ ...values, [name]: value });
  return (
    <form
      class="schema-form"
      aria-label={formLabel}
      onSubmit={(event) => {
        event.preventDefault();
        onSubmit();
      }}
    >
      {fields.length === 0 ? <p class="muted">This model takes no input.</p> : null}
      {fields.map((field) => (
        <FieldControl
          key={field.name}
          field={field}
          value={values[field.name]}
          onChange={(v) => set(field.name, v)}
        />
      ))}
      <div class="form-actions">
        <button type="submit" class="primary" disabled={submitting}>
          {submitting ? "Starting…" : submitLabel}
        </button>
        <button
          type="reset"
          class="ghost"
          onClick={() => onChange(resetValues(fields))}
          disabled={submitting}
        >
          Reset
        </button>
      </div>
    </form>
  );
}

function resetValues(fields: Field[]): FormValues {
  const values: FormValues = {};
  for (const field of fields) {
    if (field.kind === "boolean") values[field.name] = field.default === true;
    else if (field.default === undefined || field.default === null) values[field.name] = "";
    else values[field.name] = field.kind === "json" ? JSON.stringify(field.default) : String(field.default);
  }
  return values;
}

function hint(field: Field): string {
  const parts: string[] = [];
  if (field.description) parts.push(field.description);
  if (field.minimum !== undefined && field.maximum !== undefined)
    parts.push(`Between ${field.minimum} and ${field.maximum}.`);
  else if (field.minimum !== undefined) parts.push(`At least ${field.minimum}.`);
  else if (field.maximum !== undefined) parts.push(`At most ${field.maximum}.`);
  if (field.default !== undefined && field.default !== null && field.kind !== "secret")
    parts.push(`Default: ${JSON.stringify(field.default)}.`);
  return parts.join(" ");
}

function FieldControl({
  field,
  value,
  onChange,
}: {
  field: Field;
  value: FormValue | undefined;
  onChange: (value: FormValue) => void;
}) {
  const id = `input-${field.name}`;
  const hintId = `${id}-hint`;
  const text = typeof value === "string" ? value : "";
  const common = {
    id,
    name: field.name,
    required: field.required,
    "aria-describedby": hintId,
  };
  let control: preact.JSX.Element;
  switch (field.kind) {
    case "boolean":
      return (
        <div class="field field-check">
          <input
            type="checkbox"
            {...common}
            required={false}
            checked={value === true}
            onChange={(e) => onChange(e.currentTarget.checked)}
          />
          <label for={id}>
            {field.title} <code class="field-name">{field.name}</code>
          </label>
          <p id={hintId} class="hint">
            {hint(field)}
          </p>
        </div>
      );
    case "choice":
      control = (
        <select {...common} value={text} onChange={(e) => onChange(e.currentTarget.value)}>
          {field.required || field.default !== undefined ? null : <option value="">—</option>}
          {(field.choices ?? []).map((choice) => (
            <option key={String(choice)} value={String(choice)}>
              {String(choice)}
            </option>
          ))}
        </select>
      );
      break;
    case "integer":
    case "number":
      control = (
        <div class="number-row">
          <input
            type="number"
            {...common}
            inputMode={field.kind === "integer" ? "numeric" : "decimal"}
            step={field.kind === "integer" ? 1 : "any"}
            min={field.minimum}
            max={field.maximum}
            value={text}
            onInput={(e) => onChange(e.currentTarget.value)}
          />
          {field.minimum !== undefined &&
          field.maximum !== undefined &&
          field.maximum - field.minimum <= 10_000 ? (
            <input
              type="range"
              aria-label={`${field.title} slider`}
              min={field.minimum}
              max={field.maximum}
              step={field.kind === "integer" ? 1 : (field.maximum - field.minimum) / 100}
              value={text === "" ? String(field.minimum) : text}
              onInput={(e) => onChange(e.currentTarget.value)}
            />
          ) : null}
        </div>
      );
      break;
    case "secret":
      control = <SecretInput common={common} value={text} onChange={onChange} />;
      break;
    case "text":
      control = (
        <textarea {...common} rows={4} value={text} onInput={(e) => onChange(e.currentTarget.value)} />
      );
      break;
    case "json":
      control = (
        <textarea
          {...common}
          rows={3}
          class="mono"
          spellcheck={false}
          value={text}
          placeholder="JSON"
          onInput={(e) => onChange(e.currentTarget.value)}
        />
      );
      break;
    case "file":
      control = <FileInput field={field} value={value} onChange={onChange} hintId={hintId} />;
      break;
    default:
      control = (
        <input type="text" {...common} value={text} onInput={(e) => onChange(e.currentTarget.value)} />
      );
  }
  return (
    <div class="field">
      <label for={id}>
        {field.title}
        {field.required ? (
          <span class="required" title="required">
            {" "}
            *
          </span>
        ) : null}{" "}
        <code class="field-name">{field.name}</code>
      </label>
      {control}
      <p id={hintId} class="hint">
        {hint(field)}
      </p>
    </div>
  );
}

function SecretInput({
  common,
  value,
  onChange,
}: {
  common: { id: string; name: string; required: boolean; "aria-describedby": string };
  value: string;
  onChange: (value: FormValue) => void;
}) {
  const [shown, setShown] = useState(false);
  return (
    <div class="secret-row">
      {shown ? (
        <input
          type="text"
          autoComplete="off"
          {...common}
          value={value}
          onInput={(e) => onChange(e.currentTarget.value)}
        />
      ) : (
        <input
          type="password"
          autoComplete="off"
          {...common}
          value={value}
          onInput={(e) => onChange(e.currentTarget.value)}
        />
      )}
      <button type="button" class="small" aria-pressed={shown} onClick={() => setShown(!shown)}>
        {shown ? "Hide" : "Show"}
      </button>
    </div>
  );
}

function FileInput({
  field,
  value,
  onChange,
  hintId,
}: {
  field: Field;
  value: FormValue | undefined;
  onChange: (value: FormValue) => void;
  hintId: string;
}) {
  const [uploading, setUploading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [over, setOver] = useState(false);
  const id = `input-${field.name}`;

  const upload = async (file: File) => {
    setUploading(true);
    setError(null);
    try {
      const form = new FormData();
      form.append("content", file, file.name);
      form.append("filename", file.name);
      if (file.type) form.append("type", file.type);
      const created = await api<FileObject>("/v1/files", { method: "POST", body: form });
      onChange({
        url: created.urls.get,
        name: file.name,
        size: file.size,
        contentType: created.content_type,
      });
    } catch (e) {
      setError(errorText(e));
    } finally {
      setUploading(false);
    }
  };

  const uploaded = typeof value === "object" && value !== null ? value : undefined;
  return (
    // biome-ignore lint/a11y/noStaticElementInteractions: a drop target around the file input, which is the keyboard way
    <div
      class={`dropzone${over ? " over" : ""}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        const file = e.dataTransfer?.files[0];
        if (file) void upload(file);
      }}
    >
      <input
        type="file"
        id={id}
        name={field.name}
        aria-describedby={hintId}
        required={field.required && !uploaded && !(typeof value === "string" && value)}
        onChange={(e) => {
          const file = e.currentTarget.files?.[0];
          if (file) void upload(file);
        }}
      />
      <p class="muted small-text">Choose a file or drop one here, or give a URL:</p>
      <input
        type="url"
        aria-label={`${field.title} URL`}
        placeholder="https://…"
        value={typeof value === "string" ? value : ""}
        onInput={(e) => onChange(e.currentTarget.value)}
      />
      {uploading ? (
        <p role="status" class="muted">
          Uploading…
        </p>
      ) : null}
      {uploaded ? (
        <p role="status" class="uploaded">
          Uploaded <strong>{uploaded.name}</strong> ({formatBytes(uploaded.size)}){" "}
          <button type="button" class="small" onClick={() => onChange("")}>
            Remove
          </button>
        </p>
      ) : null}
      {error ? (
        <p role="alert" class="error-text">
          {error}
        </p>
      ) : null}
    </div>
  );
}

export function formatBytes(size: number): string {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}
