// The privacy centre in a real browser (Debian's Chromium through Playwright, axe-core for
// accessibility). Called by `tests/integration/centre.rs`:
//
//   node tools/browser/centre.mjs
//
// with the environment: BASE (Steward), EMAIL (a subject's address), CODE_FILE (where the test
// writes the code it read from the SMTP sink), OUT (screenshots), PROFILE (a fresh browser
// profile). A subject signs in by keyboard alone, pasting the emailed code, sees what is held,
// switches language, signs out; a form posted from another site is refused; axe-core finds no
// violation on any page in either language. Prints one line of JSON; exits 1 naming the first
// thing that did not hold.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { axe as axeOn, check, launch } from "./kit.mjs";

const { BASE, EMAIL, CODE_FILE, OUT, PROFILE } = process.env;
mkdirSync(OUT, { recursive: true });

const context = await launch(PROFILE, {
  locale: "zh-CN",
  // The pages' CSP forbids every script, axe-core's too: the test checks the header itself
  // and lets axe-core in.
  bypassCSP: true,
});
let page = context.pages()[0] || (await context.newPage());
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));

async function axe(what) {
  await axeOn(page, what);
}

async function shot(name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}

async function tabTo(selector, limit = 30) {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((s) => document.activeElement && document.activeElement.matches(s), selector)) return;
  }
  throw new Error(`the keyboard never reached ${selector}`);
}

async function waitForCode() {
  for (let i = 0; i < 200; i++) {
    if (existsSync(CODE_FILE)) return readFileSync(CODE_FILE, "utf8").trim();
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("no code arrived");
}

const report = {};
try {
  // Sign-in, in Chinese (the browser's language), by keyboard alone.
  const first = await page.goto(`${BASE}/privacy`);
  const csp = first.headers()["content-security-policy"] || "";
  check(csp.includes("default-src 'none'") && csp.includes("frame-ancestors 'none'"), `weak CSP: ${csp}`);
  check(first.headers()["cache-control"] === "no-store", "a page may be cached");
  check(await page.evaluate(() => document.documentElement.lang) === "zh-CN", "the page is not in Chinese");
  await axe("the sign-in page (zh-CN)");
  await shot("centre-sign-in-zh-CN");
  await tabTo("#email");
  await page.keyboard.type(EMAIL);
  await page.keyboard.press("Enter");
  await page.waitForSelector("#code");
  check(!page.url().includes(EMAIL) && !page.url().includes("@"), "the address is in the URL");
  await axe("the code page (zh-CN)");
  await shot("centre-code-zh-CN");
  // The code is pasted, not typed (WCAG 3.3.8).
  const code = await waitForCode();
  await page.locator("#code").focus();
  await page.keyboard.insertText(code);
  await page.keyboard.press("Enter");
  await page.waitForURL(`${BASE}/privacy/data`);
  const jar = await context.cookies();
  const session = jar.find((c) => c.name === "steward_session");
  check(session && session.httpOnly && session.sameSite === "Strict", "the session cookie is not HttpOnly and SameSite=Strict");
  check(await page.locator("h1").count() === 1, "the data page has no single heading");
  const text = await page.locator("main").innerText();
  check(text.includes(EMAIL), "the subject's own address is not shown");
  check(text.includes("电子邮箱"), "the categories are not in Chinese");
  await axe("the data page (zh-CN)");
  await shot("centre-data-zh-CN");
  // The copy to keep.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.locator('a[href="/privacy/export.json"]').click(),
  ]);
  const copy = join(OUT, "centre-export.json");
  await download.saveAs(copy);
  const kept = JSON.parse(readFileSync(copy, "utf8"));
  check(kept.records.some((r) => r.value === EMAIL), "the downloaded copy lacks the subject's address");
  // Consent: give one, then withdraw it; each saved and said.
  await page.locator('a[href="/privacy/consents"]').click();
  await page.waitForURL(`${BASE}/privacy/consents`);
  await axe("the consents page (zh-CN)");
  const offers = page.locator("section", { has: page.locator("input[value='purpose:relevant_offers']") });
  await offers.locator("button").click();
  await page.waitForSelector(".notice");
  await page.locator("section", { has: page.locator("input[value='purpose:relevant_offers']") }).locator("button").click();
  await page.waitForSelector(".notice");
  const after = await page.locator("section", { has: page.locator("input[value='purpose:relevant_offers']") }).innerText();
  check(after.includes("撤回"), `the withdrawal is not shown: ${after}`);
  await shot("centre-consents-zh-CN");
  // A request: the deletion of the phone number only, with a note; then listed with its
  // deadline (staff also opened an access request for the subject, still to be verified).
  await page.locator('a[href="/privacy/requests"]').click();
  await page.waitForURL(`${BASE}/privacy/requests`);
  await axe("the requests page (zh-CN)");
  await page.locator("#kind-deletion").check();
  await page.locator("#some-phone").check();
  await page.locator("#text").fill("请删除我的电话号码");
  await page.locator("form[action='/privacy/requests'] button").click();
  await page.waitForSelector(".notice");
  const listed = await page.locator(".requests").innerText();
  check(listed.includes("删除您的信息") && listed.includes("已核验身份") && listed.includes("仅限：电话号码"), `the request is not listed: ${listed}`);
  await axe("the requests page with a request (zh-CN)");
  await shot("centre-requests-zh-CN");
  // The statement, and the version announced: accepted.
  await page.locator('a[href="/privacy/statement"]').click();
  await page.waitForURL(`${BASE}/privacy/statement`);
  check((await page.locator("main").innerText()).includes("我们收集哪些信息"), "the statement is not shown in Chinese");
  await axe("the statement (zh-CN)");
  await page.locator("form[action='/privacy/statement'] button").click();
  await page.waitForSelector(".notice");
  check((await page.locator(".notice").innerText()).includes("2026.2"), "the acceptance is not said");
  await shot("centre-statement-zh-CN");
  // Staff work the queue in the console (same browser, its own cookie path): both requests are
  // there, due in 30 days; they complete the deletion, and take the access request from
  // received to refused, with a reason.
  const staff = await context.newPage();
  await staff.goto(`${BASE}/console`);
  const onStaff = page;
  const use = async (p) => {
    page = p;
  };
  await use(staff);
  await axe("the console sign-in (zh-CN)");
  await staff.locator("#username").fill(process.env.STAFF_USER);
  await staff.locator("#password").fill(process.env.STAFF_PASS);
  await staff.locator("form[action='/console/session'] button").click();
  await staff.waitForURL(`${BASE}/console/queue`);
  check(await staff.locator("svg[role=img] title").count() === 1, "the queue has no chart");
  const rows = await staff.locator("tbody tr").count();
  check(rows === 2, `the queue lists ${rows} requests`);
  await axe("the queue (zh-CN)");
  await shot("console-queue-zh-CN");
  // The deadline board holds the request's clock too.
  await staff.locator('a[href="/console/deadlines"]').click();
  await staff.waitForURL(`${BASE}/console/deadlines`);
  check(await staff.locator("tbody tr").count() >= 1, "the deadline board is empty");
  await axe("the deadline board (zh-CN)");
  await shot("console-deadlines-zh-CN");
  await staff.locator('a[href="/console/queue"]').click();
  await staff.locator("tbody tr", { hasText: "删除您的信息" }).locator("a").click();
  await staff.waitForSelector("form[action$='/complete']");
  await axe("a deletion request (zh-CN)");
  await staff.locator("#justification").fill("主体本人的删除请求");
  await staff.locator("form[action$='/complete'] button").click();
  await staff.waitForSelector(".notice");
  check((await staff.locator(".facts").innerText()).includes("已完成"), "the deletion was not completed");
  await staff.locator('a[href="/console/queue"]').first().click();
  await staff.locator("tbody tr", { hasText: "获取您的信息副本" }).locator("a").click();
  await staff.waitForSelector("form[action$='/verify']");
  check((await staff.locator(".facts").innerText()).includes("已收到"), "the access request is not at received");
  await axe("a request to verify (zh-CN)");
  await staff.locator("#method").selectOption("documents");
  await staff.locator("form[action$='/verify'] button").click();
  await staff.waitForSelector("form[action$='/refuse']");
  await staff.locator("#reason").selectOption("legal_obligation");
  await staff.locator("#refuse-note").fill("税务记录须保存十年");
  await staff.locator("form[action$='/refuse'] button").click();
  await staff.waitForSelector(".notice");
  await shot("console-request-zh-CN");
  await staff.locator('a[href="/console/incidents"]').click();
  await staff.waitForURL(`${BASE}/console/incidents`);
  await axe("the incidents page (zh-CN)");
  // The incident run from here: contained, and its initial report recorded as filed.
  await staff.locator("#kind-1").selectOption("contained");
  await staff.locator("#text-1").fill("存储桶已设为私有");
  await staff.locator("form[action$='/step'] button").click();
  await staff.waitForSelector(".notice");
  check((await staff.locator("section.card").innerText()).includes("已控制"), "the incident was not contained");
  await staff.locator("#part-1").selectOption("initial");
  await staff.locator("form[action$='/report'] button").click();
  await staff.waitForSelector(".notice");
  check((await staff.locator("section.card ol").innerText()).includes("已提交报告"), "the report was not recorded");
  await axe("an incident run from the console (zh-CN)");
  await shot("console-incidents-zh-CN");
  for (const [path, name] of [["/console/versions", "versions"], ["/console/outbox", "outbox"], ["/console/disclosures", "disclosures"]]) {
    await staff.locator(`a[href="${path}"]`).click();
    await staff.waitForURL(`${BASE}${path}`);
    await axe(`the ${name} page (zh-CN)`);
    await shot(`console-${name}-zh-CN`);
  }
  // The audit log, verified from the console.
  await staff.locator('a[href="/console/audit"]').click();
  await staff.waitForURL(`${BASE}/console/audit`);
  await axe("the audit page (zh-CN)");
  await staff.locator("form[action='/console/audit'] button").click();
  await staff.waitForSelector(".notice");
  check((await staff.locator(".notice").innerText()).includes("校验通过"), "the log did not verify from the console");
  await shot("console-audit-zh-CN");
  // A legal hold on the subject's phone number, placed, shown, lifted.
  await staff.locator('a[href="/console/holds"]').click();
  await staff.waitForURL(`${BASE}/console/holds`);
  await axe("the holds page (zh-CN)");
  await staff.locator("#place-subject").fill(process.env.SUBJECT);
  await staff.locator("#cat-phone").check();
  await staff.locator("#hold-reason").selectOption("dispute");
  await staff.locator("#reference").fill("(2026)京0105民初1234号");
  await staff.locator("#until").fill("2026-12-31");
  await staff.locator("form:has(input[value=place]) button[type=submit]").click();
  await staff.waitForSelector(".notice");
  check((await staff.locator("ul.requests").innerText()).includes("电话号码"), "the hold is not listed");
  await axe("the holds page with a hold (zh-CN)");
  await shot("console-holds-zh-CN");
  await staff.locator("form:has(input[value=lift]) button").click();
  await staff.waitForSelector(".notice");
  check((await staff.locator("ul.requests").innerText()).includes("解除"), "the hold was not lifted");
  await staff.locator("form[action='/console/sign-out'] button").click();
  await staff.waitForURL(`${BASE}/console`);
  // A role without `requests.manage` is told so and shown nothing.
  await staff.locator("#username").fill(process.env.OTHER_USER);
  await staff.locator("#password").fill(process.env.STAFF_PASS);
  await staff.locator("form[action='/console/session'] button").click();
  await staff.waitForURL(`${BASE}/console/queue`);
  check(await staff.locator("tbody tr").count() === 0, "a role without requests.manage saw the queue");
  check((await staff.locator("main").innerText()).includes("您的角色不能进行此操作"), "the refusal is not said");
  await axe("a page the role may not see (zh-CN)");
  await staff.locator("form[action='/console/sign-out'] button").click();
  await staff.waitForURL(`${BASE}/console`);
  await staff.close();
  await use(onStaff);
  // The subject sees the deletion completed, and the refusal with its reason.
  await page.goto(`${BASE}/privacy/requests`);
  const refusedText = await page.locator(".requests").innerText();
  check(refusedText.includes("已完成"), `the completion is not shown to the subject: ${refusedText}`);
  check(refusedText.includes("已拒绝") && refusedText.includes("法律要求我们保留或处理这些信息"), `the refusal is not shown to the subject: ${refusedText}`);
  check(!(await page.locator("main").innerText()).includes("+86 135"), "the deleted phone number is still listed");
  await page.locator('a[href="/privacy/data"]').click();
  await page.waitForURL(`${BASE}/privacy/data`);
  // 320 px: nothing scrolls sideways.
  await page.setViewportSize({ width: 320, height: 640 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 320, `at 320 px the page scrolls sideways (${wide} px)`);
  await page.setViewportSize({ width: 1024, height: 768 });
  // The switch: English, kept.
  await page.locator('a[hreflang="en"]').click();
  await page.waitForURL(`${BASE}/privacy/data`);
  check(await page.evaluate(() => document.documentElement.lang) === "en", "the switch did not change the language");
  check((await page.locator("main").innerText()).includes("Email address"), "the categories are not in English");
  await axe("the data page (en)");
  await shot("centre-data-en");
  // Every other page of the centre in English too.
  for (const [path, name] of [
    ["/privacy/consents", "consents"],
    ["/privacy/requests", "requests"],
    ["/privacy/statement", "statement"],
  ]) {
    await page.goto(`${BASE}${path}`);
    check(await page.evaluate(() => document.documentElement.lang) === "en", `${path} is not in English`);
    await axe(`the ${name} page (en)`);
    await shot(`centre-${name}-en`);
  }
  // And the console's, in English, signed in again as the officer.
  const again = await context.newPage();
  await use(again);
  await again.goto(`${BASE}/console?lang=en`);
  await again.waitForURL(`${BASE}/console`);
  await axe("the console sign-in (en)");
  await again.locator("#username").fill(process.env.STAFF_USER);
  await again.locator("#password").fill(process.env.STAFF_PASS);
  await again.locator("form[action='/console/session'] button").click();
  await again.waitForURL(`${BASE}/console/queue`);
  for (const path of ["/console/queue", "/console/deadlines", "/console/incidents", "/console/disclosures", "/console/holds", "/console/versions", "/console/outbox", "/console/audit"]) {
    await again.goto(`${BASE}${path}`);
    check(await again.evaluate(() => document.documentElement.lang) === "en", `${path} is not in English`);
    await axe(`${path} (en)`);
  }
  await again.goto(`${BASE}/console/requests/${process.env.REQUEST}`);
  await axe("a request (en)");
  await shot("console-audit-en");
  await again.locator("form[action='/console/sign-out'] button").click();
  await again.waitForURL(`${BASE}/console`);
  await again.close();
  await use(onStaff);
  // Sign out: the session ends; the data page sends the browser back to sign in.
  await page.locator("form[action='/privacy/sign-out'] button").click();
  await page.waitForURL(`${BASE}/privacy`);
  await axe("the sign-in page (en)");
  await shot("centre-sign-in-en");
  await page.locator("#email").fill(EMAIL);
  await page.locator("form[action='/privacy/code'] button").click();
  await page.waitForSelector("#code");
  await axe("the code page (en)");
  await page.goto(`${BASE}/privacy/data`);
  check(page.url() === `${BASE}/privacy`, "the data page opened after signing out");
  // A form posted from another site is refused.
  await page.goto("about:blank");
  await page.setContent(
    `<form method="post" action="${BASE}/privacy/code"><input name="email" value="${EMAIL}"><input name="form" value="0"></form>`
  );
  const [refused] = await Promise.all([
    page.waitForNavigation(),
    page.evaluate(() => document.forms[0].submit()),
  ]);
  check(refused.status() === 403, `a cross-site post was answered ${refused.status()}`);
  check(errors.length === 0, `the page threw: ${errors.join("; ")}`);
  report.ok = true;
  console.log(JSON.stringify(report));
  await context.close();
} catch (e) {
  try {
    await shot("centre-failed");
  } catch (_) {
    // The screenshot is a help, not the finding.
  }
  await context.close();
  console.error(e.message);
  process.exit(1);
}
