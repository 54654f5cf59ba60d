// Bundles page.mjs with esbuild (pinned by ../package-lock.json) into dist/page.js, and copies
// index.html beside it: dist/ is what the browser test serves. Needs ../gen (make interop).
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
await mkdir(dist, { recursive: true });
await build({
  entryPoints: [join(here, "page.mjs")],
  outfile: join(dist, "page.js"),
  bundle: true,
  format: "esm",
  target: "es2022",
  logLevel: "warning",
});
await copyFile(join(here, "index.html"), join(dist, "index.html"));
