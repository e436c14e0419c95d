import { useState } from "preact/hooks";
import { apiBaseUrl } from "./api";
import { type SnippetTarget, snippets } from "./snippets";
import { CopyButton, Tabs } from "./ui";

/** The code that runs this model with these inputs: curl, @replicant/sdk, replicate, the CLI and Python. */
export function CodePanel({ target, input }: { target: SnippetTarget; input: Record<string, unknown> }) {
  const list = snippets(target, input, apiBaseUrl());
  const [selected, setSelected] = useState<string>("curl");
  const current = list.find((s) => s.id === selected) ?? list[0];
  return (
    <section class="code-panel" aria-labelledby="code-heading">
      <h2 id="code-heading">Run it from your code</h2>
      <p class="muted small-text">
        Set <code>REPLICATE_API_TOKEN</code> to one of your API tokens (see Account), then run:
      </p>
      <Tabs
        label="Code language"
        tabs={list.map((s) => ({ id: s.id, label: s.label }))}
        selected={current?.id ?? "curl"}
        onSelect={setSelected}
      >
        {current ? (
          <div class="snippet">
            <div class="snippet-bar">
              <span class="muted small-text">{current.language}</span>
              <CopyButton text={current.code} label="Copy code" />
            </div>
            <pre data-snippet={current.id}>
              <code>{current.code}</code>
            </pre>
          </div>
        ) : null}
      </Tabs>
    </section>
  );
}
