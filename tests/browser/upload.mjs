// Uploads files through the page at URL with Debian's chromium and waits
// until every file shows its thumbnail (or a failure).  Usage:
//   node upload.mjs URL SCREENSHOT FILE...
// Prints one JSON line: {"done": [...], "failed": [...]}.
import { chromium } from "playwright-core";

const [url, shot, ...files] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking"],
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.setInputFiles("#pick", files);
  await page.waitForFunction(n => {
    const items = document.querySelectorAll("#files li");
    if (items.length < n) return false;
    return [...items].every(li =>
      li.classList.contains("failed") ||
      (li.classList.contains("done") &&
       [...li.querySelectorAll(".thumbs img")].length > 0 &&
       [...li.querySelectorAll(".thumbs img")].every(i => i.complete && i.naturalWidth > 0)));
  }, files.length, { timeout: 60000 });
  await page.screenshot({ path: shot, fullPage: true });
  const res = await page.evaluate(() => {
    const out = { done: [], failed: [] };
    for (const li of document.querySelectorAll("#files li"))
      (li.classList.contains("done") ? out.done : out.failed).push(
        li.firstChild.textContent);
    return out;
  });
  console.log(JSON.stringify(res));
} finally {
  await browser.close();
}
