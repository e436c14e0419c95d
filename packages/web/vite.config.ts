import { defineConfig } from "vite";

// Preact through esbuild's automatic JSX runtime: no Babel plugin needed for a production build.
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  resolve: { alias: { react: "preact/compat", "react-dom": "preact/compat" } },
  build: {
    outDir: "dist-web",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    // Everything is served by the Replicant server itself: no CDN, no inline scripts (the CSP forbids them).
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  server: { proxy: { "/v1": "http://127.0.0.1:5000", "/replicant": "http://127.0.0.1:5000" } },
});
