"""Open every page of a built book in headless Chromium, offline, and check what a reader sees.

Usage: python scripts/browser_check.py [HTML_DIR]     (default: <repo>/_build/html)

The HTML is served on loopback (127.0.0.1, a free port) and each page is opened in a headless
Chromium driven through the Chrome DevTools protocol (a websocket; tornado's client, already a
dependency of Jupyter). Chromium runs with no network beyond loopback in use: no sandbox, no
GPU, no QUIC, no first-run, background networking, component updates or sync, and a fresh
profile. For every page it checks that

- every image has loaded (``complete`` with a natural width);
- the math has rendered: MathJax has finished, no ``.math`` element is left untypeset, and no raw
  TeX delimiters (``\\(``, ``\\[``) remain in the page text outside code;
- every local link (``<a href>``: pages, downloads, data files) answers 200 from the server;
- every exercise solution (sphinx-exercise, a dropdown) starts hidden and shows when toggled;
- nothing was logged to the console as an error and no script threw.

Prints one line per page and a summary; exit status 1 if any page fails. Chromium is Debian's
(``apt-get install chromium``; ``scripts/setup_browser.sh``); CHROMIUM names another binary.
"""
from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900"]
PAGE_TIMEOUT = float(os.environ.get("BROWSER_CHECK_TIMEOUT", "60"))


def find_chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    return None


@dataclass
class PageResult:
    page: str
    images: int = 0
    math: int = 0
    links: int = 0
    solutions: int = 0
    problems: list[str] = field(default_factory=list)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _HTTPServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the browser left mid-download
            super().handle_error(request, client_address)


class Server:
    """The built HTML on 127.0.0.1 (a free port), in a thread."""

    def __init__(self, root: Path):
        handler = functools.partial(_Quiet, directory=str(root))
        self.httpd = _HTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class Browser:
    """Headless Chromium with a fresh profile, one page target spoken to over CDP."""

    def __init__(self, chromium: str):
        self.profile = tempfile.mkdtemp(prefix="browser_check_")
        self.proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.time() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
                self.close()
                raise RuntimeError(f"Chromium did not start its DevTools endpoint: {err[-2000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        self.ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        self.ws = None
        self.next_id = 0
        self.events: list[dict] = []

    async def connect(self):
        from tornado.websocket import websocket_connect
        self.ws = await websocket_connect(self.ws_url, max_message_size=256 * 2**20)
        for domain in ("Page", "Runtime", "Log"):
            await self.send(f"{domain}.enable")

    async def send(self, method: str, **params) -> dict:
        self.next_id += 1
        mid = self.next_id
        self.ws.write_message(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = await asyncio.wait_for(self.ws.read_message(), PAGE_TIMEOUT)
            if msg is None:
                raise RuntimeError("Chromium closed the DevTools connection")
            data = json.loads(msg)
            if data.get("id") == mid:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})
            if "method" in data:
                self.events.append(data)

    async def js(self, expression: str, await_promise: bool = False):
        r = await self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                            awaitPromise=await_promise)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page script failed: {r['exceptionDetails'].get('text')}: {expression[:80]}")
        return r["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = PAGE_TIMEOUT) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if await self.js(expression):
                return True
            await asyncio.sleep(0.1)
        return False

    def close(self):
        if self.ws is not None:
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


# in the page: the math left untypeset and the raw TeX delimiters left in the text outside code
_RAW_TEX_JS = r"""(() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  const text = body.textContent;
  const found = [];
  for (const d of ['\\(', '\\[', '\\begin{']) {
    const i = text.indexOf(d);
    if (i >= 0) found.push(text.slice(Math.max(0, i - 20), i + 40).replace(/\s+/g, ' '));
  }
  return found;
})()"""

_IMAGES_JS = """Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth])"""

_LINKS_JS = """Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"""

# the solutions and whether each is visible; a dropdown is sphinx-togglebutton's (a button in the
# title that toggles the class toggle-hidden on the body) or a <details>
_SOLUTIONS_JS = """Array.from(document.querySelectorAll('.solution')).map(s => {
  const body = Array.from(s.children).filter(c => !c.classList.contains('admonition-title'));
  const shown = body.length > 0 && body.every(c => c.offsetHeight > 0 && getComputedStyle(c).display !== 'none');
  return shown; })"""

_TOGGLE_JS = """(() => { let n = 0;
  document.querySelectorAll('.solution').forEach(s => {
    const b = s.querySelector('button.toggle-button, .toggle-button, summary');
    if (b) { b.click(); n++; } });
  return n; })()"""


def _console_problems(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console.error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                    for a in p.get("args", []))[:300])
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", ""))[:300])
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            en = p["entry"]
            if en.get("url", "").endswith("/favicon.ico"):
                continue  # the browser asks for it by itself; the book has none
            out.append(f"console ({en.get('source')}): {en.get('text', '')[:200]} {en.get('url', '')}")
    return out


def _status(url: str, cache: dict) -> int:
    if url not in cache:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=30) as r:
                cache[url] = r.status
        except urllib.error.HTTPError as e:
            cache[url] = e.code
        except OSError:
            cache[url] = -1
    return cache[url]


async def _check_page(b: Browser, base: str, page: str, link_status: dict) -> PageResult:
    res = PageResult(page)
    b.events.clear()
    await b.send("Page.navigate", url=base + page)
    if not await b.wait_for("document.readyState === 'complete'"):
        res.problems.append("page did not finish loading")
        return res
    # MathJax typesets after load; its startup promise resolves when the first pass is done
    has_mathjax = await b.js("!!(window.MathJax && MathJax.startup && MathJax.startup.promise)")
    n_math = await b.js("document.querySelectorAll('.math, mjx-container').length")
    if has_mathjax:
        await b.js("MathJax.startup.promise.then(() => true)", await_promise=True)
    elif n_math:
        res.problems.append("the page has math but MathJax did not load")
    await b.wait_for("Array.from(document.images).every(i => i.complete)", timeout=30)

    images = await b.js(_IMAGES_JS)
    res.images = len(images)
    res.problems += [f"image did not load: {src}" for src, done, w in images if not (done and w)]

    left = await b.js("document.querySelectorAll('.math:not(:has(mjx-container))').length")
    res.math = await b.js("document.querySelectorAll('mjx-container').length")
    if left:
        res.problems.append(f"{left} math elements not typeset")
    res.problems += [f"raw TeX in the page text: ...{t}..." for t in await b.js(_RAW_TEX_JS)]

    here = urllib.parse.urlsplit(base)
    for href in sorted(set(await b.js(_LINKS_JS))):
        u = urllib.parse.urlsplit(href)
        if u.scheme not in ("http", "https") or u.netloc != here.netloc:
            continue  # external links: not followed offline
        target = urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, u.query, ""))
        res.links += 1
        if (code := _status(target, link_status)) != 200:
            res.problems.append(f"link {u.path} answers {code}")

    shown = await b.js(_SOLUTIONS_JS)
    res.solutions = len(shown)
    if shown:
        if any(shown):
            res.problems.append(f"{sum(shown)} of {len(shown)} solutions shown before toggling")
        clicked = await b.js(_TOGGLE_JS)
        ok = await b.wait_for(f"({_SOLUTIONS_JS}).every(x => x)", timeout=5)
        if clicked < len(shown) or not ok:
            res.problems.append(f"solutions did not show when toggled ({clicked} toggles of {len(shown)})")

    await b.js("1")  # collect the events logged so far
    res.problems += _console_problems(b.events)
    return res


def _is_redirect(path: Path) -> bool:
    """Jupyter Book's index.html only forwards to the root page."""
    head = path.read_text(errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head and "<body" not in head


def pages_of(html_dir: Path) -> list[str]:
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    return sorted(p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")
                  if p.name not in skip and not {"_static", "_sources", "_images", "reports"}
                  & set(p.relative_to(html_dir).parts) and not _is_redirect(p))


def check(html_dir: Path, pages: list[str] | None = None, chromium: str | None = None) -> list[PageResult]:
    """Open every page (or the given ones, relative to html_dir) and return what each showed."""
    html_dir = Path(html_dir).resolve()
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium (apt-get install chromium; or set CHROMIUM)")
    pages = pages if pages is not None else pages_of(html_dir)

    async def run(base: str) -> list[PageResult]:
        b = Browser(chromium)
        try:
            await b.connect()
            status: dict = {}
            return [await _check_page(b, base, p, status) for p in pages]
        finally:
            b.close()

    with Server(html_dir) as server:
        return asyncio.run(run(server.url))


def main(argv: list[str]) -> int:
    html_dir = Path(argv[1] if len(argv) > 1 else REPO / "_build" / "html")
    if not (html_dir / "index.html").exists() and not any(html_dir.glob("*.html")):
        print(f"browser_check: no built HTML in {html_dir}", file=sys.stderr)
        return 2
    t0 = time.time()
    results = check(html_dir)
    bad = 0
    for r in results:
        status = "ok  " if not r.problems else "FAIL"
        bad += bool(r.problems)
        print(f"{status} {r.page}: {r.images} images, {r.math} formulas, {r.links} local links, "
              f"{r.solutions} solutions")
        for p in r.problems:
            print(f"       {p}")
    print(f"browser_check: {len(results)} pages, {bad} failing, in {time.time() - t0:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
