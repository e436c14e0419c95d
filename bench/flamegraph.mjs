// Renders a V8 .cpuprofile (node --cpu-prof) as a flame graph: SVG, and PNG through sharp when the
// output name ends in .png. Also prints the heaviest call paths' inclusive times.
// Usage: node bench/flamegraph.mjs profile.cpuprofile out.svg|out.png [--focus=<function name>] [--title=…]
import { readFileSync, writeFileSync } from "node:fs";

const [input, output = "flame.svg", ...flags] = process.argv.slice(2);
if (!input) {
  console.error(
    "usage: node bench/flamegraph.mjs <profile.cpuprofile> <out.svg|out.png> [--focus=fn] [--title=text]",
  );
  process.exit(2);
}
const flag = (name) => flags.find((f) => f.startsWith(`--${name}=`))?.slice(name.length + 3);
const focus = flag("focus");
const title = flag("title") ?? `CPU profile: ${input.split("/").pop()}`;

const profile = JSON.parse(readFileSync(input, "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, { ...n, self: 0, total: 0, kids: [] }]));
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i]);
  if (node) node.self += profile.timeDeltas[i] ?? 0;
}
for (const node of byId.values()) for (const child of node.children ?? []) byId.get(child).parent = node;
const root = byId.get(profile.nodes[0].id);

function label(node) {
  const f = node.callFrame;
  const name = f.functionName || "(anonymous)";
  if (!f.url) return name;
  const file = f.url
    .replace(/^file:\/\//, "")
    .replace(/^.*node_modules\//, "")
    .replace(/^.*\/packages\//, "")
    .replace(/\/dist\/src\//, "/");
  return `${name} ${file}:${f.lineNumber + 1}`;
}

/** Merges children with the same frame (V8 already does per path; this keeps it robust). */
function build(node) {
  const merged = new Map();
  for (const id of node.children ?? []) {
    const child = byId.get(id);
    const key = label(child);
    const entry = merged.get(key);
    if (entry) {
      entry.self += child.self;
      entry.sources.push(child);
    } else merged.set(key, { key, self: child.self, sources: [child], kids: [], total: 0 });
  }
  const out = { key: label(node), self: node.self, kids: [], total: 0 };
  return out;
}

function tree(nodes, key) {
  const t = { key, self: 0, kids: [], total: 0 };
  const groups = new Map();
  for (const n of nodes) {
    t.self += n.self;
    for (const id of n.children ?? []) {
      const c = byId.get(id);
      const k = label(c);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(c);
    }
  }
  for (const [k, group] of groups) t.kids.push(tree(group, k));
  t.total = t.self + t.kids.reduce((s, c) => s + c.total, 0);
  t.kids.sort((a, b) => b.total - a.total);
  return t;
}
void build;

let top = tree([root], "all");
// Idle and program time are not the server's work: drop them from the picture.
top.kids = top.kids.filter((k) => !/^\((idle|program)\)/.test(k.key));
top.total = top.kids.reduce((s, c) => s + c.total, 0) + top.self;
if (focus) {
  const found = [];
  const walk = (t) => {
    if (t.key.startsWith(`${focus} `) || t.key === focus) found.push(t);
    else t.kids.forEach(walk);
  };
  walk(top);
  top = { key: `${focus} (all call sites)`, self: 0, kids: found.flatMap((f) => f.kids), total: 0 };
  top.self = found.reduce((s, f) => s + f.self, 0);
  top.total = found.reduce((s, f) => s + f.total, 0);
}

const WIDTH = 1600;
const ROW = 17;
const MIN_PX = 0.4;
let depthMax = 0;
const rects = [];
const MAX_DEPTH = Number(flag("depth") ?? 48);
function layout(t, x, depth) {
  const w = (t.total / top.total) * WIDTH;
  if (w < MIN_PX || depth > MAX_DEPTH) return;
  depthMax = Math.max(depthMax, depth);
  rects.push({ x, w, depth, t });
  let cx = x;
  for (const k of t.kids) {
    layout(k, cx, depth + 1);
    cx += (k.total / top.total) * WIDTH;
  }
}
layout(top, 0, 0);

function color(key) {
  if (key.includes("node:")) return [206, 160, 90];
  if (/fastify|find-my-way|avvio|light-my-request/.test(key)) return [120, 170, 215];
  if (/better-sqlite3|kysely|backends\//.test(key)) return [130, 190, 120];
  if (/^server\/|^runtime\/|server\/|runtime\//.test(key)) return [230, 120, 90];
  if (key.startsWith("(garbage")) return [170, 170, 170];
  return [225, 190, 110];
}
const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const HEAD = 40;
const height = HEAD + (depthMax + 1) * ROW + 10;
const parts = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="DejaVu Sans Mono, monospace" font-size="11">`,
  `<rect width="100%" height="100%" fill="#fdfdf8"/>`,
  `<text x="8" y="18" font-size="15">${esc(title)}</text>`,
  `<text x="8" y="34" font-size="11" fill="#555">width = share of CPU samples (idle excluded); bottom-up from the event loop; green: SQLite store, blue: Fastify, orange: Replicant, tan: Node internals</text>`,
];
for (const { x, w, depth, t } of rects) {
  const y = height - 10 - (depth + 1) * ROW;
  const [r, g, b] = color(t.key);
  const pct = ((100 * t.total) / top.total).toFixed(1);
  parts.push(
    `<g><title>${esc(t.key)} — ${pct} %</title><rect x="${x.toFixed(2)}" y="${y}" width="${Math.max(0.5, w - 0.5).toFixed(2)}" height="${ROW - 1}" fill="rgb(${r},${g},${b})"/>`,
  );
  const chars = Math.floor((w - 6) / 6.6);
  if (chars >= 4) {
    const text = `${t.key} ${pct}%`;
    parts.push(
      `<text x="${(x + 3).toFixed(2)}" y="${y + 12}">${esc(text.length > chars ? `${text.slice(0, chars - 1)}…` : text)}</text>`,
    );
  }
  parts.push("</g>");
}
parts.push("</svg>");
const svg = parts.join("\n");
if (output.endsWith(".png")) {
  const { default: sharp } = await import("sharp");
  await sharp(Buffer.from(svg)).png().toFile(output);
} else writeFileSync(output, svg);

// Heaviest frames by inclusive time.
const inclusive = new Map();
const walk = (t, seen) => {
  if (!seen.has(t.key)) inclusive.set(t.key, (inclusive.get(t.key) ?? 0) + t.total);
  const next = new Set(seen).add(t.key);
  for (const k of t.kids) walk(k, next);
};
walk(top, new Set());
const rows = [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 30));
for (const [key, t] of rows) console.log(`${((100 * t) / top.total).toFixed(1).padStart(5)} %  ${key}`);
