// The cookie banner in a real browser: Debian's Chromium, driven by Playwright (no browser of
// its own), with axe-core for accessibility. Called by the integration test
// `tests/integration/banner.rs`, one step at a time, with the profile carried between steps:
//
//   node tools/browser/banner.mjs STEP
//
// and the environment: PAGE (the provider's page that embeds the banner), PROFILE (a browser
// profile directory, kept between steps of one visitor), OUT (where screenshots and downloads
// go), GPC=1 (the browser sends Global Privacy Control). It prints one line of JSON with what
// the test checks on Steward's side (the device id), and exits 1 naming the first thing that
// did not hold.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { axe as axeOn, check, launch } from "./kit.mjs";

const step = process.argv[2];
const { PAGE, PROFILE, OUT } = process.env;
const GPC = process.env.GPC === "1";
mkdirSync(OUT, { recursive: true });

const context = await launch(PROFILE, {
  acceptDownloads: true,
  extraHTTPHeaders: GPC ? { "Sec-GPC": "1" } : {},
});
if (GPC) {
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true });
  });
}
const page = context.pages()[0] || (await context.newPage());
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));

async function axe(what) {
  await axeOn(page, what);
}

async function shot(name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: false });
}

async function cookies() {
  return Object.fromEntries((await context.cookies()).map((c) => [c.name, c.value]));
}

const bar = page.locator("section.stw-bar");
const dialog = page.locator("dialog.stw-dlg");

async function load() {
  await page.goto(PAGE);
  await page.waitForFunction(() => window.Steward && window.Steward.state());
}

// Presses Tab until the focused element matches `selector` (a keyboard user's way there).
async function tabTo(selector, limit = 30) {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((s) => document.activeElement && document.activeElement.matches(s), selector)) return;
  }
  throw new Error(`the keyboard never reached ${selector}`);
}

async function focusIn(locator) {
  return locator.evaluate((el) => el.contains(document.activeElement));
}

const report = {};
try {
  if (step === "first") {
    // A new visitor: the first layer, focus in it, nothing held back has run.
    await load();
    await bar.waitFor({ state: "visible" });
    const lang = await bar.getAttribute("lang");
    report.lang = lang;
    check(await bar.getAttribute("role") === "dialog", "the first layer is not a dialog");
    const name = await page.locator("#stw-title").textContent();
    check(name && name.length > 0, "the first layer has no label");
    check(await focusIn(bar), "focus did not move into the first layer");
    check(await page.evaluate(() => window.analyticsRan === undefined), "an analytics script ran before consent");
    // Accept and refuse are equally easy: the same size, side by side.
    const boxes = await Promise.all(
      ["accept", "refuse", "settings"].map((a) => bar.locator(`[data-act=${a}]`).boundingBox())
    );
    check(Math.abs(boxes[0].width - boxes[1].width) < 1 && boxes[0].height === boxes[1].height,
      `accept (${boxes[0].width}x${boxes[0].height}) and refuse (${boxes[1].width}x${boxes[1].height}) differ in size`);
    check(Math.abs(boxes[0].y - boxes[1].y) < 1, "accept and refuse are not on one level");
    for (const b of boxes) check(b.width >= 24 && b.height >= 24, "a button is smaller than 24x24 CSS px");
    await axe(`the first layer (${lang})`);
    await shot(`banner-first-layer-${lang}`);
    // Reflow at 320 CSS px: nothing scrolls sideways, every button stays on screen.
    await page.setViewportSize({ width: 320, height: 640 });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 320, `at 320 px the page scrolls sideways (${wide} px)`);
    for (const a of ["accept", "refuse", "settings"]) {
      const b = await bar.locator(`[data-act=${a}]`).boundingBox();
      check(b.x >= 0 && b.x + b.width <= 320, `at 320 px the ${a} button is cut off`);
    }
    await shot(`banner-first-layer-${lang}-320px`);
    await page.setViewportSize({ width: 1024, height: 768 });
    // The page's own focused element is never hidden behind the bar (WCAG 2.4.11).
    await page.locator("#buy").focus();
    const buy = await page.locator("#buy").boundingBox();
    const top = (await bar.boundingBox()).y;
    check(buy.y + buy.height <= top + 1, "the bar hides the focused element of the page");
    // By keyboard alone: into the bar, to the settings, switch analytics on, save.
    await bar.focus();
    await tabTo("section.stw-bar [data-act=settings]");
    await page.keyboard.press("Enter");
    await dialog.waitFor({ state: "visible" });
    check(await focusIn(dialog), "focus did not move into the settings");
    check(await dialog.evaluate((d) => d.open && d.matches(":modal")), "the settings are not a modal dialog");
    const switches = dialog.locator("input[role=switch]");
    const count = await switches.count();
    for (let i = 0; i < count; i++) {
      const id = await switches.nth(i).getAttribute("id");
      const label = await page.locator(`label[for=${id}]`).textContent();
      check(label && label.trim().length > 0, "a switch has no label");
    }
    await axe(`the settings (${lang})`);
    await shot(`banner-settings-${lang}`);
    await tabTo("dialog input[data-purpose=service_improvement]");
    await page.keyboard.press("Space");
    check(await page.locator("dialog input[data-purpose=service_improvement]").isChecked(), "Space did not turn the switch on");
    await tabTo("dialog [data-act=save]");
    await page.keyboard.press("Enter");
    await dialog.waitFor({ state: "detached" });
    await bar.waitFor({ state: "detached" });
    await page.waitForFunction(() => window.analyticsRan === 1);
    check(await page.evaluate(() => window.prefsRan === undefined), "a refused purpose's script ran");
    const jar = await cookies();
    check(jar.analytics_id === "a1", "the consented script's cookie is not set");
    check(!("prefs" in jar), "a cookie of an undecided purpose is set");
    report.device = jar.steward_device;
  } else if (step === "withdraw") {
    // A returning visitor: no banner, the consented script runs at once.
    await load();
    await page.waitForFunction(() => window.analyticsRan === 1);
    check(await bar.count() === 0, "the banner asked a visitor who had chosen");
    // The settings link reopens them; Escape closes them and focus goes back to the link.
    await tabTo("[data-steward-settings]");
    await page.keyboard.press("Enter");
    await dialog.waitFor({ state: "visible" });
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    check(await page.evaluate(() => document.activeElement.matches("[data-steward-settings]")),
      "focus did not go back to the settings link");
    // Withdraw analytics: its cookie is deleted.
    await page.locator("[data-steward-settings]").click();
    await dialog.waitFor({ state: "visible" });
    await dialog.locator("input[data-purpose=service_improvement]").uncheck();
    await dialog.locator("[data-act=save]").click();
    await dialog.waitFor({ state: "detached" });
    await page.waitForFunction(() => !document.cookie.includes("analytics_id="));
    // The receipts download from the settings.
    await page.locator("[data-steward-settings]").click();
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      dialog.locator("[data-act=receipts]").click(),
    ]);
    const path = join(OUT, "consent-receipts.json");
    await download.saveAs(path);
    report.receipts = path;
    report.device = (await cookies()).steward_device;
  } else if (step === "reprompt") {
    await load();
    await bar.waitFor({ state: "visible" });
    check(await bar.locator(".stw-note").count() === 1, "the re-prompt does not say the policy changed");
    await axe("the re-prompt");
    report.device = (await cookies()).steward_device;
  } else if (step === "refuse") {
    await load();
    await bar.waitFor({ state: "visible" });
    report.lang = await bar.getAttribute("lang");
    check(await page.evaluate(() => document.documentElement.lang) === report.lang, "the banner's language is not the page's");
    await axe(`the first layer (${report.lang})`);
    await shot(`banner-first-layer-${report.lang}`);
    await bar.locator("[data-act=settings]").click();
    await dialog.waitFor({ state: "visible" });
    await axe(`the settings (${report.lang})`);
    await shot(`banner-settings-${report.lang}`);
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    await bar.locator("[data-act=refuse]").click();
    await bar.waitFor({ state: "detached" });
    await page.reload();
    await page.waitForFunction(() => window.Steward && window.Steward.state());
    check(await bar.count() === 0, "the banner asked again after refuse all");
    const jar = await cookies();
    const names = Object.keys(jar).sort();
    check(names.length === 1 && names[0] === "steward_device", `refuse all left non-essential cookies: ${names}`);
    check(await page.evaluate(() => window.analyticsRan === undefined && window.prefsRan === undefined), "a script ran after refuse all");
    report.device = jar.steward_device;
  } else if (step === "gpc") {
    // Global Privacy Control: refused at once, said so once, never asked.
    await load();
    await bar.waitFor({ state: "visible" });
    check(await bar.locator("[data-act=accept]").count() === 0, "under GPC the banner asked to accept");
    check(await bar.locator(".stw-note").count() === 1, "the banner did not say GPC was honoured");
    await axe("the GPC notice");
    await shot("banner-gpc");
    await bar.locator("[data-act=ok]").click();
    await page.reload();
    await page.waitForFunction(() => window.Steward && window.Steward.state());
    check(await bar.count() === 0, "the GPC notice came back");
    check(await page.evaluate(() => window.analyticsRan === undefined && window.prefsRan === undefined), "a script ran under GPC");
    const jar = await cookies();
    check(Object.keys(jar).join() === "steward_device", "a non-essential cookie was set under GPC");
    report.device = jar.steward_device;
  } else {
    throw new Error(`no step ${step}`);
  }
  check(errors.length === 0, `the page threw: ${errors.join("; ")}`);
  console.log(JSON.stringify(report));
  await context.close();
} catch (e) {
  try {
    await shot(`failed-${step}`);
  } catch (_) {
    // The screenshot is a help, not the finding.
  }
  await context.close();
  console.error(`${step}: ${e.message}`);
  process.exit(1);
}
