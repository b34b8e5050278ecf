"""The queue page's shown wait does not flicker: Drop.steadyWait (static/js/clock.js), run in
Node with the page's own file."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

CLOCK_JS = Path(settings.BASE_DIR) / "static" / "js" / "clock.js"

HARNESS = r"""
const vm = require("vm");
const fs = require("fs");
const sandbox = {
  window: {},
  document: {
    documentElement: { dataset: {} },
    addEventListener() {},
    querySelectorAll() { return []; },
  },
  fetch: () => Promise.reject(new Error("offline")),
  performance: { now: () => 0 },
  setInterval() {},
  Date,
  Math,
  isFinite,
};
vm.createContext(sandbox);
const [file, input] = process.argv.slice(-2);
vm.runInContext(fs.readFileSync(file, "utf8"), sandbox);
const Drop = sandbox.window.Drop;
const sequences = JSON.parse(input);
const out = sequences.map((seq) => {
  let shown = null;
  return seq.map((next) => {
    shown = Drop.steadyWait(shown, next);
    return Drop.formatWait(shown);
  });
});
console.log(JSON.stringify(out));
"""


def shown_texts(sequences: list[list[float | None]]) -> list[list[str]]:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("Node is not installed")
    result = subprocess.run(
        [node, "-e", HARNESS, str(CLOCK_JS), json.dumps(sequences)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)


def test_a_wobbling_estimate_shows_one_text():
    """An estimate wobbling around 150 s (the boundary between "about 2" and "about 3
    minutes") used to flip the text at every poll."""
    wobble = [146, 154, 148, 157, 151, 144, 155, 149] * 3
    (texts,) = shown_texts([wobble])
    assert len(set(texts)) == 1, texts


def test_a_moving_queue_counts_down_and_a_real_change_shows_at_once():
    falling = list(range(600, 0, -5))
    jump = [300, 300, 600, 600]
    gone = [200, None, None]
    falling_texts, jump_texts, gone_texts = shown_texts([falling, jump, gone])
    minutes = [int(t.split()[1]) for t in falling_texts if t.startswith("about")]
    assert minutes == sorted(minutes, reverse=True) and minutes[0] == 10
    assert falling_texts[-1] == "less than a minute"
    assert jump_texts == ["about 5 minutes"] * 2 + ["about 10 minutes"] * 2
    assert gone_texts == ["about 3 minutes"] * 3  # a missing estimate keeps the last one
