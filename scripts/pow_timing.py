"""Proof-of-work solve time in headless Chromium, with the page's own Web Worker.

Serves static/ and a one-line page on a local port (a secure context, as crypto.subtle needs),
then asks the worker to solve ``--runs`` random challenges at ``--difficulty`` bits and checks
each answer in Python. Prints the times and the hash rate. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import secrets
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.core.testing.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

PAGE = b"<!doctype html><title>pow</title>"
SOLVE = """([challenge, difficulty]) => new Promise((resolve, reject) => {
  const worker = new Worker("/static/js/pow-worker.js");
  worker.onmessage = (e) => { worker.terminate(); resolve(e.data); };
  worker.onerror = (e) => reject(String(e.message));
  worker.postMessage({challenge, difficulty});
})"""


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(PAGE)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--difficulty", type=int, default=16, help="bits (the sale default: 16)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    handler = functools.partial(Handler, directory=str(ROOT))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    times, tries = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        for _ in range(args.runs):
            challenge = secrets.token_urlsafe(24)
            result = page.evaluate(SOLVE, [challenge, args.difficulty])
            digest = hashlib.sha256(f"{challenge}:{result['nonce']}".encode()).digest()
            assert leading_zero_bits(digest) >= args.difficulty, "wrong answer"
            times.append(result["ms"])
            tries.append(result["tries"])
        browser.close()
    server.shutdown()

    times.sort()
    rate = sum(tries) / (sum(times) / 1000)
    print(f"proof of work, difficulty {args.difficulty} bits, {args.runs} runs, headless Chromium")
    print(
        f"  median {statistics.median(times):.0f} ms, mean {statistics.fmean(times):.0f} ms, "
        f"p90 {times[int(0.9 * (len(times) - 1))]:.0f} ms, max {times[-1]:.0f} ms"
    )
    print(f"  hashes tried: mean {statistics.fmean(tries):.0f} (expected {2**args.difficulty})")
    print(f"  hash rate: {rate:,.0f} SHA-256/s")


if __name__ == "__main__":
    main()
