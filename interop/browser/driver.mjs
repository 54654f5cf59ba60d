// Drives Debian's chromium, headless, over the Chrome DevTools Protocol (chrome-remote-interface,
// pinned by ../package-lock.json; no browser download): opens each --page in turn, waits for the
// page's window.browserResults, saves a screenshot of the page, and prints one JSON document:
//   {"browser": "Chrome/...", "timingsMs": {"listening", "page1", ..., "stopped"}, "pages": [{"url", "screenshot", "results": [...], "console": [...]}]}
//
//   node driver.mjs --chromium /usr/bin/chromium --user-data-dir DIR --screenshots DIR \
//       --page URL [--page URL ...] [--timeout-ms 60000]
//
// The caller makes and removes --user-data-dir (a fresh temporary folder: chromium writes its
// profile there, and DevToolsActivePort, from which the driver learns the debugging port).
// Chromium listens for DevTools on 127.0.0.1 only, on a free port. Run as root, chromium needs
// --no-sandbox: its sandbox refuses to start for root. The pages are our own, served from
// loopback, so going without it costs nothing here. The driver stops chromium (Browser.close,
// then SIGKILL to its process group after 5 s) on every way out: done, failure, timeout
// (--timeout-ms for the whole run), SIGTERM and SIGINT.
// Exit codes: 0 with the JSON printed (failed calls are data), 1 on a failure, 2 on usage errors.
import CDP from "chrome-remote-interface";
import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

function usage(message) {
  process.stderr.write(`driver.mjs: ${message}\n`);
  process.exit(2);
}

const options = { pages: [], timeoutMs: 60_000 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const value = argv[i + 1];
  if (value === undefined) {
    usage(`${argv[i]} needs a value`);
  }
  switch (argv[i++]) {
    case "--chromium": options.chromium = value; break;
    case "--user-data-dir": options.userDataDir = value; break;
    case "--screenshots": options.screenshots = value; break;
    case "--page": options.pages.push(value); break;
    case "--timeout-ms": options.timeoutMs = Number(value); break;
    default: usage(`unknown option ${argv[i - 1]}`);
  }
}
if (!options.chromium || !options.userDataDir || !options.screenshots || options.pages.length === 0) {
  usage("--chromium, --user-data-dir, --screenshots and at least one --page are required");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let chromium;
let chromiumExited;
let cdp;

function launch() {
  const args = [
    "--headless",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    `--user-data-dir=${options.userDataDir}`,
    "--window-size=1280,900",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-pings",
    // Nothing but the test's own loopback traffic: no updates, sync, safe browsing or metrics.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-features=Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions",
    ...(process.getuid?.() === 0 ? ["--no-sandbox"] : []),
    "about:blank",
  ];
  // Its own process group, so that the renderers and helpers go with it when it is killed.
  chromium = spawn(options.chromium, args, { detached: true, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  chromium.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  chromiumExited = new Promise((resolve) => chromium.on("exit", (code, signal) => resolve({ code, signal, stderr })));
  chromium.on("error", (e) => fail(`cannot start ${options.chromium}: ${e.message}`));
}

async function debuggingPort() {
  const file = join(options.userDataDir, "DevToolsActivePort");
  for (let i = 0; i < 300; i++) {
    if (chromium.exitCode !== null) {
      const { code, signal, stderr } = await chromiumExited;
      throw new Error(`chromium exited (${code ?? signal}) before it listened: ${stderr}`);
    }
    try {
      const port = Number((await readFile(file, "utf8")).split("\n")[0]);
      if (port > 0) {
        return port;
      }
    } catch {
      // Not written yet.
    }
    await sleep(50);
  }
  throw new Error("chromium did not write DevToolsActivePort within 15 s");
}

async function stopChromium() {
  if (!chromium || chromium.exitCode !== null || chromium.signalCode !== null) {
    return;
  }
  try {
    await Promise.race([cdp?.Browser.close(), sleep(2000)]);
  } catch {
    // Already going.
  }
  await cdp?.close().catch(() => {});
  const exited = await Promise.race([chromiumExited.then(() => true), sleep(5000).then(() => false)]);
  if (!exited) {
    try {
      process.kill(-chromium.pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
    await Promise.race([chromiumExited, sleep(5000)]);
  }
}

let failing = false;
async function fail(message) {
  if (failing) {
    return;
  }
  failing = true;
  process.stderr.write(`driver.mjs: ${message}\n`);
  await stopChromium();
  process.exit(1);
}

process.on("SIGTERM", () => fail("stopped by SIGTERM"));
process.on("SIGINT", () => fail("stopped by SIGINT"));
const deadline = setTimeout(() => fail(`the run took longer than ${options.timeoutMs} ms`), options.timeoutMs);

async function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function runPage(url, index, consoleLines) {
  consoleLines.length = 0;
  const loaded = cdp.Page.loadEventFired();
  const { errorText } = await cdp.Page.navigate({ url });
  if (errorText) {
    throw new Error(`cannot open ${url}: ${errorText}`);
  }
  await within(loaded, 15_000, `loading ${url}`);
  // The page publishes its results as a promise; wait (bounded) for it, then take them by value.
  const { result, exceptionDetails } = await within(cdp.Runtime.evaluate({
    expression: `(async () => {
      for (let i = 0; i < 500 && !window.browserResults; i++) await new Promise(r => setTimeout(r, 20));
      return JSON.stringify(await window.browserResults);
    })()`,
    awaitPromise: true,
    returnByValue: true,
  }), 30_000, `the cases of ${url}`);
  const shot = join(options.screenshots, `page-${index + 1}.png`);
  const { data } = await within(cdp.Page.captureScreenshot({ format: "png" }), 10_000, "a screenshot");
  await writeFile(shot, Buffer.from(data, "base64"));
  if (exceptionDetails) {
    throw new Error(`${url} failed: ${exceptionDetails.exception?.description ?? exceptionDetails.text}\n${consoleLines.join("\n")}`);
  }
  return { url, screenshot: shot, results: JSON.parse(result.value), console: [...consoleLines] };
}

const started = performance.now();
const timings = {};
const mark = (name) => {
  timings[name] = Math.round(performance.now() - started);
};

try {
  launch();
  const port = await debuggingPort();
  mark("listening");
  cdp = await within(CDP({ host: "127.0.0.1", port }), 10_000, "connecting to chromium");
  const consoleLines = [];
  cdp.Runtime.consoleAPICalled(({ type, args }) => consoleLines.push(`${type}: ${args.map((a) => a.value ?? a.description).join(" ")}`));
  cdp.Runtime.exceptionThrown(({ exceptionDetails }) => consoleLines.push(`exception: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`));
  cdp.Log.entryAdded(({ entry }) => consoleLines.push(`${entry.level}: ${entry.text}`));
  await Promise.all([cdp.Page.enable(), cdp.Runtime.enable(), cdp.Log.enable()]);
  const { product } = await cdp.Browser.getVersion();
  const pages = [];
  for (const [index, url] of options.pages.entries()) {
    pages.push(await runPage(url, index, consoleLines));
    mark(`page${index + 1}`);
  }
  await stopChromium();
  mark("stopped");
  clearTimeout(deadline);
  // Exit once written: nothing of chromium's may hold the event loop (its stderr pipe) open.
  process.stdout.write(JSON.stringify({ browser: product, timingsMs: timings, pages }) + "\n", () => process.exit(0));
} catch (e) {
  await fail(e.stack ?? String(e));
}
