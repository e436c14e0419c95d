// Uploaded files and file outputs are served from the playground's origin: what a browser would render as a
// document or run is an attachment, every download is sandboxed and unsniffed, and an upload's type is a
// real media type (a CR/LF in it never reaches a header).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { inProcessOnly, startTestServer, type TestServer } from "../src/index.js";

const ATTACHMENT = [
  "text/html",
  "text/html; charset=utf-8",
  "application/xhtml+xml",
  "image/svg+xml",
  "text/xml",
  "application/xml",
  "application/rss+xml",
  "text/javascript",
  "application/javascript",
  "application/x-shockwave-flash",
  "application/octet-stream",
  "application/x-unknown-thing",
  "text/csv",
  "multipart/x-mixed-replace; boundary=x",
];
const INLINE = [
  "image/png",
  "IMAGE/JPEG",
  "image/webp",
  "audio/mpeg",
  "audio/wav",
  "video/mp4",
  "text/plain",
  'text/plain; charset="utf-8"',
  "application/json",
  "application/pdf",
];

interface Download {
  status: number;
  type: string | null;
  disposition: string | null;
  csp: string | null;
  nosniff: string | null;
  corp: string | null;
}

async function download(url: string, method = "GET"): Promise<Download> {
  const response = await fetch(url, { method });
  await response.arrayBuffer();
  const h = response.headers;
  return {
    status: response.status,
    type: h.get("content-type"),
    disposition: h.get("content-disposition"),
    csp: h.get("content-security-policy"),
    nosniff: h.get("x-content-type-options"),
    corp: h.get("cross-origin-resource-policy"),
  };
}

function assertServed(got: Download, kind: "inline" | "attachment", what: string): void {
  assert.equal(got.status, 200, what);
  assert.equal(got.disposition?.split(";")[0], kind, `${what}: ${got.disposition}`);
  assert.equal(got.csp, "sandbox; default-src 'none'", what);
  assert.equal(got.nosniff, "nosniff", what);
  // Output URLs stay embeddable by other sites, as Replicate's are.
  assert.equal(got.corp, null, what);
}

describe("file downloads: dispositions, sandbox and upload types", () => {
  let server: TestServer;
  const auth = () => ({ authorization: `Bearer ${server.token}` });

  before(async () => {
    server = await startTestServer({ fileOutputs: "url" });
  });
  after(async () => {
    await server?.close();
  });

  async function upload(
    fields: { type?: string; filename?: string; partType?: string; content?: string },
    fieldsFirst = false,
  ): Promise<Response> {
    const form = new FormData();
    const content = () =>
      form.append(
        "content",
        new Blob([fields.content ?? "<p>hi</p>"], fields.partType ? { type: fields.partType } : {}),
        "page.html",
      );
    if (!fieldsFirst) content();
    if (fields.type !== undefined) form.append("type", fields.type);
    if (fields.filename !== undefined) form.append("filename", fields.filename);
    if (fieldsFirst) content();
    return fetch(`${server.apiUrl}/files`, { method: "POST", headers: auth(), body: form });
  }

  async function uploadedUrl(type: string, filename?: string): Promise<string> {
    const response = await upload({ type, ...(filename !== undefined ? { filename } : {}) });
    assert.equal(response.status, 201, await response.clone().text());
    return ((await response.json()) as { urls: { download: string } }).urls.download;
  }

  it("uploads of documents, scripts and unknown types are attachments; media, text, JSON and PDF inline", async () => {
    for (const type of ATTACHMENT) {
      const url = await uploadedUrl(type);
      assertServed(await download(url), "attachment", type);
      assertServed(await download(url, "HEAD"), "attachment", `HEAD ${type}`);
    }
    for (const type of INLINE) {
      const url = await uploadedUrl(type);
      const got = await download(url);
      assertServed(got, "inline", type);
      assert.equal(got.type, type, "the stored type is sent as given");
      assertServed(await download(url, "HEAD"), "inline", `HEAD ${type}`);
    }
  });

  it("a part's own Content-Type is used, and judged, when no type field is sent", async () => {
    const html = await upload({ partType: "text/html" });
    assert.equal(html.status, 201);
    const file = (await html.json()) as { content_type: string; urls: { download: string } };
    assert.equal(file.content_type, "text/html");
    assertServed(await download(file.urls.download), "attachment", "part text/html");
    const png = (await (await upload({ partType: "image/png" })).json()) as { urls: { download: string } };
    assertServed(await download(png.urls.download), "inline", "part image/png");
  });

  it("a file output is served by the same rules", async () => {
    const outputs: [string, string, "inline" | "attachment"][] = [
      ["text/html", "<script>document.title='pwned'</script>", "attachment"],
      [
        "image/svg+xml",
        "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        "attachment",
      ],
      ["application/x-unknown-thing", "?", "attachment"],
      ["image/png", "\x89PNG", "inline"],
      ["audio/wav", "RIFF", "inline"],
      ["video/mp4", "mp4", "inline"],
      ["text/plain", "hello", "inline"],
      ["application/json", "{}", "inline"],
      ["application/pdf", "%PDF-1.4", "inline"],
    ];
    for (const [type, body, kind] of outputs) {
      const response = await fetch(`${server.apiUrl}/models/replicant/file-echo/predictions`, {
        method: "POST",
        headers: { ...auth(), "content-type": "application/json", prefer: "wait" },
        body: JSON.stringify({
          input: { file: `data:${type};base64,${Buffer.from(body).toString("base64")}` },
        }),
      });
      const prediction = (await response.json()) as { status: string; output: string };
      assert.equal(prediction.status, "succeeded", JSON.stringify(prediction));
      assert.match(prediction.output, /\/v1\/files\/[a-z0-9]+\/download\?/);
      assertServed(await download(prediction.output), kind, `output ${type}`);
    }
  });

  it("the file name cannot break Content-Disposition and survives as filename*", async () => {
    const name = 'résumé"; filename=evil.html\\x.txt';
    const got = await download(await uploadedUrl("text/plain", name));
    assertServed(got, "inline", "named");
    const disposition = got.disposition ?? "";
    // Exactly two parameters: a quoted ASCII name with no quote or backslash in it, then filename*.
    const parts = /^inline; filename="([^"\\]*)"; filename\*=UTF-8''(\S+)$/.exec(disposition);
    assert.ok(parts, disposition);
    const encoded = parts[2] ?? "";
    assert.equal(decodeURIComponent(encoded), name);
    assert.match(encoded, /^[A-Za-z0-9!#$&+.^_`|~%-]+$/, "attr-chars and percent escapes only");
  });

  it("a type that is not a media type is refused with a 422 problem, before any header", async () => {
    const bad = [
      "text/html\r\nX-Injected: 1",
      "text/plain\nSet-Cookie: a=b",
      "text/html\r",
      "not a type",
      "text/",
      "/html",
      "text/plain; charset",
      'text/plain; name="unterminated',
      "text/plain\u0000",
      "téxt/plain",
      `text/${"a".repeat(295)}`,
    ];
    for (const type of bad) {
      for (const fieldsFirst of [false, true]) {
        const response = await upload({ type }, fieldsFirst);
        assert.equal(response.status, 422, JSON.stringify(type));
        assert.match(String(response.headers.get("content-type")), /application\/problem\+json/);
        const problem = (await response.json()) as {
          title: string;
          detail: string;
          status: number;
          invalid_fields: { field: string; description: string }[];
        };
        assert.equal(problem.status, 422);
        assert.equal(problem.invalid_fields[0]?.field, "type", JSON.stringify(type));
        if (type.length > 255) assert.match(problem.invalid_fields[0]?.description ?? "", /at most 255/);
      }
    }
    // The part's own type, when it is what would be stored.
    const part = await upload({ partType: "not a type" });
    assert.equal(part.status, 422);
    const problem = (await part.json()) as { invalid_fields: { field: string }[] };
    assert.equal(problem.invalid_fields[0]?.field, "content");
    // Nothing refused was kept.
    const files = (await (await fetch(`${server.apiUrl}/files`, { headers: auth() })).json()) as {
      results: { content_type: string }[];
    };
    assert.ok(files.results.every((f) => !/\s{2}|[\r\n]|not a type/.test(f.content_type)));
  });

  it(
    "a stored type that is not a media type is served as an octet-stream attachment, not a 5xx",
    inProcessOnly("writes a file record straight into the store"),
    async () => {
      // What a pushed predictor's output or a file stored before this check could hold.
      const { ctx } = server.server;
      const info = await ctx.blobs.put(
        "files/legacy",
        Buffer.from("<script>document.title='pwned'</script>"),
      );
      const account = await ctx.store.getAccountByUsername("local");
      const now = new Date();
      await ctx.store.createFile({
        id: "legacyfile0000000000000000",
        account_id: account?.id ?? "",
        name: "page.html",
        content_type: "text/html\r\nX-Injected: 1",
        size: info.size,
        sha256: info.sha256,
        metadata: {},
        blob_key: "files/legacy",
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + 3_600_000).toISOString(),
      });
      const url = ctx.urls.fileDownload(
        "local",
        "legacyfile0000000000000000",
        Math.floor(now.getTime() / 1000) + 600,
      );
      const got = await download(url);
      assertServed(got, "attachment", "legacy");
      assert.equal(got.type, "application/octet-stream");
    },
  );
});
