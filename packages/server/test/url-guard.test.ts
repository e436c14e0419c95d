import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { ProblemError } from "../src/errors.js";
import {
  AddressPolicy,
  checkOutboundUrl,
  checkOutboundUrlResolved,
  createGuardedConnector,
  createGuardedFetch,
  type GuardedFetchOptions,
  type HostResolver,
  OutboundRequestError,
  UrlRefusedError,
} from "../src/net/index.js";
import { type Canary, startCanary } from "./support/canary.js";
import { startHttpServer, type TestServer } from "./support/http-server.js";
import { installLoopbackTripwire, type LoopbackTripwire } from "./support/loopback-tripwire.js";

// reliability-security.md §7.5 S1: every spelling the WHATWG parser folds into a non-public address.
const S1_HOSTS = [
  "127.0.0.1",
  "2130706433",
  "0x7f000001",
  "017700000001",
  "0x7f.1",
  "127.1",
  "0177.0.0.1",
  "%31%32%37.0.0.1",
  "0",
  "0.0.0.0",
  "[::]",
  "[::1]",
  "[0:0:0:0:0:0:0:1]",
  "[::ffff:127.0.0.1]",
  "[::ffff:7f00:1]",
  "169.254.169.254",
  "[::ffff:a9fe:a9fe]",
  "[fd00:ec2::254]",
  "100.64.0.1",
  "100.100.100.200",
  "10.0.0.1",
  "172.16.0.1",
  "192.168.0.1",
  "192.0.0.192",
  "198.18.0.1",
  "224.0.0.1",
  "255.255.255.255",
  "[fe80::1]",
  "[fc00::1]",
  "[64:ff9b::7f00:1]",
  "[2002:7f00:1::]",
  // A few more: a trailing dot, IPv4-compatible IPv6, Teredo, documentation ranges.
  "127.0.0.1.",
  "[::127.0.0.1]",
  "[2001::1]",
  "192.0.2.1",
  "[2001:db8::1]",
];

/** A public-looking address for simulated DNS answers; the tripwire guarantees it is never dialled. */
const PUBLIC_ADDRESS = "93.184.216.34";

const fixedResolver =
  (answers: Record<string, string[]>, calls: string[] = []): HostResolver =>
  async (hostname) => {
    calls.push(hostname);
    const list = answers[hostname.toLowerCase()];
    if (!list) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return list.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };

let canary: Canary;
let tripwire: LoopbackTripwire;
const openFetches: { close(): Promise<void> }[] = [];

function guarded(overrides: Partial<GuardedFetchOptions> = {}) {
  const fetch = createGuardedFetch({
    allowPrivate: false,
    timeoutMs: 2_000,
    maxBytes: 1024 * 1024,
    maxRedirects: 3,
    ...overrides,
  });
  openFetches.push(fetch);
  return fetch;
}

async function refused(promise: Promise<unknown>, pattern?: RegExp): Promise<UrlRefusedError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof UrlRefusedError, `expected UrlRefusedError, got ${String(error)}`);
    if (pattern) assert.match(error.message, pattern);
    return error;
  }
  assert.fail("the request was not refused");
}

before(async () => {
  tripwire = installLoopbackTripwire();
  canary = await startCanary();
});

after(async () => {
  await Promise.all(openFetches.map((f) => f.close()));
  await canary.close();
  tripwire.uninstall();
  assert.equal(canary.connections, 0, "the canary must never be reached");
  assert.deepEqual(tripwire.blocked, [], "nothing may be dialled outside loopback");
});

describe("test harness", () => {
  test("the tripwire stops non-loopback dials, literal or resolved", async () => {
    const attempt = (options: net.NetConnectOpts) =>
      new Promise<Error | undefined>((resolve) => {
        const socket = net.connect(options);
        socket.on("error", resolve);
        socket.on("connect", () => {
          socket.destroy();
          resolve(undefined);
        });
      });
    const lookup: net.LookupFunction = (_host, _options, callback) => callback(null, PUBLIC_ADDRESS, 4);
    assert.match(String(await attempt({ host: PUBLIC_ADDRESS, port: 80 })), /tripwire/);
    assert.match(String(await attempt({ host: "example.test", port: 80, lookup })), /tripwire/);
    assert.deepEqual(tripwire.blocked.splice(0), [PUBLIC_ADDRESS, PUBLIC_ADDRESS]);
  });

  test("a canary counts connections", async () => {
    const other = await startCanary();
    const fetch = guarded({ allowPrivate: true });
    await assert.rejects(fetch(`http://127.0.0.1:${other.port}/`));
    await other.close();
    assert.equal(other.connections, 1);
  });
});

describe("checkOutboundUrl (create-time check)", () => {
  for (const host of S1_HOSTS) {
    test(`refuses http://${host}`, () => {
      assert.throws(
        () =>
          checkOutboundUrl(`http://${host}:${canary.port}/hook`, { allowPrivate: false, field: "webhook" }),
        (error: unknown) => {
          assert.ok(error instanceof ProblemError);
          assert.equal(error.status, 422);
          assert.equal(error.title, "Invalid URL");
          assert.match(error.detail, /^webhook: .* is not allowed: .* is (a|an|the) /);
          assert.equal(error.invalidFields?.[0]?.field, "webhook");
          return true;
        },
      );
    });
  }

  test("refuses localhost names in any case, with a trailing dot, and subdomains", () => {
    for (const host of ["localhost", "LOCALHOST.", "api.localhost", "x.LocalHost.."]) {
      assert.throws(() => checkOutboundUrl(`http://${host}/`, { allowPrivate: false }), /loopback name/);
    }
  });

  test("refuses schemes other than http and https (S6)", () => {
    for (const url of [
      "file:///etc/passwd",
      "ftp://example.com/x",
      "gopher://example.com/",
      "blob:https://example.com/uuid",
      "javascript:alert(1)",
      "data:text/plain,hi",
      "ws://example.com/",
    ]) {
      assert.throws(
        () => checkOutboundUrl(url, { allowPrivate: true }),
        (error: unknown) => error instanceof ProblemError && /scheme .* is not allowed/.test(error.detail),
        url,
      );
    }
  });

  test("refuses unparsable URLs, including IPv6 zone ids", () => {
    for (const url of ["not a url", "http://[fe80::1%25eth0]/", "http://", "https://exa mple.com/"]) {
      assert.throws(() => checkOutboundUrl(url, { allowPrivate: false }), /is not a valid URL/, url);
    }
  });

  test("accepts public addresses and host names (names are checked when resolved)", () => {
    for (const url of [
      "https://example.com/hook?x=1",
      "http://8.8.8.8/",
      "https://[2606:4700::1111]/",
      "https://[64:ff9b::808:808]/",
      "https://[::ffff:8.8.8.8]/",
      "http://127.0.0.1.nip.io/",
    ]) {
      assert.equal(checkOutboundUrl(url, { allowPrivate: false }).href, new URL(url).href);
    }
  });

  test("allowPrivate: true accepts everything http(s); an allowlist accepts only its ranges", () => {
    assert.ok(checkOutboundUrl("http://127.0.0.1:1/", { allowPrivate: true }));
    assert.ok(checkOutboundUrl("http://localhost:1/", { allowPrivate: true }));
    const allow = { allowPrivate: ["127.0.0.1/32", "10.1.0.0/16"] };
    assert.ok(checkOutboundUrl("http://127.0.0.1:1/", allow));
    assert.ok(checkOutboundUrl("http://[::ffff:127.0.0.1]:1/", allow));
    assert.ok(checkOutboundUrl("http://10.1.2.3/", allow));
    assert.ok(checkOutboundUrl("http://localhost:1/", allow));
    assert.throws(() => checkOutboundUrl("http://127.0.0.2/", allow));
    assert.throws(() => checkOutboundUrl("http://10.2.0.1/", allow));
    assert.throws(() => checkOutboundUrl("http://[::1]/", allow));
    assert.throws(() => checkOutboundUrl("http://169.254.169.254/", allow));
  });

  test("an invalid allowlist entry is a configuration error", () => {
    assert.throws(() => new AddressPolicy(["127.0.0.1/33"]), /Invalid address or CIDR/);
    assert.throws(() => new AddressPolicy(["localhost"]), /Invalid address or CIDR/);
  });

  test("checkOutboundUrlResolved refuses a name when any answer is non-public", async () => {
    const resolve = fixedResolver({
      "evil.test": ["127.0.0.1"],
      "mixed.test": [PUBLIC_ADDRESS, "10.0.0.1"],
      "v6.test": [PUBLIC_ADDRESS, "fd00::1"],
      "good.test": [PUBLIC_ADDRESS, "2606:4700::1111"],
    });
    for (const name of ["evil.test", "mixed.test", "v6.test"]) {
      await assert.rejects(
        checkOutboundUrlResolved(`https://${name}/`, { allowPrivate: false, resolve }),
        (error: unknown) =>
          error instanceof ProblemError && error.status === 422 && /resolves to/.test(error.detail),
      );
    }
    assert.ok(await checkOutboundUrlResolved("https://good.test/", { allowPrivate: false, resolve }));
    // A name that does not resolve is left to fail at request time.
    assert.ok(await checkOutboundUrlResolved("https://unknown.test/", { allowPrivate: false, resolve }));
  });
});

describe("guarded fetch: literals and names (S1, S2)", () => {
  for (const host of S1_HOSTS) {
    test(`refuses http://${host}:<canary>`, async () => {
      await refused(guarded()(`http://${host}:${canary.port}/`), /is not allowed/);
    });
  }

  test("refuses localhost and LOCALHOST. without asking DNS", async () => {
    const calls: string[] = [];
    const fetch = guarded({ lookup: fixedResolver({ localhost: ["127.0.0.1"] }, calls) });
    await refused(fetch(`http://localhost:${canary.port}/`), /loopback name/);
    await refused(fetch(`http://LOCALHOST.:${canary.port}/`), /loopback name/);
    assert.deepEqual(calls, []);
  });

  test("refuses a name resolving to each private range", async () => {
    const answers: Record<string, string[]> = {};
    const ranges = ["127.0.0.1", "10.0.0.5", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1"];
    const more = ["::1", "fd00:ec2::254", "fe80::1", "::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe", "0.0.0.0"];
    [...ranges, ...more].forEach((address, i) => {
      answers[`r${i}.test`] = [address];
    });
    const fetch = guarded({ lookup: fixedResolver(answers) });
    for (const name of Object.keys(answers)) {
      await refused(fetch(`http://${name}:${canary.port}/`), /resolves to a refused address/);
    }
  });

  test("refuses a name with mixed answers before dialling any of them", async () => {
    const fetch = guarded({
      lookup: fixedResolver({
        "mixed.test": [PUBLIC_ADDRESS, "127.0.0.1"],
        "mixed6.test": [PUBLIC_ADDRESS, "::1"],
      }),
    });
    await refused(fetch(`http://mixed.test:${canary.port}/`), /127\.0\.0\.1 is a loopback address/);
    await refused(fetch(`http://mixed6.test:${canary.port}/`), /::1 is a loopback address/);
  });

  test("DNS rebinding: a public answer at check time, loopback at connect time → refused (S3)", async () => {
    let calls = 0;
    const rebinding: HostResolver = async () => {
      calls++;
      return [{ address: calls === 1 ? PUBLIC_ADDRESS : "127.0.0.1", family: 4 }];
    };
    const url = `http://rebind.test:${canary.port}/`;
    // The create-time check sees the public answer and accepts…
    assert.ok(await checkOutboundUrlResolved(url, { allowPrivate: false, resolve: rebinding }));
    // …but the connection is judged on what the resolver says when dialling.
    await refused(guarded({ lookup: rebinding })(url), /rebind\.test resolves to a refused address/);
    assert.equal(calls, 2);
  });

  test("the connector refuses literal hosts itself (undici never calls lookup for them)", async () => {
    const connect = createGuardedConnector({ allowPrivate: false, timeoutMs: 1_000 });
    for (const hostname of ["127.0.0.1", "::1", "[::1]", "::ffff:7f00:1", "0.0.0.0", "localhost"]) {
      const error = await new Promise<Error | null>((resolve) => {
        connect({ hostname, protocol: "http:", port: String(canary.port) }, (err, socket) => {
          socket?.destroy();
          resolve(err);
        });
      });
      assert.ok(error instanceof UrlRefusedError, hostname);
    }
  });

  test("a name that does not resolve fails with a clear message", async () => {
    const fetch = guarded({ lookup: fixedResolver({}) });
    await assert.rejects(fetch("http://nowhere.test/"), (error: unknown) => {
      assert.ok(error instanceof OutboundRequestError);
      assert.equal(error.message, "nowhere.test could not be resolved");
      return true;
    });
  });
});

describe("guarded fetch: allowed loopback servers", () => {
  let echo: TestServer;
  const seen: { url: string | undefined; host: string | undefined; authorization: string | undefined }[] = [];

  before(async () => {
    echo = await startHttpServer((req, res) => {
      seen.push({ url: req.url, host: req.headers.host, authorization: req.headers.authorization });
      const target = new URL(req.url ?? "/", "http://x");
      const location = target.searchParams.get("to");
      if (target.pathname === "/redirect" && location) {
        res.writeHead(Number(target.searchParams.get("status") ?? 302), { location });
        res.end();
        return;
      }
      if (target.pathname.startsWith("/loop/")) {
        const n = Number(target.pathname.slice(6));
        res.writeHead(302, { location: `/loop/${n + 1}` });
        res.end();
        return;
      }
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(`${req.method} ${req.url}`);
    });
  });
  after(() => echo.close());

  test("allowPrivate: true lets loopback through", async () => {
    const response = await guarded({ allowPrivate: true })(`${echo.origin}/hello`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "GET /hello");
  });

  test("an allowlist lets its addresses through and nothing else (S8)", async () => {
    const fetch = guarded({ allowPrivate: ["127.0.0.1/32"] });
    assert.equal(await (await fetch(`${echo.origin}/ok`)).text(), "GET /ok");
    await refused(fetch(`http://127.0.0.2:${canary.port}/`), /127\.0\.0\.2 is a loopback address/);
    await refused(fetch(`http://[::1]:${canary.port}/`));
  });

  test("follows an allowed redirect and reports the final URL", async () => {
    const fetch = guarded({ allowPrivate: ["127.0.0.1/32"] });
    const response = await fetch(`${echo.origin}/redirect?to=/final`);
    assert.equal(response.status, 200);
    assert.equal(response.redirected, true);
    assert.equal(response.url, `${echo.origin}/final`);
    assert.equal(await response.text(), "GET /final");
  });

  test("a redirect to a forbidden address is refused at the hop (S4)", async () => {
    const fetch = guarded({ allowPrivate: ["127.0.0.1/32"] });
    const targets = [
      `http://127.0.0.2:${canary.port}/`,
      `http://[::1]:${canary.port}/`,
      `http://0.0.0.0:${canary.port}/`,
      `http://2130706434:${canary.port}/`,
      "http://169.254.169.254/latest/meta-data/",
    ];
    for (const target of targets) {
      for (const status of [301, 302, 303, 307, 308]) {
        const url = `${echo.origin}/redirect?status=${status}&to=${encodeURIComponent(target)}`;
        await refused(fetch(url), /redirected to a refused URL/);
      }
    }
  });

  test("a public-looking name redirecting to loopback is refused at the hop", async () => {
    const fetch = guarded({
      allowPrivate: ["127.0.0.1/32"],
      lookup: fixedResolver({ "public.test": ["127.0.0.1"] }),
    });
    const to = encodeURIComponent(`http://127.0.0.2:${canary.port}/secret`);
    await refused(fetch(`http://public.test:${echo.port}/redirect?to=${to}`), /127\.0\.0\.2/);
  });

  test("a redirect to another scheme is an error", async () => {
    const fetch = guarded({ allowPrivate: true });
    for (const to of ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.com/"]) {
      await refused(fetch(`${echo.origin}/redirect?to=${encodeURIComponent(to)}`), /scheme/);
    }
  });

  test("more redirects than allowed is an error", async () => {
    const before = seen.length;
    const fetch = guarded({ allowPrivate: true, maxRedirects: 3 });
    await assert.rejects(fetch(`${echo.origin}/loop/0`), (error: unknown) => {
      assert.ok(error instanceof OutboundRequestError);
      assert.equal(error.reason, "too-many-redirects");
      return true;
    });
    assert.equal(seen.length - before, 4);
  });

  test("maxRedirects 0 returns the 3xx without following it", async () => {
    const before = seen.length;
    const fetch = guarded({ allowPrivate: true, maxRedirects: 0 });
    const to = encodeURIComponent(`http://127.0.0.2:${canary.port}/`);
    const response = await fetch(`${echo.origin}/redirect?to=${to}`);
    assert.equal(response.status, 302);
    await response.discard();
    assert.equal(seen.length - before, 1);
  });

  test("parser confusion: the host checked is the host dialled (S5)", async () => {
    const calls: string[] = [];
    const lookup = fixedResolver({ "evil.test": ["127.0.0.1"] }, calls);
    const strict = guarded({ lookup });
    const confusing = [
      `http://127.0.0.1:80@evil.test:${canary.port}/`,
      `http://evil.test:${canary.port}#@127.0.0.1`,
      `http://evil.test:${canary.port}\\@127.0.0.1`,
    ];
    for (const url of confusing) await refused(strict(url), /evil\.test resolves to/);
    assert.deepEqual(calls, ["evil.test", "evil.test", "evil.test"]);

    // Allowed to reach the echo server, each request goes to evil.test with the parsed path.
    const lenient = guarded({ allowPrivate: ["127.0.0.1/32"], lookup });
    seen.length = 0;
    for (const url of confusing)
      await (await lenient(url.replaceAll(String(canary.port), String(echo.port)))).text();
    assert.deepEqual(
      seen.map((s) => [s.host, s.url]),
      [
        [`evil.test:${echo.port}`, "/"],
        [`evil.test:${echo.port}`, "/"],
        [`evil.test:${echo.port}`, "/@127.0.0.1"],
      ],
    );
    // The userinfo became Basic credentials, not a host.
    assert.equal(seen[0]?.authorization, `Basic ${Buffer.from("127.0.0.1:80").toString("base64")}`);
  });

  test("credentials are not forwarded across origins on redirect", async () => {
    const other = await startHttpServer((req, res) => {
      res.end(String(req.headers.authorization ?? "none"));
    });
    try {
      const fetch = guarded({ allowPrivate: true });
      const to = encodeURIComponent(`${other.origin}/`);
      const response = await fetch(`http://user:pw@127.0.0.1:${echo.port}/redirect?to=${to}`);
      assert.equal(await response.text(), "none");
    } finally {
      await other.close();
    }
  });
});

describe("guarded fetch: size and time limits (S7)", () => {
  let server: TestServer;
  let bytesSent = 0;

  before(async () => {
    server = await startHttpServer((req, res) => {
      const path = req.url ?? "/";
      if (path === "/declared-huge") {
        res.writeHead(200, { "content-length": String(10 * 1024 * 1024 * 1024) });
        res.write(Buffer.alloc(1024));
        return; // never finishes; the client must give up on the declared size
      }
      if (path === "/endless") {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        const chunk = Buffer.alloc(16 * 1024, 1);
        const pump = () => {
          while (!res.destroyed && res.write(chunk)) bytesSent += chunk.length;
          if (!res.destroyed) res.once("drain", pump);
        };
        pump();
        return;
      }
      if (path === "/drip") {
        res.writeHead(200);
        const interval = setInterval(() => res.write("x"), 50);
        res.on("close", () => clearInterval(interval));
        return;
      }
      if (path === "/silent") return; // accepts, never answers
      res.end("ok");
    });
  });
  after(() => server.close());

  const read = async (response: { text(): Promise<string> }) => response.text();

  test("a declared size over the cap fails on the first read", async () => {
    const fetch = guarded({ allowPrivate: true, maxBytes: 1000 });
    const response = await fetch(`${server.origin}/declared-huge`);
    await assert.rejects(read(response), (error: unknown) => {
      assert.ok(error instanceof OutboundRequestError);
      assert.equal(error.reason, "too-large");
      assert.match(error.message, /larger than the limit of 1000 bytes/);
      return true;
    });
  });

  test("an endless body is cut at the cap", async () => {
    const fetch = guarded({ allowPrivate: true, maxBytes: 256 * 1024 });
    const response = await fetch(`${server.origin}/endless`);
    await assert.rejects(
      read(response),
      (e: unknown) => e instanceof OutboundRequestError && e.reason === "too-large",
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The connection was closed: the server stopped being able to send long before gigabytes.
    assert.ok(bytesSent < 16 * 1024 * 1024, `server sent ${bytesSent} bytes`);
  });

  test("a slow drip is aborted at the timeout", async () => {
    const fetch = guarded({ allowPrivate: true, timeoutMs: 400 });
    const started = Date.now();
    const response = await fetch(`${server.origin}/drip`);
    await assert.rejects(read(response), (error: unknown) => {
      assert.ok(error instanceof OutboundRequestError);
      assert.equal(error.reason, "timeout");
      assert.match(error.message, /timed out after 400 ms/);
      return true;
    });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 350 && elapsed < 1500, `took ${elapsed} ms`);
  });

  test("a server that never answers is aborted at the timeout", async () => {
    const fetch = guarded({ allowPrivate: true, timeoutMs: 300 });
    const started = Date.now();
    await assert.rejects(fetch(`${server.origin}/silent`), (e: unknown) => {
      return e instanceof OutboundRequestError && e.reason === "timeout";
    });
    assert.ok(Date.now() - started < 1500);
  });

  test("per-request limits override the factory's", async () => {
    const fetch = guarded({ allowPrivate: true, timeoutMs: 10_000 });
    await assert.rejects(fetch(`${server.origin}/silent`, { timeoutMs: 200 }), /timed out after 200 ms/);
    const response = await fetch(`${server.origin}/ok`, { maxBytes: 1 });
    await assert.rejects(read(response), /larger than the limit of 1 bytes/);
  });

  test("a caller's abort signal cancels the request", async () => {
    const fetch = guarded({ allowPrivate: true });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(fetch(`${server.origin}/silent`, { signal: controller.signal }), /was cancelled/);
  });

  test("a refused connection is a clear error", async () => {
    const closed = await startHttpServer(() => {});
    const port = closed.port;
    await closed.close();
    const fetch = guarded({ allowPrivate: true });
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`), (error: unknown) => {
      assert.ok(error instanceof OutboundRequestError);
      assert.equal(error.message, `127.0.0.1:${port} refused the connection`);
      return true;
    });
  });
});
