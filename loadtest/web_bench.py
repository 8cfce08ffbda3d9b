"""First feed paint in a real browser: `make bench-web`, against a running stack (`make run`).

    make bench-web   (BENCH_RUNS=10, BENCH_USERNAME / BENCH_PASSWORD: a reader to sign in as,
                      e.g. seed_0000001 / pictor-seed after `make seed`; without them a reader
                      following an author of BENCH_POSTS=20 photos is made first)

Each run opens the client in a fresh browser context (empty cache, a new connection) already
signed in, and reads the browser's own timing API once the first feed page is on screen:
  - feed_first_page: the client's `pictor:feed-first-page` mark (performance.mark), set on
    the frame after the first page of posts was rendered;
  - first_image: the Element Timing renderTime of the first post's photo (`elementtiming`);
  - fcp: the first contentful paint (blurhash placeholders count).
All in milliseconds since navigation start. One JSON line per figure: p50, p90, max.
Needs Chromium (PICTOR_CHROMIUM, default /usr/bin/chromium) and playwright (dev dependencies).
"""

from __future__ import annotations

import json
import os
import statistics
import time

from services.common.stats import percentile
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP
from tests.browser.helpers import signed_in_script
from tests.e2e.http import Gateway

MARKED = """() => new Promise((resolve) => {
  const check = () => performance.getEntriesByName("pictor:feed-first-page").length ? resolve() : setTimeout(check, 20);
  check();
})"""
TIMINGS = """() => new Promise((resolve) => {
  const found = {};
  const mark = performance.getEntriesByName("pictor:feed-first-page")[0];
  found.feed_first_page = mark ? mark.startTime : null;
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  found.fcp = fcp ? fcp.startTime : null;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.identifier === "feed-first-image") found.first_image = e.renderTime || e.loadTime;
  }).observe({ type: "element", buffered: true });
  setTimeout(() => resolve(found), 50);
})"""


def reader(gateway: Gateway) -> dict:
    name, password = os.environ.get("BENCH_USERNAME"), os.environ.get("BENCH_PASSWORD", "pictor-seed")
    if name:
        r = gateway.post("/v1/sessions", {"username": name, "password": password})
        assert r.status == 200, r.body
        return r.json
    from tests.browser.helpers import follow, post_photos, wait_for_feed

    stamp = str(time.time_ns())[-10:]
    made = []
    for who in ("benchreader", "benchauthor"):
        r = gateway.post("/v1/accounts", {"username": f"{who}{stamp}", "email": f"{who}{stamp}@example.com",
                                          "password": "correct horse"})
        assert r.status == 200, r.body
        made.append(r.json)
    viewer, author = made
    follow(gateway, viewer, author)
    posts = int(os.environ.get("BENCH_POSTS", "20"))
    for i in range(posts):
        post_photos(gateway, author, caption=f"bench {i}")
    wait_for_feed(gateway, viewer, posts)
    return viewer


def main() -> None:
    from playwright.sync_api import sync_playwright

    port = int(os.environ.get("PICTOR_GATEWAY_PORT", "8080"))
    base = os.environ.get("GATEWAY", f"http://127.0.0.1:{port}")
    gateway = Gateway(int(base.rsplit(":", 1)[1]))
    session = reader(gateway)
    script = signed_in_script(session)
    runs = int(os.environ.get("BENCH_RUNS", "10"))
    found: dict[str, list[float]] = {"feed_first_page": [], "first_image": [], "fcp": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(runs):
            context = browser.new_context(viewport=DESKTOP, base_url=base)
            context.add_init_script(script)
            page = context.new_page()
            page.goto("/")
            # Locators, not wait_for_function: the client's CSP (script-src 'self') forbids the eval it uses.
            page.locator(".photo.loaded").first.wait_for(timeout=60_000)
            page.locator("body").evaluate(MARKED)
            for name, value in page.locator("body").evaluate(TIMINGS).items():
                if value is not None:
                    found[name].append(value)
            context.close()
        browser.close()
    for name, values in found.items():
        if values:
            print(json.dumps({"figure": f"web.{name}_ms", "runs": len(values),
                              "p50": round(statistics.median(values), 1), "p90": round(percentile(values, 90), 1),
                              "max": round(max(values), 1), "user": session["user"]["username"]}))


if __name__ == "__main__":
    main()
