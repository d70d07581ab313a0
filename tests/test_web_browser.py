"""The web page in a real browser: Debian's headless Chromium driven by Playwright.

Uploads a scene, sees the boxes and names, draws a box, corrects a face and finds the correction in
the database; then the same on a phone-sized screen. Screenshots go to $ANIFACE_SCREENSHOTS (default
/tmp): aniface-web-desktop.png, aniface-web-drawn.png, aniface-web-phone.png and
aniface-web-phone-drawn.png.

Needs `chromium` (apt-get install chromium; `bash scripts/test.sh` installs it as root) and the
`playwright` package (the test extra). Never `playwright install`: nothing is downloaded. Without
them the test is skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from bot.storage.models import Face, Vote
from tests import core_factory
from tests.unavailable import skip_or_fail

SCENE = "ao_emilia_rezero_Emilia_67.jpg"   # one face at (621, 163, 262, 262)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("ANIFACE_SCREENSHOTS", "/tmp"))


@pytest.fixture(scope="session")  # session: checked before the model is built, so a skip is quick
def chromium() -> str:
    path = os.environ.get("ANIFACE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    problems = []
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package is missing (pip install -e '.[test]')")
    if not os.access(path, os.X_OK):
        problems.append("Debian's chromium is not installed (apt-get install chromium; "
                        "`bash scripts/test.sh` installs it when run as root)")
    if problems:
        message = "browser test: " + "; ".join(problems)
        skip_or_fail(message)
    return path


@pytest.fixture
async def served(tmp_path, tiny_model):
    from adapters.web import WebServer

    recognizer = core_factory.tiny_recognizer(core_factory.tiny_backbone(tiny_model), tiny_model.path)
    core = core_factory.make_core(f"sqlite:///{tmp_path / 'browser.sqlite3'}", tmp_path, recognizer,
                                  secret="browser-test")
    await core.start()
    server = WebServer(core, "127.0.0.1", 0)
    await server.start()
    try:
        yield server.url, core
    finally:
        await server.stop()
        await core.close()


def _watch(page, problems: list[str]) -> None:
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: problems.append(f"outside request: {request.url}")
            if not request.url.startswith(("http://127.0.0.1", "blob:", "data:")) else None)


async def test_upload_see_draw_and_correct_in_a_real_browser(chromium, served, shared_data, tmp_path):
    from playwright.async_api import async_playwright, expect

    url, core = served
    scene = shared_data / "scenes" / SCENE
    no_face = tmp_path / "no-face.png"  # a corner of the scene, without her face
    with Image.open(scene) as image:
        image.convert("RGB").crop((0, 300, 400, 700)).save(no_face)
    busy = tmp_path / "busy.png"  # detail everywhere and no face: the likeliest place is offered as a guess
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(busy)
    problems: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            _watch(page, problems)
            await page.goto(url)
            await expect(page).to_have_title("aniface: who is this anime character?")
            await expect(page.locator("#result")).to_be_hidden()

            # the keyboard reaches the file picker: skip link, then the picker
            await page.keyboard.press("Tab")
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.id") == "file"

            await page.set_input_files("#file", str(scene))
            cards = page.locator("#faces .face")
            await expect(cards).to_have_count(1, timeout=60_000)
            await expect(page.locator("#status")).to_contain_text("Faces found: 1.")
            first = cards.nth(0)
            name = (await first.locator(".who").text_content()).strip()
            assert name and name != "Not sure"
            await expect(first.locator(".candidate")).to_have_count(5)
            await expect(first.locator(".pct").first).to_contain_text("%")
            boxes = page.locator("#overlay .box")
            await expect(boxes).to_have_count(1)
            box = [float(await boxes.nth(0).get_attribute(k)) for k in ("x", "y", "width", "height")]
            assert box == [621, 163, 262, 262]
            await page.wait_for_function("document.getElementById('picture').naturalWidth > 0")

            await first.hover()  # hovering a card highlights its box
            await expect(page.locator("#overlay .box.active")).to_have_count(1)
            await page.screenshot(path=str(SCREENSHOTS / "aniface-web-desktop.png"), full_page=True)

            # draw a box where detection found nothing
            await page.click("#draw")
            await expect(page.locator("#draw")).to_have_attribute("aria-pressed", "true")
            area = await page.locator("#overlay").bounding_box()
            await page.mouse.move(area["x"] + area["width"] * 0.03, area["y"] + area["height"] * 0.05)
            await page.mouse.down()
            await page.mouse.move(area["x"] + area["width"] * 0.2, area["y"] + area["height"] * 0.35, steps=6)
            await page.mouse.up()
            await expect(cards).to_have_count(2, timeout=60_000)
            drawn = cards.nth(1)
            await expect(drawn).to_contain_text("(drawn by you)")
            await expect(drawn.locator(".candidate")).to_have_count(5)
            await expect(page.locator("#overlay .box.manual")).to_have_count(1)
            await expect(page.locator("#draw")).to_have_attribute("aria-pressed", "false")

            # "wrong, it is ...": a new name, stored through the core and acknowledged
            await first.get_by_label("Wrong? It is\u2026").fill("Chino Kafu")
            await first.get_by_role("button", name="Send").click()
            await expect(first.locator(".ack.ok")).to_contain_text("Chino Kafu", timeout=30_000)
            # and the drawn face confirmed as the bot named it
            await drawn.get_by_role("button", name="Right, it's").click()
            await expect(drawn.locator(".ack.ok")).to_contain_text("Thanks for confirming", timeout=30_000)
            # the new name is offered for autocompletion from now on
            options = await page.eval_on_selector_all("#known-characters option", "os => os.map(o => o.value)")
            assert "Chino Kafu" in options and "Hatsune Miku" in options
            # drawing by keyboard: the picture takes the focus, arrows move the box, Enter sends it
            await page.focus("#draw")
            await page.keyboard.press("Enter")
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.id") == "overlay"
            for key in ("ArrowLeft", "ArrowLeft", "Shift+ArrowRight", "Enter"):
                await page.keyboard.press(key)
            await expect(cards).to_have_count(3, timeout=60_000)
            await expect(cards.nth(2)).to_contain_text("(drawn by you)")
            await page.screenshot(path=str(SCREENSHOTS / "aniface-web-drawn.png"), full_page=True)

            first_id = int(await first.get_attribute("data-face-id"))
            drawn_id = int(await drawn.get_attribute("data-face-id"))
            with core.database.transaction() as session:
                stored = {v.face_id: (v.character.name, v.via) for v in session.scalars(select(Vote))}
                manual = session.get(Face, drawn_id).manual
            assert stored[first_id] == ("Chino Kafu", "web") and stored[drawn_id][1] == "web"
            assert manual is True

            # a phone: everything fits the width, and it works the same
            phone = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                              is_mobile=True, has_touch=True)
            page = await phone.new_page()
            _watch(page, problems)
            await page.goto(url)
            await page.set_input_files("#file", str(scene))
            await expect(page.locator("#faces .face")).to_have_count(1, timeout=60_000)
            await page.wait_for_function("document.getElementById('picture').naturalWidth > 0")
            await page.locator("#overlay .box").first.tap()  # tapping a face highlights its card
            await expect(page.locator("#faces .face.active")).to_have_count(1)
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
            await page.screenshot(path=str(SCREENSHOTS / "aniface-web-phone.png"), full_page=True)

            # a picture with no face found: the page shows it as the browser reads it, and a box drawn
            # on it is named
            await page.set_input_files("#file", str(no_face))
            await expect(page.locator("#status")).to_contain_text("Draw a box around a face", timeout=60_000)
            await expect(page.locator("#faces .face")).to_have_count(0)
            await page.wait_for_function("document.getElementById('picture').naturalWidth === 400")
            await page.click("#draw")
            area = await page.locator("#overlay").bounding_box()
            await page.mouse.move(area["x"] + area["width"] * 0.25, area["y"] + area["height"] * 0.25)
            await page.mouse.down()
            await page.mouse.move(area["x"] + area["width"] * 0.75, area["y"] + area["height"] * 0.6, steps=4)
            await page.mouse.up()
            await expect(page.locator("#faces .face")).to_have_count(1, timeout=60_000)
            drawn_box = [float(await page.locator("#overlay .box").first.get_attribute(k)) for k in ("x", "width")]
            assert abs(drawn_box[0] - 100) <= 3 and abs(drawn_box[1] - 200) <= 4  # picture pixels, not screen ones
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
            await page.screenshot(path=str(SCREENSHOTS / "aniface-web-phone-drawn.png"), full_page=True)

            await page.set_input_files("#file", str(busy))
            await expect(page.locator("#status")).to_contain_text("a guess at the likeliest place", timeout=60_000)
            guess = page.locator("#faces .face")
            await expect(guess).to_have_count(1)
            await expect(guess.first).to_contain_text("No face found for sure")
            await expect(guess.first.locator(".candidate")).to_have_count(5)
            await phone.close()
        finally:
            await browser.close()
    assert problems == [], problems
