// Uploads files through the page at URL with Debian's chromium, waits
// until every file's tile has settled (done with its thumbnail loaded, or
// failed with a reason) and the live panel counts them, then takes the
// screenshot.  Usage:
//   node upload.mjs URL SCREENSHOT FILE...
// Prints one JSON line: {"settled", "tiles": [{name, state, reason,
// thumbs, x, y, w}], "panel": {done, failed, text}, "status_requests",
// "page_width"}; the test judges it.
import { chromium } from "playwright-core";

const [url, shot, ...files] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 440 } });
  // Every GET /status the page makes: the panel should live on /events.
  let statusRequests = 0;
  page.on("request", r => {
    if (new URL(r.url()).pathname === "/status") statusRequests++;
  });
  const t0 = Date.now();
  await page.goto(url);
  await page.setInputFiles("#pick", files);

  // One tile's state as the test sees it: its class says done or failed,
  // a done one shows its loaded thumbnails, a failed one its reason.
  const read = () => {
    const num = id => {
      const m = /\d+/.exec(document.getElementById(id)?.textContent || "");
      return m ? Number(m[0]) : null;
    };
    const tiles = [...document.querySelectorAll("#files > li")].map(li => {
      const imgs = [...li.querySelectorAll("img")];
      const r = li.getBoundingClientRect();
      const why = li.querySelector(".why");
      return {
        name: (li.querySelector(".name") || li.firstChild).textContent,
        state: ["done", "failed"].find(c => li.classList.contains(c)) || "",
        reason: why ? why.textContent : "",
        thumbs: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
        imgs: imgs.length,
        x: Math.round(r.left), y: Math.round(r.top), w: Math.round(r.width),
      };
    });
    return {
      tiles,
      panel: { done: num("p-done"), failed: num("p-failed"),
               text: document.getElementById("panel")?.textContent || "" },
      page_width: document.documentElement.clientWidth,
    };
  };
  await page.evaluate("window.twRead = " + read.toString());
  let settled = true;
  try {
    await page.waitForFunction(n => {
      const s = window.twRead();
      if (s.tiles.length < n) return false;
      const done = s.tiles.filter(t => t.state === "done");
      const failed = s.tiles.filter(t => t.state === "failed");
      return done.length + failed.length === n &&
        done.every(t => t.imgs > 0 && t.thumbs === t.imgs) &&
        failed.every(t => t.reason) &&
        s.panel.done === done.length;
    }, files.length,
    { timeout: Number(process.env.UPLOAD_WAIT_MS || 30000), polling: 100 });
  } catch (e) {
    settled = false;	// the test says what was missing
  }
  // A second of figures gives the panel its throughput: wait for it so
  // the picture shows one (not an error if it does not come).
  await page.waitForFunction(() => /\d/.test(
    document.getElementById("p-rate")?.textContent || ""), null,
    { timeout: 3000 }).catch(() => {});
  await page.screenshot({ path: shot, fullPage: true });
  const res = await page.evaluate(() => window.twRead());
  res.settled = settled;
  res.elapsed_ms = Date.now() - t0;
  res.status_requests = statusRequests;
  console.log(JSON.stringify(res));
} finally {
  await browser.close();
}
