// Drives attend's web page in headless Chromium as a person would, and checks what it shows:
//   node page.mjs URL SCREENSHOT.png EXPECTED_TRANSLATION [PROMPT EXPECTED_COMPLETION]
// Translate tab: types SENTENCE into the text box, presses Translate, and checks the shown
// translation equals EXPECTED_TRANSLATION (what `attend translate` gives), that the attention
// heatmap drew (non-white pixels on its canvas), that hovering a cell shows its weight, and that
// another layer and head redraw it. Generate tab (when a prompt is given): greedy generation
// streamed onto the page equals EXPECTED_COMPLETION (what `attend generate` gives). Saves a
// screenshot of the translate tab. Exits non-zero with a message on any difference.
import puppeteer from "puppeteer-core";

const [url, screenshot, expected, prompt, expectedCompletion] = process.argv.slice(2);
const sentence = process.env.SENTENCE ?? "427015";
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

function fail(message) {
  console.error("FAIL: " + message);
  process.exitCode = 1;
  throw new Error(message);
}

const browser = await puppeteer.launch({
  executablePath: browserPath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 900 });
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  const outside = [];
  page.on("request", (r) => { if (!r.url().startsWith(url.replace(/\/$/, ""))) outside.push(r.url()); });

  await page.goto(url, { waitUntil: "networkidle0" });
  await page.waitForFunction(() => document.querySelectorAll("#model option").length > 0,
                             { timeout: 10000 });

  // Translate one sentence, greedy-free defaults (beam 4), as attend translate does.
  await page.click("#tab-translate");
  await page.type("#src", sentence);
  await page.click("#translate");
  await page.waitForSelector("#t-list li", { timeout: 30000 });
  const shown = await page.$eval("#t-list li", (li) => li.firstChild.textContent);
  if (shown !== expected) fail(`the page shows "${shown}", attend translate gives "${expected}"`);
  console.log(`ok: the page translates "${sentence}" as "${shown}"`);

  // The heatmap drew: count non-white pixels of the canvas.
  await page.waitForFunction(() => !document.getElementById("t-attention").hidden);
  const inked = async () => page.$eval("#heat", (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240) ++n;
    return { n, total: c.width * c.height, w: c.width, h: c.height };
  });
  const first = await inked();
  if (first.w < 50 || first.h < 50 || first.n < first.total * 0.05)
    fail(`the heatmap looks blank: ${first.n} of ${first.total} pixels inked (${first.w}x${first.h})`);
  console.log(`ok: heatmap ${first.w}x${first.h}, ${first.n} pixels inked`);

  // Hover the first cell: the tooltip names a target piece, a source piece and a weight.
  const geometry = await page.evaluate(() => {
    const r = document.getElementById("heat").getBoundingClientRect();
    return { x: r.left, y: r.top };
  });
  const cell = await page.evaluate(() => geometry && { left: geometry.left, top: geometry.top, cell: geometry.cell });
  if (!cell) fail("the heatmap has no geometry");
  await page.mouse.move(geometry.x + cell.left + cell.cell / 2, geometry.y + cell.top + cell.cell / 2);
  const tip = await page.$eval("#tip", (t) => ({ shown: t.style.display, text: t.textContent }));
  if (tip.shown !== "block" || !/\u2192 .+: [01]\.\d{4}$/.test(tip.text))
    fail(`hovering a cell shows ${JSON.stringify(tip)}`);
  console.log(`ok: hover shows "${tip.text}"`);

  // Another layer and head redraw the map with other weights.
  const before = await page.$eval("#heat", (c) => c.toDataURL());
  await page.select("#a-layer", "0");
  await page.select("#a-head", "0");
  const after = await page.$eval("#heat", (c) => c.toDataURL());
  if (before === after) fail("layer 1, head 1 drew the same picture as the mean of the last layer");
  await page.select("#a-layer", String(await page.$eval("#a-layer", (s) => s.options.length - 1)));
  await page.select("#a-head", "mean");
  await page.mouse.move(0, 0);
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`ok: screenshot ${screenshot}`);

  if (prompt !== undefined) {
    await page.click("#tab-generate");
    await page.waitForFunction(() => !document.getElementById("page-generate").hidden);
    await page.type("#prompt", prompt);
    for (const [id, value] of [["#g-max", "40"], ["#g-temp", "0"], ["#g-seed", "1"]]) {
      await page.$eval(id, (e, v) => { e.value = v; }, value);
    }
    await page.click("#generate");
    await page.waitForFunction(() => document.getElementById("g-usage").textContent.length > 0 ||
                                     document.getElementById("g-error").textContent.length > 0,
                               { timeout: 30000 });
    const error = await page.$eval("#g-error", (e) => e.textContent);
    if (error) fail("generation failed: " + error);
    const out = await page.$eval("#gen-out", (e) => e.textContent);
    if (out !== prompt + expectedCompletion)
      fail(`the page generated ${JSON.stringify(out)}, attend generate gives ${JSON.stringify(prompt + expectedCompletion)}`);
    const usage = await page.$eval("#g-usage", (e) => e.textContent);
    console.log(`ok: generation streamed onto the page (${usage})`);
  }
  if (consoleErrors.length) fail("console errors: " + consoleErrors.join(" | "));
  if (outside.length) fail("the page asked for other addresses: " + outside.join(", "));
  console.log("web page: all checks passed");
} finally {
  await browser.close();
}
