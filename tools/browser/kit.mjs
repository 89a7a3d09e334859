// What the browser tests share: Debian's Chromium launched as this machine needs it, and
// axe-core run on a page with the WCAG 2.0–2.2 A/AA rules and best practices.
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = require.resolve("axe-core/axe.min.js");

/** Throws `what` unless `ok`. */
export function check(ok, what) {
  if (!ok) throw new Error(what);
}

/** A persistent context on `profile` (a fresh directory per visitor), with `options` added. */
export function launch(profile, options) {
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // Without the networking flags Chromium's own connections are refused by the closed
    // network, many at a time.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
    viewport: { width: 1024, height: 768 },
    ...options,
  });
}

/** axe-core on `page`: fails naming `what` and every violation. */
export async function axe(page, what) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(() =>
    window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] },
    })
  );
  const found = result.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`
  );
  check(found.length === 0, `axe-core found violations on ${what}: ${found.join("; ")}`);
}
