"""Drives attend's web page in headless Chromium as a person would, and checks what it shows.

    python page.py URL SCREENSHOT.png EXPECTED_TRANSLATION [PROMPT EXPECTED_COMPLETION]

Translate tab: types SENTENCE (environment, default 427015) into the text box, presses Translate,
and checks that the shown translation equals EXPECTED_TRANSLATION (what `attend translate` gives),
that the attention heatmap drew (non-white pixels on its canvas), that hovering a cell shows its
weight, and that another layer and head redraw it. Generate tab (when a prompt is given): a greedy
generation streamed onto the page equals EXPECTED_COMPLETION (what `attend generate` gives).
Throughout: no console error and no request to any address but the server's. Saves a full-page
screenshot of the translate tab. Exits non-zero with a message on any difference.

Uses Debian's python3-selenium with Debian's chromium and chromium-driver (CHROMIUM and
CHROMEDRIVER override their paths); nothing from another registry.
"""
import base64
import json
import os
import re
import sys

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait


class Failure(Exception):
    pass


def wait_until(driver, script, timeout, what, *args):
    """Waits until the JavaScript expression `script` (a function body returning a value) is truthy."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
            lambda d: d.execute_script(script, *args))
    except TimeoutException:
        raise Failure(f"timed out after {timeout} s waiting for {what}") from None


def inked(driver):
    """Non-white pixels of the heatmap canvas, and its size."""
    return driver.execute_script("""
        const c = document.getElementById("heat");
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240) ++n;
        return { n: n, total: c.width * c.height, w: c.width, h: c.height };""")


def canvas(driver):
    return driver.execute_script('return document.getElementById("heat").toDataURL();')


def move_mouse(driver, x, y):
    """Moves the pointer to viewport coordinates (x, y)."""
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    actions.perform()


def full_page_screenshot(driver, path):
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))


def console_errors(driver):
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def requested_urls(driver):
    """Every URL the page asked for since the last call (Chromium's network log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def check_page(driver, url, screenshot, expected, prompt, expected_completion, sentence):
    driver.get(url)
    wait_until(driver, 'return document.querySelectorAll("#model option").length > 0', 10,
               "the model list")

    # Translate one sentence with the page's defaults (beam 4), as attend translate does.
    driver.find_element(By.ID, "tab-translate").click()
    driver.find_element(By.ID, "src").send_keys(sentence)
    driver.find_element(By.ID, "translate").click()
    wait_until(driver, 'return document.querySelector("#t-list li") !== null', 30, "a translation")
    shown = driver.execute_script(
        'return document.querySelector("#t-list li").firstChild.textContent;')
    if shown != expected:
        raise Failure(f'the page shows "{shown}", attend translate gives "{expected}"')
    print(f'ok: the page translates "{sentence}" as "{shown}"')

    # The heatmap drew: count non-white pixels of the canvas.
    wait_until(driver, 'return !document.getElementById("t-attention").hidden', 10,
               "the attention map")
    first = inked(driver)
    if first["w"] < 50 or first["h"] < 50 or first["n"] < first["total"] * 0.05:
        raise Failure(f"the heatmap looks blank: {first['n']} of {first['total']} pixels inked "
                      f"({first['w']}x{first['h']})")
    print(f"ok: heatmap {first['w']}x{first['h']}, {first['n']} pixels inked")

    # Hover the first cell: the tooltip names a target piece, a source piece and a weight.
    cell = driver.execute_script("""
        const r = document.getElementById("heat").getBoundingClientRect();
        return geometry && { x: r.left + geometry.left + geometry.cell / 2,
                             y: r.top + geometry.top + geometry.cell / 2 };""")
    if not cell:
        raise Failure("the heatmap has no geometry")
    move_mouse(driver, cell["x"], cell["y"])
    tip = driver.execute_script(
        'const t = document.getElementById("tip"); return { shown: t.style.display, text: t.textContent };')
    if tip["shown"] != "block" or not re.search(r"\u2192 .+: [01]\.\d{4}$", tip["text"]):
        raise Failure(f"hovering a cell shows {json.dumps(tip, ensure_ascii=False)}")
    print(f'ok: hover shows "{tip["text"]}"')

    # Another layer and head redraw the map with other weights.
    before = canvas(driver)
    Select(driver.find_element(By.ID, "a-layer")).select_by_value("0")
    Select(driver.find_element(By.ID, "a-head")).select_by_value("0")
    if canvas(driver) == before:
        raise Failure("layer 1, head 1 drew the same picture as the mean of the last layer")
    print("ok: layer 1, head 1 redraws the heatmap")
    layers = Select(driver.find_element(By.ID, "a-layer"))
    layers.select_by_index(len(layers.options) - 1)
    Select(driver.find_element(By.ID, "a-head")).select_by_value("mean")
    move_mouse(driver, 0, 0)
    full_page_screenshot(driver, screenshot)
    print(f"ok: screenshot {screenshot}")

    if prompt is not None:
        driver.find_element(By.ID, "tab-generate").click()
        wait_until(driver, 'return !document.getElementById("page-generate").hidden', 10,
                   "the generate tab")
        driver.find_element(By.ID, "prompt").send_keys(prompt)
        for element_id, value in (("g-max", "40"), ("g-temp", "0"), ("g-seed", "1")):
            driver.execute_script("arguments[0].value = arguments[1];",
                                  driver.find_element(By.ID, element_id), value)
        driver.find_element(By.ID, "generate").click()
        wait_until(driver, 'return document.getElementById("g-usage").textContent.length > 0 || '
                           'document.getElementById("g-error").textContent.length > 0', 30,
                   "the generation to finish")
        error = driver.find_element(By.ID, "g-error").get_property("textContent")
        if error:
            raise Failure("generation failed: " + error)
        out = driver.find_element(By.ID, "gen-out").get_property("textContent")
        if out != prompt + expected_completion:
            raise Failure(f"the page generated {json.dumps(out)}, attend generate gives "
                          f"{json.dumps(prompt + expected_completion)}")
        usage = driver.find_element(By.ID, "g-usage").get_property("textContent")
        print(f"ok: generation streamed onto the page ({usage})")


def main(argv):
    if len(argv) not in (4, 6):
        print(__doc__, file=sys.stderr)
        return 2
    url, screenshot, expected = argv[1:4]
    prompt, expected_completion = (argv[4], argv[5]) if len(argv) == 6 else (None, None)
    sentence = os.environ.get("SENTENCE", "427015")

    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-dev-shm-usage", "--window-size=1100,900",
                # Chromium's own background traffic (updates, field trials, safe browsing) is not
                # the page's: keep it off so that the network log holds the page's requests only.
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-default-browser-check", "--disable-default-apps",
                "--disable-features=Translate,OptimizationHints,MediaRouter"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_script_timeout(30)
        check_page(driver, url, screenshot, expected, prompt, expected_completion, sentence)
        # The two logs are live: a probe error must show in the console log, and the page's own
        # calls of the API in the network log, or the checks below would prove nothing.
        driver.execute_script('console.error("attend-page-probe");')
        errors = console_errors(driver)
        if not any("attend-page-probe" in e for e in errors):
            raise Failure("the browser's console log does not record errors")
        errors = [e for e in errors if "attend-page-probe" not in e]
        if errors:
            raise Failure("console errors: " + " | ".join(errors))
        origin = url.rstrip("/")
        urls = requested_urls(driver)
        if origin + "/v1/translate" not in urls:
            raise Failure("the network log does not record the page's requests: " + ", ".join(urls))
        outside = [u for u in urls
                   if not (u == origin or u.startswith(origin + "/") or u.startswith("data:"))]
        if outside:
            raise Failure("the page asked for other addresses: " + ", ".join(outside))
        print("ok: no console error, no request to another address")
        print("web page: all checks passed")
        return 0
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
